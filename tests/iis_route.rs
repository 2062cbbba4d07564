//! `route --config applicationHost.config URL` on our own IIS fixture
//! (tests/fixtures/iis/config/: an ARR farm of three servers, a global
//! rule, site rules in a `<location>` and in the site's web.config): the
//! site, rule, farm and servers, each with file:line, checked by hand
//! against URL Rewrite's documented evaluation (global rules first, then the
//! site's, in order; the pattern against the path without its leading slash;
//! `negate`; conditions MatchAll/MatchAny; `stopProcessing`). And bad input:
//! a malformed file gets one message naming the file and the line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::process::Command;

use triage502::discovery::service_map::ServiceMap;
use triage502::discovery::{facts, offline};

const BIN: &str = env!("CARGO_BIN_EXE_triage502");
const CONFIG: &str = "tests/fixtures/iis/config/applicationHost.config";
const SHOP_WEB: &str = "tests/fixtures/iis/config/inetpub/shop/web.config";
const ROOT_WEB: &str = "tests/fixtures/iis/config/inetpub/wwwroot/web.config";

fn route(config: &str, urls: &[&str]) -> (serde_json::Value, i32, String) {
    let out = Command::new(BIN)
        .args(["route", "--format", "json", "--config", config])
        .args(urls)
        .env_remove("SystemDrive")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (v, out.status.code().unwrap_or(-1), text)
}

/// A path as the test names it: relative to the crate (`route` prints the
/// absolute path it read).
fn rel(p: &str) -> String {
    let cwd = format!("{}/", std::env::current_dir().unwrap().display());
    p.strip_prefix(&cwd).unwrap_or(p).to_owned()
}

fn at(b: &serde_json::Value) -> String {
    rel(&format!(
        "{}:{}",
        b["file"].as_str().unwrap_or("?"),
        b["line"]
    ))
}

