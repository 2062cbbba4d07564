//! A packet filter evaluator: what the kernel's netfilter hooks would do to one packet.
//!
//! Pure (no I/O): the check (`checks/firewall.rs`) reads the rules (`iptables-save`,
//! `ip6tables-save`, `nft -j list ruleset`, `ipset save`) and hands their text here. The model:
//! a [`Packet`] (addresses, ports, protocol, interfaces, conntrack state and where it comes from:
//! locally generated, delivered locally, forwarded); a [`Ruleset`] of tables whose base chains sit
//! on hooks with priorities; [`evaluate`] walks the hooks the packet really traverses, every base
//! chain of a hook in priority order, jumps, gotos and returns, and policies, and says which rule
//! decides the packet and through which chain path.
//!
//! Invariants: a match that cannot be evaluated (an unknown extension, a packet mark, a rate
//! limit) is never assumed to match or not: the walk forks, and when the branches disagree the
//! answer is "cannot tell" with the rule shown. iptables-nft tables appear in both
//! `iptables-save` and `nft` listings; the caller drops them from the nft side
//! ([`nft::parse`] with `skip_xtables`) so no rule is counted twice.

pub mod eval;
pub mod iptables;
pub mod nft;
pub mod packet;
pub mod rules;

pub use eval::{Branch, Evaluation, Unreached, Verdict, evaluate, unreached};
pub use packet::{CtState, Hook, Packet, PortSpec, Route};
pub use rules::{Action, Base, Chain, Cond, IpSet, Match, Net, Rule, Ruleset, Source, Table};
