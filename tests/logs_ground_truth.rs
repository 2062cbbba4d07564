//! On generated logs, the scan and the access summary equal the generator's
//! ground truth exactly: counts per cause, onset, top failing paths, scope.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use triage502::logs::access;
use triage502::logs::generate::{Flavor, Spec, Truth, generate_files};
use triage502::logs::time::Zone;
use triage502::logs::{self, Role, ScanOptions, Window};

fn run(flavor: Flavor) -> (Truth, logs::ScanReport, access::AccessSummary) {
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2024-03-14T12:00:00Z".parse().unwrap();
    let spec = Spec::new(flavor, 3 << 20, 3 << 20, end.as_second());
    let truth = generate_files(&spec, dir.path()).unwrap();
    let name = match flavor {
        Flavor::Nginx => "nginx",
        Flavor::Apache => "apache",
    };
    let window = Window {
        from: Some(end.as_second() - 3600),
        to: Some(end.as_second()),
    };
    let err: PathBuf = dir.path().join(format!("{name}-error.log"));
    let acc: PathBuf = dir.path().join(format!("{name}-access.log"));
    let scan = logs::scan(&[err], &window, &ScanOptions::default());
    let summary = access::summarise_with(&[acc], None, &window, &mut Zone::system()).unwrap();
    (truth, scan, summary)
}

fn check(flavor: Flavor) {
    let (truth, scan, acc) = run(flavor);
    // Error log: primary counts per cause, exactly; nothing unmatched.
    let primary: std::collections::BTreeMap<String, u64> = scan
        .causes
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| (c.cause.id().to_owned(), c.count))
        .collect();
    assert_eq!(primary, truth.causes, "{:#?}", scan.causes);
    for (cause, n) in &truth.secondary {
        let c = scan.causes.iter().find(|c| c.cause.id() == cause).unwrap();
        assert_eq!(c.secondary_count, *n, "{cause}");
        assert_eq!(c.role, Role::Secondary);
    }
    assert_eq!(scan.unmatched.count, 0, "{:#?}", scan.unmatched);
    let top = scan.causes.first().unwrap();
    assert_eq!(
        Some(top.cause.id()),
        truth
            .causes
            .iter()
            .max_by_key(|c| c.1)
            .map(|c| c.0.as_str())
    );
    assert!(!top.samples.is_empty() && top.samples.len() <= 3);
    assert!(scan.files[0].start > 0, "the window was found by seeking");
    assert!(
        scan.files[0].bytes_read < scan.files[0].size / 2,
        "read only the window"
    );

    // Access log: the same numbers as the truth.
    assert_eq!(acc.requests, truth.requests);
    assert_eq!(acc.by_status, truth.by_status);
    assert_eq!(acc.gateway_errors, truth.gateway_errors);
    assert_eq!(acc.onset, truth.onset);
    assert_eq!(acc.ongoing, truth.ongoing);
    assert_eq!(acc.scope.as_str(), truth.scope);
    let got: Vec<(String, u64, f64)> = acc
        .top_failing_paths
        .iter()
        .map(|p| (p.path.clone(), p.count, p.share))
        .collect();
    let want: Vec<(String, u64, f64)> = truth
        .top_failing_paths
        .iter()
        .map(|p| (p.path.clone(), p.count, p.share))
        .collect();
    assert_eq!(got, want);
    // The series covers the window and sums to the totals.
    let s502: u64 = acc
        .per_minute
        .iter()
        .map(|m| m.s502 + m.s503 + m.s504)
        .sum();
    assert_eq!(s502, truth.gateway_errors);
}

#[test]
fn nginx_site_wide_refusal_burst_matches_ground_truth() {
    check(Flavor::Nginx);
}

#[test]
fn apache_page_specific_burst_matches_ground_truth() {
    check(Flavor::Apache);
}
