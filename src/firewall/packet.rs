//! The packet being judged, and the hooks it traverses.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// A netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn parse(s: &str) -> Option<Hook> {
        Some(match s.to_ascii_lowercase().as_str() {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connection tracking state of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtState {
    pub fn parse(s: &str) -> Option<CtState> {
        Some(match s.to_ascii_lowercase().as_str() {
            "new" => CtState::New,
            "established" => CtState::Established,
            "related" => CtState::Related,
            "invalid" => CtState::Invalid,
            "untracked" => CtState::Untracked,
            _ => return None,
        })
    }
}

/// Which way the packet goes through the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Locally generated and delivered locally (over `lo`): OUTPUT, POSTROUTING, then
    /// PREROUTING, INPUT.
    Loopback,
    /// Locally generated, leaves through an interface: OUTPUT, POSTROUTING.
    LocalOut,
    /// Arrives on an interface for this host: PREROUTING, INPUT.
    LocalIn,
    /// Routed or bridged through this host: PREROUTING, FORWARD, POSTROUTING.
    Forward,
}

impl Route {
    /// The hooks in the order the packet meets them.
    pub fn hooks(self) -> &'static [Hook] {
        match self {
            Route::Loopback => &[
                Hook::Output,
                Hook::Postrouting,
                Hook::Prerouting,
                Hook::Input,
            ],
            Route::LocalOut => &[Hook::Output, Hook::Postrouting],
            Route::LocalIn => &[Hook::Prerouting, Hook::Input],
            Route::Forward => &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
        }
    }
}

/// A port, or a range when it is not known exactly (a locally chosen ephemeral source port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    Exact(u16),
    /// Any port of `lo..=hi` (e.g. `ip_local_port_range`).
    Range(u16, u16),
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Exact(p) => write!(f, "{p}"),
            PortSpec::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// Linux's default `net.ipv4.ip_local_port_range`.
pub const EPHEMERAL: PortSpec = PortSpec::Range(32768, 60999);

/// IP protocol numbers used here.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;

/// One packet, as the filter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: PortSpec,
    pub dport: PortSpec,
    /// The interface it arrives on (`lo` for loopback), when it arrives at all.
    pub iif: Option<String>,
    /// The interface it leaves through, when it leaves.
    pub oif: Option<String>,
    pub state: CtState,
    pub route: Route,
    /// This host's addresses (for `-m addrtype`/`fib ... type local`).
    pub local: BTreeSet<IpAddr>,
}

impl Packet {
    /// A TCP connection attempt (SYN, conntrack NEW) from `src` to `dst:port` leaving through
    /// `oif`: `lo` makes it a loopback packet that comes back in on `lo`.
    pub fn tcp_syn(
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        oif: &str,
        local: BTreeSet<IpAddr>,
    ) -> Packet {
        let lo = oif == "lo";
        Packet {
            proto: TCP,
            src,
            dst,
            sport: EPHEMERAL,
            dport: PortSpec::Exact(dport),
            iif: lo.then(|| "lo".to_owned()),
            oif: Some(oif.to_owned()),
            state: CtState::New,
            route: if lo { Route::Loopback } else { Route::LocalOut },
            local,
        }
    }

    /// The answer to this packet: addresses and ports swapped, conntrack ESTABLISHED. The
    /// answer to a locally generated packet that left through an interface arrives on it.
    #[must_use]
    pub fn reply(&self) -> Packet {
        let (iif, oif, route) = match self.route {
            Route::Loopback => (self.iif.clone(), self.oif.clone(), Route::Loopback),
            Route::LocalOut => (self.oif.clone(), None, Route::LocalIn),
            Route::LocalIn => (None, self.iif.clone(), Route::LocalOut),
            Route::Forward => (self.oif.clone(), self.iif.clone(), Route::Forward),
        };
        Packet {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            iif,
            oif,
            state: CtState::Established,
            route,
            local: self.local.clone(),
        }
    }

    pub fn is_v4(&self) -> bool {
        self.dst.is_ipv4()
    }

    /// The input interface as visible at `hook` (none for locally generated packets before
    /// they loop back).
    pub fn iif_at(&self, hook: Hook) -> Option<&str> {
        match (self.route, hook) {
            (Route::Loopback | Route::LocalOut, Hook::Output | Hook::Postrouting) => None,
            _ => self.iif.as_deref(),
        }
    }

    /// The output interface as visible at `hook` (none on the way in).
    pub fn oif_at(&self, hook: Hook) -> Option<&str> {
        match (self.route, hook) {
            (Route::Loopback | Route::LocalIn, Hook::Prerouting | Hook::Input) => None,
            _ => self.oif.as_deref(),
        }
    }

    /// One line: `TCP 127.0.0.1:32768-60999 → 127.0.0.1:8080 (oif lo, NEW)`.
    pub fn describe(&self) -> String {
        let proto = match self.proto {
            TCP => "TCP".to_owned(),
            UDP => "UDP".to_owned(),
            p => format!("proto {p}"),
        };
        let ep = |ip: IpAddr, p: PortSpec| match ip {
            IpAddr::V4(_) => format!("{ip}:{p}"),
            IpAddr::V6(_) => format!("[{ip}]:{p}"),
        };
        let mut ifs = Vec::new();
        if let Some(i) = &self.iif {
            ifs.push(format!("in {i}"));
        }
        if let Some(o) = &self.oif {
            ifs.push(format!("out {o}"));
        }
        format!(
            "{proto} {} → {} ({}, {:?})",
            ep(self.src, self.sport),
            ep(self.dst, self.dport),
            ifs.join(", "),
            self.state
        )
    }
}
