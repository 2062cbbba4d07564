//! Configuration parsers on fixture files: every broken config gives one
//! precise `file:line:col` error (never a panic or a hang), and the syntax
//! corners parse with each directive's file and line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use triage502::discovery::source::{ConfigError, Limits};
use triage502::discovery::{apache, haproxy, nginx, php_fpm};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/configs")
        .join(p)
}

fn nginx_err(p: &str) -> ConfigError {
    let f = fixture(p);
    nginx::parse(&f, f.parent().unwrap(), None, Limits::default()).unwrap_err()
}

fn at(e: &ConfigError) -> (String, u32, u32) {
    (
        e.file.file_name().unwrap().to_string_lossy().into_owned(),
        e.line,
        e.col,
    )
}

#[test]
fn nginx_include_cycle_names_the_include_and_the_chain() {
    let e = nginx_err("nginx/cycle/a.conf");
    assert_eq!(at(&e), ("b.conf".into(), 5, 1), "{e}");
    assert!(e.message.starts_with("include cycle: "), "{e}");
    assert!(
        e.message.contains("a.conf -> ") && e.message.ends_with("a.conf"),
        "{e}"
    );
}

#[test]
fn nginx_include_of_dev_zero_is_refused_at_the_include() {
    let e = nginx_err("nginx/devzero.conf");
    assert_eq!(at(&e), ("devzero.conf".into(), 3, 9), "{e}");
    assert!(e.message.contains("/dev/zero is not a regular file"), "{e}");
}

#[test]
fn nginx_huge_file_is_capped() {
    let d = tempfile::tempdir().unwrap();
    let main = d.path().join("nginx.conf");
    std::fs::write(&main, "http {\n  include big.conf;\n}\n").unwrap();
    std::fs::write(d.path().join("big.conf"), "# padding\n".repeat(2000)).unwrap();
    let limits = Limits {
        max_file_bytes: 4096,
        ..Limits::default()
    };
    let e = nginx::parse(&main, d.path(), None, limits).unwrap_err();
    assert_eq!(at(&e), ("nginx.conf".into(), 2, 3), "{e}");
    assert!(e.message.contains("larger than 4096 bytes"), "{e}");
}

#[test]
fn nginx_include_depth_is_bounded() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..40 {
        std::fs::write(
            d.path().join(format!("{i}.conf")),
            format!("include {}.conf;\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(d.path().join("40.conf"), "user x;\n").unwrap();
    let e = nginx::parse(&d.path().join("0.conf"), d.path(), None, Limits::default()).unwrap_err();
    assert!(e.message.contains("nested deeper than 32"), "{e}");
    assert_eq!(e.line, 1);
}

#[test]
fn nginx_syntax_errors_are_located() {
    let e = nginx_err("nginx/unterminated_block.conf");
    // The innermost block left open is named (the location closed, the server did not).
    assert_eq!(at(&e), ("unterminated_block.conf".into(), 2, 5), "{e}");
    assert!(
        e.message
            .contains("\"server\" opened here is never closed (end of file at line 7"),
        "{e}"
    );
    let e = nginx_err("nginx/unterminated_string.conf");
    assert_eq!(at(&e), ("unterminated_string.conf".into(), 3, 20), "{e}");
    assert!(
        e.message.contains("unterminated double-quoted string"),
        "{e}"
    );
    let e = nginx_err("nginx/latin1.conf");
    assert_eq!(at(&e), ("latin1.conf".into(), 3, 17), "{e}");
    assert!(e.message.contains("invalid UTF-8 (byte 0xE9"), "{e}");
    let e = nginx_err("nginx/extra_brace.conf");
    assert_eq!(at(&e), ("extra_brace.conf".into(), 3, 1), "{e}");
    let e = nginx_err("nginx/missing_semicolon.conf");
    assert_eq!(at(&e), ("missing_semicolon.conf".into(), 3, 9), "{e}");
    assert!(
        e.message.contains("\"listen\" is not terminated by \";\""),
        "{e}"
    );
    // The Display form is what operators read.
    assert!(e.to_string().ends_with("missing_semicolon.conf:3:9: directive \"listen\" is not terminated by \";\" (found \"}\" at line 4)"), "{e}");
}

#[test]
fn nginx_relative_glob_includes_keep_file_and_line() {
    let f = fixture("nginx/site/nginx.conf");
    let cfg = nginx::parse(
        &f,
        f.parent().unwrap(),
        Some("pid /tmp/x.pid; daemon off;"),
        Limits::default(),
    )
    .unwrap();
    assert_eq!(cfg.files.len(), 3, "{:?}", cfg.files);
    let http = cfg.http().unwrap();
    let servers: Vec<_> = http.all("server").collect();
    assert_eq!(servers.len(), 2);
    assert!(servers[0].file.ends_with("sites/a.conf"));
    assert_eq!(servers[1].line, 3);
    let loc = servers[1].last("location").unwrap();
    assert_eq!(loc.args, vec!["~", "\\.php$"]);
    assert_eq!(
        cfg.main_directive("daemon").unwrap().at(),
        "(command line -g):1"
    );
    // The glob that matches nothing is recorded with no files.
    assert!(cfg.includes.iter().any(|(_, files)| files.is_empty()));
}

fn apache_parse(p: &str) -> Result<apache::ApacheConfig, ConfigError> {
    let f = fixture(p);
    apache::parse_config(
        &f,
        f.parent().unwrap(),
        &[],
        std::collections::BTreeMap::default(),
        Limits::default(),
    )
}

#[test]
fn apache_errors_are_located() {
    let e = apache_parse("apache/unclosed.conf").unwrap_err();
    assert_eq!(at(&e), ("unclosed.conf".into(), 2, 1), "{e}");
    assert!(
        e.message
            .contains("<VirtualHost> section opened here is never closed"),
        "{e}"
    );
    let e = apache_parse("apache/mismatched.conf").unwrap_err();
    assert_eq!(at(&e), ("mismatched.conf".into(), 3, 5), "{e}");
    assert!(
        e.message
            .contains("</VirtualHost> closes <Location> opened at line 2"),
        "{e}"
    );
    let e = apache_parse("apache/cycle.conf").unwrap_err();
    assert_eq!(at(&e), ("cycle.conf".into(), 1, 1), "{e}");
    assert!(e.message.contains("include cycle"), "{e}");
}

#[test]
fn apache_include_optional_and_nested_if_sections() {
    let cfg = apache_parse("apache/site/apache2.conf").unwrap();
    let vh = cfg.main.iter().find(|d| d.is("VirtualHost")).unwrap();
    assert!(vh.file.ends_with("conf.d/a.conf"));
    let outer = vh.last("If").unwrap();
    assert_eq!(outer.args, vec!["%{HTTP_HOST} == 'a.test'"]);
    assert_eq!(outer.last("If").unwrap().line, 4);
    assert_eq!(vh.last("ProxyPass").unwrap().line, 8);
}

#[test]
fn haproxy_and_php_fpm_errors_are_located() {
    let e = haproxy::parse::parse(
        &[fixture("haproxy/unterminated_quote.cfg")],
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(at(&e), ("unterminated_quote.cfg".into(), 2, 9), "{e}");
    let e = haproxy::parse::parse(&[fixture("haproxy/outside_section.cfg")], Limits::default())
        .unwrap_err();
    assert_eq!(at(&e), ("outside_section.cfg".into(), 1, 5), "{e}");
    let e = php_fpm::parse(
        &fixture("php-fpm/bad_section.conf"),
        None,
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(at(&e), ("bad_section.conf".into(), 3, 1), "{e}");
}
