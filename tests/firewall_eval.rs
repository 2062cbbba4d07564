//! The packet filter evaluator on rule sets recorded from real `iptables-save`,
//! `iptables-legacy-save` and `nft -j list ruleset` runs (the rule sources are next to them in
//! `tests/fixtures/firewall/`: `*.rules` loaded with `iptables-restore`, `*.nft` with `nft -f`,
//! inside a scratch network namespace; `docker-fence.*` is this test machine's own rules with
//! Docker and the lab's `DOCKER-USER` fence).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::collections::BTreeSet;
use std::net::IpAddr;

use triage502::firewall::packet::{CtState, Route};
use triage502::firewall::rules::Family;
use triage502::firewall::{
    Hook, Packet, PortSpec, Ruleset, Source, Verdict, evaluate, iptables, nft, unreached,
};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/firewall/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ipt(name: &str) -> Ruleset {
    let t = fixture(name);
    Ruleset {
        tables: iptables::parse(&t, false, iptables::save_source(&t).unwrap()),
        ..Ruleset::default()
    }
}

fn nftables(name: &str) -> Ruleset {
    Ruleset {
        tables: nft::parse(&fixture(name), &[]).unwrap(),
        ..Ruleset::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The host: 127.0.0.1 and 192.0.2.10 on eth0.
fn local() -> BTreeSet<IpAddr> {
    [ip("127.0.0.1"), ip("192.0.2.10")].into_iter().collect()
}

/// What a proxy on this host sends to a loopback upstream.
fn lo_syn(port: u16) -> Packet {
    Packet::tcp_syn(ip("127.0.0.1"), ip("127.0.0.1"), port, "lo", local())
}

/// A connection from `src` arriving on eth0 for this host's `port`.
fn inbound(src: &str, port: u16) -> Packet {
    Packet {
        proto: 6,
        src: ip(src),
        dst: ip("192.0.2.10"),
        sport: PortSpec::Exact(40000),
        dport: PortSpec::Exact(port),
        iif: Some("eth0".into()),
        oif: None,
        state: CtState::New,
        route: Route::LocalIn,
        local: local(),
    }
}

/// A connection from a container on `bridge` to `dst` out through eth0 (routed).
fn forwarded(bridge: &str, dst: &str, port: u16) -> Packet {
    Packet {
        proto: 6,
        src: ip("10.213.0.2"),
        dst: ip(dst),
        sport: PortSpec::Exact(40000),
        dport: PortSpec::Exact(port),
        iif: Some(bridge.into()),
        oif: Some("eth0".into()),
        state: CtState::New,
        route: Route::Forward,
        local: local(),
    }
}

#[test]
fn docker_fence_is_not_on_the_loopback_path() {
    let rs = ipt("docker-fence.iptables-save");
    assert_eq!(rs.tables[0].source, Source::IptablesNft);
    let there = evaluate(&rs, &lo_syn(18011));
    let back = evaluate(&rs, &lo_syn(18011).reply());
    assert_eq!(there.verdict, Verdict::Accept, "{there:#?}");
    assert_eq!(back.verdict, Verdict::Accept, "{back:#?}");
    assert!(there.unknown.is_empty());
    // The fence's REJECT is set aside: its chains are reached only from FORWARD.
    let u = unreached(&rs, &[&there, &back]);
    assert!(u.chains.contains(&"TRIAGE502-FENCE".to_owned()), "{u:?}");
    assert!(
        u.chains.contains(&"DOCKER-ISOLATION-STAGE-2".to_owned()),
        "{u:?}"
    );
    assert_eq!(u.rules, 2, "{u:?}");
    assert_eq!(
        u.hooks.iter().copied().collect::<Vec<_>>(),
        vec![Hook::Forward],
        "{u:?}"
    );
    assert!(
        u.describe().contains("reached only from FORWARD"),
        "{}",
        u.describe()
    );
}

#[test]
fn docker_fence_rejects_a_container_leaving_the_bridges() {
    let rs = ipt("docker-fence.iptables-save");
    let e = evaluate(&rs, &forwarded("docker0", "203.0.113.5", 443));
    assert_eq!(
        e.verdict,
        Verdict::Reject("icmp-port-unreachable".into()),
        "{e:#?}"
    );
    assert_eq!(
        e.primary.path_text(),
        "FORWARD → DOCKER-USER → TRIAGE502-FENCE"
    );
    assert!(
        e.primary
            .rule
            .as_deref()
            .unwrap()
            .contains("no traffic off the bridges")
    );
    // Bridge to bridge stays allowed (the fence RETURNs, Docker's FORWARD accepts).
    let mut p = forwarded("br-1234", "10.214.0.3", 80);
    p.oif = Some("br-5678".into());
    let e = evaluate(&rs, &p);
    assert_eq!(
        e.verdict,
        Verdict::Drop,
        "policy DROP: no Docker rule accepts br-* to br-*: {e:#?}"
    );
    assert!(e.primary.by_policy);
    let mut p = forwarded("docker0", "10.213.0.3", 80);
    p.oif = Some("docker0".into());
    assert_eq!(evaluate(&rs, &p).verdict, Verdict::Accept);
}

#[test]
fn the_same_rules_read_from_nft_json_agree_and_are_not_counted_twice() {
    let rs = nftables("docker-fence.nft.json");
    assert_eq!(evaluate(&rs, &lo_syn(18011)).verdict, Verdict::Accept);
    let e = evaluate(&rs, &forwarded("docker0", "203.0.113.5", 443));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert_eq!(
        e.primary.path_text(),
        "FORWARD → DOCKER-USER → TRIAGE502-FENCE"
    );
    // iptables-nft's tables are left to iptables-save when both are read.
    let skip = vec![
        (Family::Ip, "filter".to_owned()),
        (Family::Ip, "nat".to_owned()),
    ];
    let native = nft::parse(&fixture("docker-fence.nft.json"), &skip).unwrap();
    assert!(native.is_empty(), "{native:#?}");
}

#[test]
fn ufw_lets_loopback_through_before_its_user_rules() {
    let rs = ipt("ufw.iptables-save");
    // A user rule drops 8080, but ufw-before-input accepts lo first: loopback is not affected.
    let e = evaluate(&rs, &lo_syn(8080));
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    assert_eq!(
        evaluate(&rs, &lo_syn(8080).reply()).verdict,
        Verdict::Accept
    );
    // From the network, the user DROP decides.
    let e = evaluate(&rs, &inbound("203.0.113.9", 8080));
    assert_eq!(e.verdict, Verdict::Drop, "{e:#?}");
    assert_eq!(
        e.primary.path_text(),
        "INPUT → ufw-before-input → ufw-user-input"
    );
    assert_eq!(
        e.primary.rule.as_deref(),
        Some("-A ufw-user-input -p tcp -m tcp --dport 8080 -j DROP")
    );
    assert_eq!(e.primary.table, "ip filter");
    // Allowed ports pass; anything else falls to INPUT's DROP policy.
    assert_eq!(
        evaluate(&rs, &inbound("203.0.113.9", 443)).verdict,
        Verdict::Accept
    );
    let e = evaluate(&rs, &inbound("203.0.113.9", 9999));
    assert_eq!(e.verdict, Verdict::Drop);
    assert!(e.primary.by_policy, "{e:#?}");
    assert_eq!(e.primary.path_text(), "INPUT");
    // The answer to an outgoing connection comes back ESTABLISHED and is accepted.
    let out = Packet::tcp_syn(ip("192.0.2.10"), ip("198.51.100.20"), 443, "eth0", local());
    assert_eq!(evaluate(&rs, &out).verdict, Verdict::Accept);
    assert_eq!(evaluate(&rs, &out.reply()).verdict, Verdict::Accept);
    // ufw-user-output rejects 5432 to the network.
    let db = Packet::tcp_syn(ip("192.0.2.10"), ip("10.0.0.5"), 5432, "eth0", local());
    let e = evaluate(&rs, &db);
    assert_eq!(e.verdict, Verdict::Reject("icmp-port-unreachable".into()));
    assert_eq!(
        e.primary.path_text(),
        "OUTPUT → ufw-before-output → ufw-user-output"
    );
}

#[test]
fn fail2ban_rejects_only_the_banned_sources() {
    let rs = ipt("fail2ban.iptables-save");
    let e = evaluate(&rs, &inbound("192.0.2.66", 22));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert_eq!(e.primary.path_text(), "INPUT → f2b-sshd");
    assert!(matches!(
        evaluate(&rs, &inbound("198.51.100.9", 22)).verdict,
        Verdict::Reject(_)
    ));
    assert_eq!(
        evaluate(&rs, &inbound("192.0.2.67", 22)).verdict,
        Verdict::Accept
    );
    assert_eq!(
        evaluate(&rs, &inbound("192.0.2.66", 80)).verdict,
        Verdict::Accept
    );
    assert_eq!(evaluate(&rs, &lo_syn(22)).verdict, Verdict::Accept);
}

#[test]
fn firewalld_style_inet_table() {
    let rs = nftables("firewalld.nft.json");
    assert_eq!(rs.tables[0].family, Family::Inet);
    let e = evaluate(&rs, &lo_syn(8080));
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    // A named set with a prefix and an address.
    let e = evaluate(&rs, &inbound("192.0.2.5", 443));
    assert_eq!(e.verdict, Verdict::Drop, "{e:#?}");
    assert!(
        e.primary
            .rule
            .as_deref()
            .unwrap()
            .starts_with("ip saddr @blocked_v4 drop"),
        "{e:#?}"
    );
    assert_eq!(e.primary.table, "inet firewalld");
    assert_eq!(
        evaluate(&rs, &inbound("198.51.100.7", 443)).verdict,
        Verdict::Drop
    );
    // Allowed services through the zone chains (jump then goto).
    let e = evaluate(&rs, &inbound("203.0.113.1", 443));
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    assert_eq!(
        evaluate(&rs, &inbound("203.0.113.1", 8050)).verdict,
        Verdict::Accept
    );
    // Everything else: the final reject of filter_INPUT.
    let e = evaluate(&rs, &inbound("203.0.113.1", 9999));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert_eq!(e.primary.path_text(), "filter_INPUT");
    // The reply (ESTABLISHED) is accepted by the ct state verdict map.
    let out = Packet::tcp_syn(ip("192.0.2.10"), ip("203.0.113.1"), 9999, "eth0", local());
    assert_eq!(evaluate(&rs, &out.reply()).verdict, Verdict::Accept);
    // The output rule with a comment, for the app tier only.
    let app = Packet::tcp_syn(ip("192.0.2.10"), ip("10.9.3.4"), 9000, "eth0", local());
    let e = evaluate(&rs, &app);
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert!(
        e.primary
            .rule
            .as_deref()
            .unwrap()
            .contains("no app tier from here")
    );
    assert_eq!(e.primary.hook, Some(Hook::Output));
    let other = Packet::tcp_syn(ip("192.0.2.10"), ip("10.10.3.4"), 9000, "eth0", local());
    assert_eq!(evaluate(&rs, &other).verdict, Verdict::Accept);
    // IPv6 packets do not match `ip saddr`.
    let v6 = Packet::tcp_syn(ip("::1"), ip("::1"), 8080, "lo", local());
    assert_eq!(evaluate(&rs, &v6).verdict, Verdict::Accept);
}

#[test]
fn iptables_legacy_tables_and_raw() {
    let t = fixture("legacy.iptables-save");
    assert_eq!(iptables::save_source(&t), Some(Source::IptablesLegacy));
    let rs = ipt("legacy.iptables-save");
    let e = evaluate(&rs, &lo_syn(3306));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert_eq!(e.primary.path_text(), "INPUT → blocklist");
    assert_eq!(e.primary.table, "ip filter (legacy)");
    assert_eq!(e.primary.hook, Some(Hook::Input));
    // raw OUTPUT runs first of all (priority -300).
    let e = evaluate(&rs, &lo_syn(3307));
    assert_eq!(e.verdict, Verdict::Drop, "{e:#?}");
    assert_eq!(e.primary.path_text(), "OUTPUT");
    assert_eq!(e.primary.table, "ip raw (legacy)");
    assert_eq!(evaluate(&rs, &lo_syn(3308)).verdict, Verdict::Accept);
    assert_eq!(
        evaluate(&rs, &inbound("203.0.113.4", 80)).verdict,
        Verdict::Drop
    );
}

#[test]
fn an_unknown_extension_is_cannot_tell_with_the_rule_shown() {
    let rs = ipt("unknown.iptables-save");
    let e = evaluate(&rs, &lo_syn(8080));
    let Verdict::CannotTell(why) = &e.verdict else {
        panic!("{e:#?}")
    };
    assert!(why.contains("--uid-owner 33"), "{why}");
    assert_eq!(e.unknown.len(), 1);
    assert_eq!(e.branches.len(), 2);
    // Never assumed to match: the primary branch is the one where it does not.
    assert_eq!(e.primary.verdict, Verdict::Accept);
    assert!(
        e.branches
            .iter()
            .any(|b| b.verdict == Verdict::Drop && b.assumed == vec![(e.unknown[0].clone(), true)])
    );
    let e = evaluate(&rs, &lo_syn(9090));
    assert!(
        matches!(&e.verdict, Verdict::CannotTell(w) if w.contains("connlimit")),
        "{e:#?}"
    );
    // A port the unknown rules do not concern is decided.
    assert_eq!(evaluate(&rs, &lo_syn(9091)).verdict, Verdict::Accept);
}

#[test]
fn base_chains_on_one_hook_run_in_priority_order() {
    let rs = nftables("priorities.nft.json");
    // `accept` at priority -10 does not end the hook: priority 10 still drops.
    let e = evaluate(&rs, &lo_syn(7000));
    assert_eq!(e.verdict, Verdict::Drop, "{e:#?}");
    assert_eq!(e.primary.table, "inet late");
    // priority -200 (ip first) decides before priority 10 (inet late).
    let e = evaluate(&rs, &lo_syn(7001));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    assert_eq!(e.primary.table, "ip first");
    let order: Vec<&str> = e.base_chains.iter().map(String::as_str).collect();
    assert!(order[0].contains("ip first"), "{order:?}");
    assert_eq!(evaluate(&rs, &lo_syn(7002)).verdict, Verdict::Accept);
}

#[test]
fn a_rule_that_drops_only_the_reply() {
    let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -p tcp -m tcp --sport 8080 -m conntrack --ctstate ESTABLISHED -j DROP\nCOMMIT\n";
    let rs = Ruleset {
        tables: iptables::parse(t, false, Source::IptablesNft),
        ..Ruleset::default()
    };
    assert_eq!(evaluate(&rs, &lo_syn(8080)).verdict, Verdict::Accept);
    let e = evaluate(&rs, &lo_syn(8080).reply());
    assert_eq!(e.verdict, Verdict::Drop, "{e:#?}");
}

#[test]
fn ipsets_and_ephemeral_source_ports() {
    let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m set --match-set blocked dst,dst -j REJECT\n-A OUTPUT -o lo -p tcp -m tcp --sport 40000:40010 -j DROP\nCOMMIT\n";
    let mut rs = Ruleset {
        tables: iptables::parse(t, false, Source::IptablesNft),
        ..Ruleset::default()
    };
    rs.ipsets = iptables::parse_ipsets(
        "create blocked hash:ip,port family inet hashsize 1024 maxelem 65536\nadd blocked 127.0.0.1,tcp:6379\n",
    );
    let e = evaluate(&rs, &lo_syn(6379));
    assert!(matches!(e.verdict, Verdict::Reject(_)), "{e:#?}");
    // The kernel picks the source port: a rule on a few source ports cannot be judged.
    let e = evaluate(&rs, &lo_syn(6380));
    assert!(matches!(e.verdict, Verdict::CannotTell(_)), "{e:#?}");
    let mut p = lo_syn(6380);
    p.sport = PortSpec::Exact(50000);
    assert_eq!(evaluate(&rs, &p).verdict, Verdict::Accept);
}

#[test]
fn the_lab_hosts_noise_lets_loopback_through() {
    // This machine during the lab: Docker, its fence, and ufw/fail2ban-like chains for lo.
    let rs = ipt("host-noise.iptables-save");
    let e = evaluate(&rs, &lo_syn(18011));
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    // The ufw-like chain accepts lo; fail2ban's REJECT is for another source address.
    assert!(
        e.visited.iter().any(|(_, c)| c == "ufw-before-output"),
        "{e:#?}"
    );
    let e = evaluate(&rs, &lo_syn(22));
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    let mut banned = lo_syn(22);
    banned.src = ip("192.0.2.10");
    // Even the banned source is accepted on lo: ufw-before-input comes first in INPUT and
    // accepts lo, so f2b-sshd's REJECT is never reached (a grep would have reported it).
    let e = evaluate(&rs, &banned);
    assert_eq!(e.verdict, Verdict::Accept, "{e:#?}");
    assert!(!e.visited.iter().any(|(_, c)| c == "f2b-sshd"), "{e:#?}");
    let u = unreached(
        &rs,
        &[
            &evaluate(&rs, &lo_syn(18011)),
            &evaluate(&rs, &lo_syn(18011).reply()),
        ],
    );
    assert!(u.chains.contains(&"TRIAGE502-FENCE".to_owned()), "{u:?}");
}