fn upstreams(r: &serde_json::Value) -> Vec<(String, String, String)> {
    r["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["address"].as_str().unwrap().to_owned(),
                u["group"].as_str().unwrap_or("").to_owned(),
                rel(u["source"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn site_rule_farm_and_servers_with_file_and_line() {
    let (v, code, text) = route(CONFIG, &["https://shop.example.com/cart?id=3"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["server"], "iis", "{text}");
    assert!(
        v["server_source"].as_str().unwrap().contains("IIS"),
        "{text}"
    );
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("inetpub/shop/web.config")),
        "{text}"
    );
    let r = &v["routes"][0];
    // Site Shop, taken by its https binding.
    assert_eq!(at(&r["server_block"]), format!("{CONFIG}:19"), "{text}");
    assert!(
        r["server_block"]["text"]
            .as_str()
            .unwrap()
            .contains("name=\"Shop\"")
    );
    let chosen: Vec<String> = r["server_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["chosen"] == true)
        .map(|c| at(&c["block"]))
        .collect();
    assert_eq!(chosen, vec![format!("{CONFIG}:28")], "{text}");
    // The web.config rule "Shop farm" (MatchAny on the host) decides.
    assert_eq!(at(&r["location"]), format!("{SHOP_WEB}:34"), "{text}");
    assert_eq!(at(&r["handler"]), format!("{SHOP_WEB}:40"), "{text}");
    // Rules before it did not match, each for its reason.
    let verdicts: Vec<String> = r["location_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", at(&c["block"]), c["verdict"].as_str().unwrap()))
        .collect();
    let find = |line: u32, file: &str| {
        verdicts
            .iter()
            .find(|v| v.starts_with(&format!("{file}:{line} ")))
            .cloned()
            .unwrap_or_else(|| panic!("no candidate {file}:{line} in {verdicts:#?}"))
    };
    assert!(
        find(42, CONFIG).contains("conditions do not hold"),
        "{verdicts:#?}"
    );
    assert!(find(83, CONFIG).contains("does not match"), "{verdicts:#?}");
    assert!(
        find(7, SHOP_WEB).contains("conditions do not hold"),
        "{verdicts:#?}"
    );
    assert!(
        find(27, SHOP_WEB).contains("conditions do not hold"),
        "{verdicts:#?}"
    );
    // The farm's three servers, the disabled one marked.
    assert_eq!(
        upstreams(r),
        vec![
            (
                "10.0.2.11:8080".into(),
                "shop-farm".into(),
                format!("{CONFIG}:59")
            ),
            (
                "10.0.2.12:8080".into(),
                "shop-farm".into(),
                format!("{CONFIG}:62")
            ),
            (
                "10.0.2.13:8080".into(),
                "shop-farm".into(),
                format!("{CONFIG}:65")
            ),
        ],
        "{text}"
    );
    assert_eq!(r["upstreams"][2]["down"], true, "{text}");
    assert_eq!(r["upstreams"][0]["weight"], 100, "{text}");
    let why = r["why"].to_string();
    assert!(why.contains("server farm \\\"shop-farm\\\""), "{why}");
}

#[test]
fn each_rule_kind_routes_where_url_rewrite_says() {
    let urls = [
        "http://shop.example.com/reports/q1",
        "http://shop.example.com/cart",
        "https://shop.example.com/api/v1/items",
        "https://shop.example.com/IMG/logo.png",
        "http://other.example.org/_status/disk",
        "http://other.example.org/",
        "https://shop.example.com/static/site.css",
    ];
    let (v, code, text) = route(CONFIG, &urls);
    assert_eq!(code, 0, "{text}");
    let r = |i: usize| &v["routes"][i];
    // A <location path="Shop"> rule, before the site's web.config rules: another farm.
    assert_eq!(at(&r(0)["location"]), format!("{CONFIG}:83"), "{text}");
    assert_eq!(
        upstreams(r(0)),
        vec![(
            "reports01.internal:80".into(),
            "reports".into(),
            format!("{CONFIG}:75")
        )]
    );
    assert_eq!(r(0)["upstreams"][0]["kind"], "name");
    // Plain http on the Shop site: the HTTPS redirect, no upstream.
    assert_eq!(at(&r(1)["server_block"]), format!("{CONFIG}:19"), "{text}");
    assert_eq!(at(&r(1)["location"]), format!("{SHOP_WEB}:7"), "{text}");
    assert!(upstreams(r(1)).is_empty(), "{text}");
    // A literal URL: the authority is the upstream, from the action's line.
    assert_eq!(at(&r(2)["location"]), format!("{SHOP_WEB}:19"), "{text}");
    assert_eq!(
        upstreams(r(2)),
        vec![(
            "legacy.internal:5000".into(),
            String::new(),
            format!("{SHOP_WEB}:21")
        )]
    );
    // Wildcard syntax, case-insensitive by default.
    assert_eq!(at(&r(3)["location"]), format!("{SHOP_WEB}:23"), "{text}");
    assert_eq!(upstreams(r(3))[0].0, "10.0.2.60:80");
    // The default site (empty host binding) and a global rule.
    assert_eq!(at(&r(4)["server_block"]), format!("{CONFIG}:11"), "{text}");
    assert_eq!(at(&r(4)["location"]), format!("{CONFIG}:49"), "{text}");
    assert_eq!(upstreams(r(4))[0].0, "10.0.2.50:9100");
    // No rule: the site's own HttpPlatformHandler app.
    assert!(r(5)["location"].is_null(), "{text}");
    assert_eq!(at(&r(5)["handler"]), format!("{ROOT_WEB}:8"), "{text}");
    assert!(upstreams(r(5)).is_empty());
    // action None + stopProcessing: the site serves it.
    assert_eq!(at(&r(6)["location"]), format!("{SHOP_WEB}:15"), "{text}");
    assert!(upstreams(r(6)).is_empty());
}

#[test]
fn text_output_names_site_rule_farm_and_servers() {
    let out = Command::new(BIN)
        .args(["route", "--config", CONFIG, "https://shop.example.com/cart"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let text = rel_all(&text);
    assert!(text.contains(&format!("server    {CONFIG}:19")), "{text}");
    assert!(text.contains(&format!("location  {SHOP_WEB}:34")), "{text}");
    assert!(
        text.contains(&format!(
            "upstream  http 10.0.2.11:8080 (tcp) [upstream shop-farm, weight 100]  {CONFIG}:59"
        )),
        "{text}"
    );
}

fn rel_all(t: &str) -> String {
    let cwd = format!("{}/", std::env::current_dir().unwrap().display());
    t.replace(&cwd, "")
}

#[test]
fn no_binding_no_route() {
    let (v, code, text) = route(CONFIG, &["http://shop.example.com:8080/"]);
    assert_eq!(code, 1, "{text}");
    assert!(v["routes"][0]["server_block"].is_null(), "{text}");
    assert!(
        v["routes"][0]["unknown"]
            .to_string()
            .contains("no site binding"),
        "{text}"
    );
}

#[test]
fn the_front_is_iis_in_the_service_map() {
    let mut map = ServiceMap {
        url: "https://shop.example.com/cart".into(),
        ..ServiceMap::default()
    };
    map.unknown(
        "front.kind",
        "nothing on this host listens on the URL's port",
    );
    let overrides: BTreeMap<String, String> =
        [("front.config".to_owned(), CONFIG.to_owned())].into();
    offline::map_from_config(&mut map, &overrides);
    facts::finish(&mut map, &overrides);
    assert_eq!(
        map.facts.get("front.kind").map(String::as_str),
        Some("iis"),
        "{:?}",
        map.facts
    );
    assert_eq!(
        map.facts.get("route.server").map(String::as_str),
        Some("iis")
    );
    assert_eq!(
        map.facts.get("upstream.group").map(String::as_str),
        Some("shop-farm")
    );
    assert!(
        map.unknown.iter().all(|u| u.fact != "front.kind"),
        "{:?}",
        map.unknown
    );
    assert!(
        map.logs.access.iter().any(|l| l == "D:\\logs\\iis\\W3SVC2"),
        "{:?}",
        map.logs
    );
    assert_eq!(
        map.settings
            .get("arr.protocol.timeout")
            .map(|s| s.value.as_str()),
        Some("00:00:30")
    );
}

#[test]
fn malformed_xml_is_one_clear_message_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("applicationHost.config");
    std::fs::write(
        &bad,
        "<configuration>\n  <system.applicationHost>\n    <sites>\n      <site name=\"a\" id=\"1\">\n    </sites>\n  </system.applicationHost>\n</configuration>\n",
    )
    .unwrap();
    let (v, code, text) = route(bad.to_str().unwrap(), &["http://a/"]);
    assert_eq!(code, 1, "{text}");
    let err = v["error"].as_str().unwrap();
    assert!(err.starts_with(&format!("{}:5:", bad.display())), "{err}");
    assert!(err.contains("malformed XML"), "{err}");
    assert_eq!(v["routes"].as_array().unwrap().len(), 0, "{text}");
    // Text output: the same one line, no panic, no backtrace.
    let out = Command::new(BIN)
        .args(["route", "--config", bad.to_str().unwrap(), "http://a/"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout.matches(":5:").count(), 1, "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_inputs_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("empty.config", ""),
        (
            "dtd.config",
            "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"aaaa\">]>\n<configuration/>\n",
        ),
        (
            "other-root.config",
            "<system.webServer>\n</system.webServer>\n",
        ),
        ("binary.config", "<configuration>\u{0}\u{1}</configuration>"),
        (
            "bad-binding.config",
            "<configuration><system.applicationHost><sites><site name=\"x\"><bindings><binding protocol=\"http\" bindingInformation=\"nonsense\" /><binding protocol=\"http\" bindingInformation=\"*:99999:\" /></bindings></site></sites></system.applicationHost></configuration>",
        ),
        (
            "bad-regex.config",
            "<configuration><system.applicationHost><sites><site name=\"x\"><bindings><binding protocol=\"http\" bindingInformation=\"*:80:\" /></bindings></site></sites></system.applicationHost><system.webServer><rewrite><globalRules><rule name=\"r\"><match url=\"(?&lt;=a)b(\" /><action type=\"Rewrite\" url=\"http://f/\" /></rule></globalRules></rewrite></system.webServer></configuration>",
        ),
    ];
    for (name, body) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let out = Command::new(BIN)
            .args([
                "route",
                "--server",
                "iis",
                "--format",
                "json",
                "--config",
                p.to_str().unwrap(),
                "http://x/a",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{name}: {stdout}{stderr}"
        );
        if *name == "bad-regex.config" {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert!(
                v["routes"][0]["unknown"]
                    .to_string()
                    .contains("not evaluable"),
                "{stdout}"
            );
            assert!(
                v["routes"][0]["upstreams"].as_array().unwrap().is_empty(),
                "{stdout}"
            );
        } else if *name != "bad-binding.config" {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert!(
                v["error"].as_str().is_some_and(|e| e.contains(name)),
                "{name}: {stdout}"
            );
        }
    }
}

#[test]
fn a_malformed_web_config_is_named_and_the_rest_still_routes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inetpub/shop")).unwrap();
    let cfg = std::fs::read_to_string(CONFIG).unwrap();
    let main = dir.path().join("applicationHost.config");
    std::fs::write(&main, cfg).unwrap();
    std::fs::write(
        dir.path().join("inetpub/shop/web.config"),
        "<configuration>\n  <system.webServer>\n    <rewrite>\n</configuration>\n",
    )
    .unwrap();
    let (v, code, text) = route(
        main.to_str().unwrap(),
        &["http://shop.example.com/reports/x"],
    );
    assert_eq!(code, 0, "{text}");
    let r = &v["routes"][0];
    assert!(r["notes"].to_string().contains("web.config:4:"), "{text}");
    assert_eq!(
        r["upstreams"][0]["address"], "reports01.internal:80",
        "{text}"
    );
}
