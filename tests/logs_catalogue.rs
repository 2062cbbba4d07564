//! Every exact message of the signatures catalogue (shared/docs/signatures.md)
//! is classified to its cause; the negative controls are not causes. The
//! fixtures are written from those strings, in each server's layout, with
//! glibc and musl errno texts and multi-line FastCGI entries.

use triage502::logs::reader::Entries;
use triage502::logs::time::Zone;
use triage502::logs::{self, Catalogue, Role};

const FIXTURES: &str = include_str!("fixtures/logs/catalogue.tsv");

#[test]
fn every_catalogue_message_is_classified_to_its_cause() {
    let cat = Catalogue::builtin();
    let mut z = Zone::utc();
    let mut bad = Vec::new();
    let mut n = 0;
    for (i, line) in FIXTURES.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(cause), Some(role), Some(text)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("fixture line {} is malformed", i + 1);
        };
        let entry = text.replace("\\n", "\n");
        n += 1;
        let got = logs::classify_with(cat, &mut z, entry.as_bytes());
        let got_cause = got.as_ref().and_then(|c| c.cause).map_or("-", |c| c.id());
        let got_role = match got.as_ref().map(|c| c.role) {
            None => "none",
            Some(Role::Primary) => "primary",
            Some(Role::Secondary) => "secondary",
            Some(Role::Ignored) => "ignored",
            Some(Role::Unmatched) => "unmatched",
        };
        if got_cause != cause || got_role != role {
            let sig = got
                .as_ref()
                .and_then(|c| c.signature(cat))
                .map_or("-", |s| s.id.as_str());
            bad.push(format!(
                "line {}: want {cause}/{role}, got {got_cause}/{got_role} ({sig}): {text}",
                i + 1
            ));
        }
    }
    assert!(n > 150, "only {n} fixtures");
    assert!(
        bad.is_empty(),
        "{} misclassified:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn glibc_and_musl_errno_texts_give_the_same_cause() {
    let pairs = [
        ("110: Connection timed out", "110: Operation timed out"),
        ("113: No route to host", "113: Host is unreachable"),
        ("101: Network is unreachable", "101: Network unreachable"),
        (
            "99: Cannot assign requested address",
            "99: Address not available",
        ),
        (
            "24: Too many open files",
            "24: No file descriptors available",
        ),
        ("98: Address already in use", "98: Address in use"),
    ];
    let mut z = Zone::utc();
    for (glibc, musl) in pairs {
        let line = |e: &str| {
            format!(
                "2024/03/14 09:22:07 [crit] 8#8: *1 connect() to 10.0.3.21:8080 failed ({e}) while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.3.21:8080/\", host: \"e\""
            )
        };
        let g = logs::classify_with(Catalogue::builtin(), &mut z, line(glibc).as_bytes()).unwrap();
        let m = logs::classify_with(Catalogue::builtin(), &mut z, line(musl).as_bytes()).unwrap();
        assert!(g.cause.is_some(), "{glibc}");
        assert_eq!(g.cause, m.cause, "{glibc} vs {musl}");
        assert_eq!(g.fields.errno, m.fields.errno);
    }
}

#[test]
fn multi_line_fastcgi_entries_are_one_entry_with_the_request_fields() {
    let text = std::fs::read("tests/fixtures/logs/fastcgi-multiline.log").unwrap();
    let mut z = Zone::utc();
    let mut entries = Entries::new(&text[..]);
    let mut got = Vec::new();
    while let Some(e) = entries.next_entry(&mut z).unwrap() {
        let c = logs::classify_with(Catalogue::builtin(), &mut z, &e.text);
        got.push((
            e.line,
            c.and_then(|c| c.cause.map(|k| (k.id().to_owned(), c.fields.path.clone()))),
        ));
    }
    assert_eq!(
        got,
        vec![
            (1, None),
            (2, Some(("app_fatal".to_owned(), Some("/shop".to_owned())))),
            (
                8,
                Some(("upstream_closed".to_owned(), Some("/shop".to_owned())))
            ),
            (9, None),
        ]
    );
}

/// Whole-file scans classify only the entries the prefilter finds, so every
/// entry the classifier gives a cause must contain one of the prefilter's
/// literals; otherwise `logs scan` would silently miss what `logs classify`
/// finds. (The fuzz target `log_classify` checks the same on random input.)
#[test]
fn every_classified_entry_carries_a_prefilter_literal() {
    let cat = Catalogue::builtin();
    let literals = cat.signature_literals();
    let mut z = Zone::utc();
    let mut missed = Vec::new();
    for line in FIXTURES.lines().filter(|l| !l.starts_with('#')) {
        let Some(text) = line.splitn(3, '\t').nth(2) else {
            continue;
        };
        let entry = text.replace("\\n", "\n");
        let got = logs::classify_with(cat, &mut z, entry.as_bytes());
        if got.is_some_and(|c| c.cause.is_some())
            && !literals.iter().any(|l| entry.contains(l.as_str()))
        {
            missed.push(text);
        }
    }
    assert!(
        missed.is_empty(),
        "no prefilter literal in:\n{}",
        missed.join("\n")
    );
}
