//! The firewall check against REAL rule sets: each test makes a fresh network namespace
//! (`triage502-fw-<pid>-<n>`), loads a rule set into it (iptables-nft, iptables-legacy or
//! nft), runs a listener inside, runs the check for that namespace, and compares the check's
//! verdict with what really happens to a TCP connect made inside the namespace. Namespaces are
//! deleted on drop (their rules go with them); nothing touches the host's own rules.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use triage502::cause::Cause;
use triage502::check::{Basis, CheckReport, Outcome};
use triage502::checks::firewall::{Params, run};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of this test process, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        listeners::require("ip", "iproute2");
        listeners::require("iptables", "iptables");
        listeners::require("nft", "nftables");
        let name = format!(
            "triage502-fw-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let s = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(s.success(), "ip netns add {name} failed (needs root)");
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"], None);
        ns
    }

    /// Runs `argv` inside the namespace, with `stdin` fed in; panics on failure.
    fn exec(&self, argv: &[&str], stdin: Option<&str>) {
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{argv:?} in {} failed: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn iptables_restore(&self, rules: &str) {
        self.exec(&["iptables-restore"], Some(rules));
    }

    fn nft(&self, ruleset: &str) {
        self.exec(&["nft", "-f", "-"], Some(ruleset));
    }

    /// Runs `f` on a thread that has joined the namespace.
    fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// A listener on 127.0.0.1:`port` inside the namespace, accepting and closing forever.
    fn listen(&self, port: u16) {
        let path = format!("/run/netns/{}", self.0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            tx.send(()).unwrap();
            for s in l.incoming() {
                drop(s);
            }
        });
        rx.recv().unwrap();
    }

    /// What really happens to a TCP connect to `127.0.0.1:port` inside the namespace.
    fn truth(&self, port: u16) -> &'static str {
        self.inside(move || {
            let to: SocketAddr = ([127, 0, 0, 1], port).into();
            match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                Ok(_) => "accept",
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "drop",
                // A listener is there: a refusal or an ICMP error can only be a REJECT.
                Err(_) => "reject",
            }
        })
    }

    async fn check(&self, port: u16) -> CheckReport {
        run(
            &Params {
                address: format!("127.0.0.1:{port}"),
                netns: Some(self.0.clone()),
                probe: true,
            },
            &listeners::ctx(),
        )
        .await
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/firewall/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Runs the check for `port` and holds its verdict to what really happens; returns the report.
async fn agrees(ns: &Netns, port: u16, expected: &str) -> CheckReport {
    ns.listen(port);
    let truth = ns.truth(port);
    assert_eq!(
        truth, expected,
        "the rule set does not do what the test assumes"
    );
    let r = ns.check(port).await;
    assert_eq!(
        r.facts.get("firewall.verdict").map(String::as_str),
        Some(truth),
        "check verdict vs reality for port {port}: {r:#?}"
    );
    if truth == "accept" {
        assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
        assert!(r.diagnoses.is_empty(), "{r:#?}");
        assert!(
            r.excluded.iter().any(|x| x.cause == Cause::FirewallBlocked),
            "{r:#?}"
        );
    } else {
        assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
        let d = &r.diagnoses[0];
        assert_eq!(d.cause, Cause::FirewallBlocked);
        // The probe inside the namespace confirms the rule: direct evidence.
        assert_eq!(d.basis, Basis::Direct, "{r:#?}");
        assert!(!r.facts["firewall.path"].is_empty(), "{r:#?}");
        assert!(!r.facts["firewall.rule"].is_empty(), "{r:#?}");
    }
    r
}

#[tokio::test]
async fn reject_on_loopback_input() {
    let ns = Netns::new();
    ns.iptables_restore("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -p tcp -m tcp --dport 18080 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n");
    let r = agrees(&ns, 18080, "reject").await;
    assert_eq!(r.facts["firewall.path"], "ip filter: INPUT");
    assert!(r.facts["firewall.rule"].contains("--dport 18080"), "{r:#?}");
    agrees(&ns, 9000, "accept").await;
}

#[tokio::test]
async fn drop_on_an_output_port_range() {
    let ns = Netns::new();
    ns.iptables_restore("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -o lo -p tcp -m multiport --dports 9000:9010 -j DROP\nCOMMIT\n");
    let r = agrees(&ns, 9005, "drop").await;
    assert_eq!(r.facts["firewall.path"], "ip filter: OUTPUT");
    agrees(&ns, 9011, "accept").await;
}

#[tokio::test]
async fn ufw_accepts_loopback_before_a_user_drop() {
    let ns = Netns::new();
    ns.iptables_restore(&fixture("ufw.rules"));
    // ufw-user-input drops 8080, but loopback is accepted before user rules are reached.
    agrees(&ns, 8080, "accept").await;
}

#[tokio::test]
async fn ufw_like_chains_for_loopback_with_a_user_drop() {
    let ns = Netns::new();
    ns.iptables_restore(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :ufw-before-input - [0:0]\n:ufw-user-input - [0:0]\n\
         -A INPUT -i lo -j ufw-before-input\n\
         -A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A ufw-before-input -j ufw-user-input\n\
         -A ufw-user-input -p tcp -m tcp --dport 18443 -j DROP\n\
         COMMIT\n",
    );
    let r = agrees(&ns, 18443, "drop").await;
    assert_eq!(
        r.facts["firewall.path"],
        "ip filter: INPUT → ufw-before-input → ufw-user-input"
    );
    agrees(&ns, 18444, "accept").await;
}

#[tokio::test]
async fn docker_fence_does_not_block_loopback() {
    let ns = Netns::new();
    ns.iptables_restore(&fixture("docker-fence.iptables-save"));
    let r = agrees(&ns, 18011, "accept").await;
    // The fence is context, not evidence.
    assert!(
        r.context
            .iter()
            .any(|a| a.seen.contains("TRIAGE502-FENCE") && a.seen.contains("FORWARD")),
        "{r:#?}"
    );
}

#[tokio::test]
async fn nft_inet_output_drop() {
    let ns = Netns::new();
    ns.nft("table inet t502 {\n chain out {\n  type filter hook output priority 0; policy accept;\n  oifname \"lo\" tcp dport 18500 counter drop comment \"lab\"\n }\n}\n");
    let r = agrees(&ns, 18500, "drop").await;
    assert_eq!(r.facts["firewall.path"], "inet t502: out");
    assert!(
        r.facts["firewall.rule"].contains("comment \"lab\""),
        "{r:#?}"
    );
    agrees(&ns, 18501, "accept").await;
}

#[tokio::test]
async fn nft_firewalld_style_table_accepts_loopback() {
    let ns = Netns::new();
    ns.nft(&fixture("firewalld.nft"));
    agrees(&ns, 8080, "accept").await;
}

#[tokio::test]
async fn nft_priorities_of_two_base_chains() {
    let ns = Netns::new();
    ns.nft(&fixture("priorities.nft"));
    let r = agrees(&ns, 7000, "drop").await;
    assert_eq!(r.facts["firewall.path"], "inet late: out");
    let r = agrees(&ns, 7001, "reject").await;
    assert_eq!(r.facts["firewall.path"], "ip first: out");
    agrees(&ns, 7002, "accept").await;
}

#[tokio::test]
async fn iptables_legacy_rules() {
    assert!(
        which("iptables-legacy-restore").is_some(),
        "iptables-legacy-restore is missing: apt-get install iptables"
    );
    let ns = Netns::new();
    ns.exec(&["iptables-legacy-restore"], Some(&fixture("legacy.rules")));
    let r = agrees(&ns, 3306, "reject").await;
    assert_eq!(
        r.facts["firewall.path"],
        "ip filter (legacy): INPUT → blocklist"
    );
    let r = agrees(&ns, 3307, "drop").await;
    assert_eq!(r.facts["firewall.path"], "ip raw (legacy): OUTPUT");
    agrees(&ns, 3308, "accept").await;
}

#[tokio::test]
async fn a_dropped_reply_is_found() {
    let ns = Netns::new();
    ns.iptables_restore("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -p tcp -m tcp --sport 18600 -m conntrack --ctstate ESTABLISHED -j DROP\nCOMMIT\n");
    let r = agrees(&ns, 18600, "drop").await;
    assert!(r.summary.starts_with("the reply from"), "{}", r.summary);
}

#[tokio::test]
async fn an_unknown_match_is_cannot_tell_and_no_finding() {
    let ns = Netns::new();
    ns.iptables_restore(&fixture("unknown.rules"));
    ns.listen(8080);
    // Root's connect is not uid 33's: it goes through.
    assert_eq!(ns.truth(8080), "accept");
    let r = ns.check(8080).await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:#?}");
    assert_eq!(r.facts["firewall.verdict"], "cannot tell");
    assert!(r.summary.contains("--uid-owner 33"), "{}", r.summary);
    assert!(r.diagnoses.is_empty());
}

#[tokio::test]
async fn unusable_namespace_or_address_is_inconclusive() {
    let r = run(
        &Params {
            address: "127.0.0.1:80".into(),
            netns: Some("triage502-fw-no-such-netns".into()),
            probe: true,
        },
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:#?}");
    let r = run(
        &Params {
            address: "nonsense".into(),
            netns: None,
            probe: true,
        },
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}

fn which(p: &str) -> Option<()> {
    Command::new("which")
        .arg(p)
        .stdout(Stdio::null())
        .status()
        .ok()
        .filter(std::process::ExitStatus::success)
        .map(drop)
}

#[tokio::test]
async fn an_unconfirmed_blocking_verdict_is_circumstantial() {
    let ns = Netns::new();
    ns.iptables_restore("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -o lo -p tcp -m tcp --dport 18700 -j DROP\nCOMMIT\n");
    let r = run(
        &Params {
            address: "127.0.0.1:18700".into(),
            netns: Some(ns.0.clone()),
            probe: false,
        },
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.facts["firewall.verdict"], "drop");
    assert_eq!(r.diagnoses[0].cause, Cause::FirewallBlocked);
    assert_eq!(r.diagnoses[0].basis, Basis::Circumstantial, "{r:#?}");
    assert!(r.summary.contains("not confirmed"), "{}", r.summary);
}
