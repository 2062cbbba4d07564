//! The template cache gives the verdicts of the uncached classifier, line for
//! line: on the generators' logs (both profiles, both flavors, small sizes)
//! and on every log fixture (catalogue, wild corpus, correlation logs).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use triage502::logs::generate::{Flavor, Spec, generate_files};
use triage502::logs::reader::Entries;
use triage502::logs::time::Zone;
use triage502::logs::{Catalogue, Role, format};

/// Classify every entry cached and uncached; returns (entries, classified, primary).
fn compare(entries: &[Vec<u8>], what: &str) -> (usize, usize, usize) {
    let cat = Catalogue::builtin();
    let mut z = Zone::utc();
    let (mut classified, mut primary) = (0, 0);
    // Twice: the second pass meets every template already cached.
    for pass in 0..2 {
        for e in entries {
            let head = format::head(e, &mut z).unwrap_or_else(format::Head::unknown);
            let cached = cat.classify(&head, e);
            let plain = cat.classify_uncached(&head, e);
            assert!(
                cached == plain,
                "{what} (pass {pass}): {}\ncached:   {cached:?}\nuncached: {plain:?}",
                String::from_utf8_lossy(e)
            );
            if pass == 0
                && let Some(c) = &cached
            {
                classified += 1;
                primary += usize::from(c.role == Role::Primary);
            }
        }
    }
    (entries.len(), classified, primary)
}

fn file_entries(path: &Path) -> Vec<Vec<u8>> {
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut it = Entries::new(f);
    let mut z = Zone::utc();
    let mut out = Vec::new();
    while let Some(e) = it.next_entry(&mut z).unwrap() {
        out.push(e.text);
    }
    out
}

#[test]
fn cached_equals_uncached_on_generated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2024-03-14T12:00:00Z".parse().unwrap();
    let mut dense = Spec::dense(3 << 20, 256 << 10, end.as_second());
    // Denser than a 3 MiB file's share of the 1 GiB rate: many lines per template.
    dense.incident_per_min = 400.0;
    let specs = [
        (
            "light nginx",
            Spec::new(Flavor::Nginx, 3 << 20, 64 << 10, end.as_second()),
        ),
        (
            "light apache",
            Spec::new(Flavor::Apache, 2 << 20, 64 << 10, end.as_second()),
        ),
        ("dense nginx", dense),
    ];
    for (what, spec) in specs {
        let sub = dir.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&sub).unwrap();
        generate_files(&spec, &sub).unwrap();
        let name = match spec.flavor {
            Flavor::Nginx => "nginx",
            Flavor::Apache => "apache",
        };
        let (n, classified, primary) =
            compare(&file_entries(&sub.join(format!("{name}-error.log"))), what);
        assert!(
            n > 5_000 && classified > 1_000 && primary > 10,
            "{what}: {n} {classified} {primary}"
        );
        if what.starts_with("dense") {
            assert!(primary > 10_000, "{what}: only {primary} failures");
        }
    }
}

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fixtures(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn cached_equals_uncached_on_every_fixture() {
    let mut files = Vec::new();
    fixtures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs"),
        &mut files,
    );
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut all = Vec::new();
    for f in &files {
        let entries: Vec<Vec<u8>> = if f.extension().is_some_and(|x| x == "tsv") {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| l.rsplit('\t').next())
                .map(|l| l.replace("\\n", "\n").into_bytes())
                .collect()
        } else {
            file_entries(f)
        };
        compare(&entries, &f.display().to_string());
        all.extend(entries);
    }
    // All fixtures in one stream: templates cached by one file meet the others.
    let (n, classified, _) = compare(&all, "all fixtures");
    assert!(n > 300 && classified > 200, "{n} {classified}");
    // Each fixture line again under nginx's full prefix, as a log file has it.
    let prefixed: Vec<Vec<u8>> = all
        .iter()
        .filter(|e| e.starts_with(b"[") || e.starts_with(b"*"))
        .map(|e| {
            let mut v = b"2024/03/14 09:22:07 ".to_vec();
            v.extend_from_slice(e);
            v
        })
        .collect();
    compare(&prefixed, "prefixed fixtures");
}
