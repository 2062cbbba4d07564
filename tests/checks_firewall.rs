//! firewall with real iptables rules inside a fresh network namespace.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::firewall::{Params, run};

/// A network namespace that is deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        listeners::require("ip", "iproute2");
        listeners::require("iptables", "iptables");
        let name = format!(
            "t502-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let s = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(s.success(), "ip netns add {name} failed (needs root)");
        Netns(name)
    }
    fn iptables(&self, args: &[&str]) {
        let s = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "iptables"])
            .args(args)
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn p(address: &str, ns: &Netns) -> Params {
    Params {
        address: address.into(),
        netns: Some(ns.0.clone()),
    }
}

#[tokio::test]
async fn reject_on_loopback_for_the_upstream_port_is_firewall_blocked() {
    let ns = Netns::new();
    ns.iptables(&[
        "-A", "INPUT", "-i", "lo", "-p", "tcp", "--dport", "18080", "-j", "REJECT",
    ]);
    let r = run(&p("127.0.0.1:18080", &ns), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.diagnoses[0].cause, Cause::FirewallBlocked);
    assert!(
        r.facts["firewall.blocking_rules"].contains("--dport 18080"),
        "{}",
        r.facts["firewall.blocking_rules"]
    );
    // Another port is not affected.
    let r = run(&p("127.0.0.1:9000", &ns), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert!(r.excluded.iter().any(|x| x.cause == Cause::FirewallBlocked));
}

#[tokio::test]
async fn drop_on_a_port_range_matches() {
    let ns = Netns::new();
    ns.iptables(&[
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--dports",
        "9000:9010",
        "-j",
        "DROP",
    ]);
    let r = run(&p("127.0.0.1:9005", &ns), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
}

#[tokio::test]
async fn unusable_namespace_or_address_is_inconclusive() {
    let r = run(
        &Params {
            address: "127.0.0.1:80".into(),
            netns: Some("t502-no-such-netns".into()),
        },
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:#?}");
    let r = run(
        &Params {
            address: "nonsense".into(),
            netns: None,
        },
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}
