//! Playbook loading as a user meets it: every shipped playbook validates, every
//! broken fixture gives its precise `file:line:col` errors (pinned by
//! snapshots), the walk scenarios pass, and the JSON schemas in `assets/` are
//! the ones the code generates.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use triage502::playbook::library::{self, Library, discover};

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/playbooks")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn broken_fixtures_report_every_error_with_its_place() {
    for path in fixtures() {
        let results = library::validate_files(std::slice::from_ref(&path));
        let (src, loaded) = &results[0];
        assert!(
            loaded.has_errors(),
            "{} should not validate",
            path.display()
        );
        let rendered = library::render_all(src, &loaded.diagnostics);
        for line in rendered.lines().filter(|l| l.contains(": error: ")) {
            // file:line:col: error: ...
            let rest = line
                .strip_prefix(&format!("{}:", path.display()))
                .unwrap_or_else(|| panic!("no file prefix: {line}"));
            let mut parts = rest.splitn(3, ':');
            let l: usize = parts
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("no line in {line}"));
            let c: usize = parts
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("no column in {line}"));
            assert!(l >= 1 && c >= 1);
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn every_shipped_playbook_validates_cleanly() {
    let files: Vec<PathBuf> = std::fs::read_dir("playbooks")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(files.len() >= 4);
    for (src, loaded) in library::validate_files(&files) {
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            library::render_all(&src, &loaded.diagnostics)
        );
    }
}

#[test]
fn walk_scenarios_cover_every_shipped_playbook() {
    let (lib, failures) = Library::from_sources(discover(&[]));
    assert!(failures.is_empty());
    let lib = Arc::new(lib);
    let mut covered = std::collections::BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir("playbooks/tests").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let sc =
            triage502::scenario::parse(&text).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
        triage502::scenario::run(&lib, &sc)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", path.display(), sc.name));
        covered.insert(sc.playbook.clone());
        count += 1;
    }
    assert!(count >= 10, "only {count} scenarios");
    for id in lib.playbooks.keys() {
        assert!(covered.contains(id), "no walk scenario for playbook `{id}`");
    }
}

fn check_schema(path: &Path, generated: &serde_json::Value) {
    let pretty = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if std::env::var_os("TRIAGE502_WRITE_SCHEMAS").is_some() {
        std::fs::write(path, &pretty).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == pretty,
        "{} is out of date: run `TRIAGE502_WRITE_SCHEMAS=1 cargo test --test playbooks schemas`",
        path.display()
    );
}

#[test]
fn schemas_in_assets_match_the_code() {
    check_schema(
        Path::new("assets/playbook.schema.json"),
        &triage502::playbook::schema(),
    );
    check_schema(
        Path::new("assets/report.schema.json"),
        &triage502::report::schema(),
    );
}

#[test]
fn shipped_playbooks_match_their_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("assets/playbook.schema.json").unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, text) in library::EMBEDDED {
        let value: serde_json::Value =
            serde_json::to_value(toml::from_str::<toml::Table>(text).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

/// Guidance shown to the operator has the known values filled in, and a value
/// not known yet is visibly missing rather than a raw `{{ placeholder }}`.
#[test]
fn guidance_is_shown_with_the_values_known_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("guide.toml");
    std::fs::write(
        &pb,
        r#"
id = "guide"
title = "Guidance values"
version = "1.0.0"
description = "One informational node."
start = "only"

[[var]]
name = "upstream"
prompt = "upstream"
type = "string"
required = true

[[node]]
id = "only"
title = "Start the upstream"
guidance = "Start what listens on {{ upstream }}, as {{ worker_user }}."
end = "escalate"
"#,
    )
    .unwrap();
    let (lib, _) = Library::standard(std::slice::from_ref(&pb)).unwrap();
    let values = [("upstream".to_owned(), "127.0.0.1:9000".to_owned())]
        .into_iter()
        .collect();
    let engine = triage502::engine::Engine::start(Arc::new(lib), "guide", values).unwrap();
    assert_eq!(
        engine.guidance(),
        "Start what listens on 127.0.0.1:9000, as <worker_user?>."
    );
}
