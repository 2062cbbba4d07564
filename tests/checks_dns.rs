//! dns against a loopback DNS stub: answers, NXDOMAIN, SERVFAIL and timeout.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/dns_stub.rs"]
mod dns_stub;
#[path = "support/listeners.rs"]
mod listeners;

use std::time::Duration;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::dns::{Params, run};
use triage502::duration::HumanDuration;

fn params(name: &str, resolver: &str) -> Params {
    Params {
        name: name.into(),
        resolver: Some(resolver.into()),
        timeout: Some(HumanDuration(Duration::from_millis(400))),
    }
}

#[tokio::test]
async fn name_with_both_families_is_ok() {
    let stub = dns_stub::start().await;
    let r = run(&params("ok.test:8080", &stub), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["dns.a"], "127.0.0.9");
    assert_eq!(r.facts["dns.aaaa"], "::9");
    assert!(r.excluded.iter().any(|x| x.cause == Cause::DnsFailure));
}

#[tokio::test]
async fn nxdomain_servfail_and_timeout_are_distinct() {
    let stub = dns_stub::start().await;
    for (name, result) in [
        ("nx.test", "nxdomain"),
        ("fail.test", "servfail"),
        ("silent.test", "timeout"),
    ] {
        let r = run(&params(name, &stub), &listeners::ctx()).await;
        assert_eq!(r.outcome, Outcome::Problem, "{name}: {r:?}");
        assert_eq!(r.facts["dns.result"], result, "{name}");
        assert_eq!(r.diagnoses[0].cause, Cause::DnsFailure);
    }
}

#[tokio::test]
async fn name_without_records_is_nodata() {
    let stub = dns_stub::start().await;
    let r = run(&params("empty.test", &stub), &listeners::ctx()).await;
    assert_eq!(r.facts["dns.result"], "nodata");
}

#[tokio::test]
async fn resolver_that_is_not_listening_is_inconclusive() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().to_string()
    };
    let r = run(&params("ok.test", &port), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
    let r = run(&params("ok.test", "not-an-ip"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}
