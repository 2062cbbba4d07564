//! `map` of a running server and `route` on its configuration give the same
//! answer for every lab scenario: each bare-host scenario is brought up with
//! the lab harness (real nginx, apache2, haproxy on loopback ports), then
//! `triage502 map URL --format json` and `triage502 route --config CONF
//! --listen ADDR URL --format json` are run on the scenario's failing URL
//! and their server block, location and upstreams compared. Needs root and
//! the servers, as `tests/lab.rs` does.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "lab/harness.rs"]
mod harness;

use harness::{Front, Lab, SCENARIOS};

fn run(args: &[&str]) -> (serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (v, format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// (file, line) of a block, from either report.
fn at(v: &serde_json::Value) -> Option<(String, u64)> {
    Some((v["file"].as_str()?.to_owned(), v["line"].as_u64()?))
}

fn addresses(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Compare for one scenario; `Err` says what differs.
fn compare(name: &str) -> Result<String, String> {
    let lab = Lab::try_start(name).map_err(|e| format!("{name}: did not start: {e:#}"))?;
    let conf = lab.dir.join(match lab.spec.front {
        Front::Nginx => "nginx.conf",
        Front::Apache => "apache2.conf",
        Front::Haproxy => "haproxy.cfg",
    });
    let listen = lab.base.trim_start_matches("http://").to_owned();
    let (mut m, mut mtext) = run(&["map", &lab.url, "--format", "json"]);
    let mut how = "running server";
    if m["route"].is_null() && m["gateway_local"] == false {
        // The scenario stopped the server (nginx_frontend_down): map reads
        // the route from the configuration it is given, through route's code.
        let var = format!("front.config={}", conf.display());
        (m, mtext) = run(&["map", &lab.url, "--var", &var, "--format", "json"]);
        how = "server down, map --var front.config";
    }
    let (r, rtext) = run(&[
        "route",
        "--config",
        conf.to_str().unwrap(),
        "--listen",
        &listen,
        "--format",
        "json",
        &lab.url,
    ]);
    let route = &r["routes"][0];
    if route.is_null() {
        return Err(format!("{name}: route gave no answer:\n{rtext}"));
    }
    let map_route = &m["route"];
    if map_route.is_null() {
        return Err(format!("{name}: map found no route:\n{mtext}"));
    }
    let mut diffs = Vec::new();
    for (what, mv, rv) in [
        (
            "server block",
            &map_route["server_block"],
            &route["server_block"],
        ),
        ("location", &map_route["location"], &route["location"]),
    ] {
        if at(mv) != at(rv) {
            diffs.push(format!("{what}: map {:?}, route {:?}", at(mv), at(rv)));
        }
    }
    let (mu, ru) = (addresses(&m["upstreams"]), addresses(&route["upstreams"]));
    if mu != ru {
        diffs.push(format!("upstreams: map {mu:?}, route {ru:?}"));
    }
    if ru.is_empty() && at(&route["location"]).is_none() {
        diffs.push("route names neither a location nor an upstream".into());
    }
    if diffs.is_empty() {
        Ok(format!(
            "{name} ({how}): {:?} {:?} {ru:?}",
            at(&route["server_block"]),
            at(&route["location"]).map(|l| l.1)
        ))
    } else {
        Err(format!(
            "{name} ({}):\n  {}\nmap:\n{mtext}\nroute:\n{rtext}",
            lab.url,
            diffs.join("\n  ")
        ))
    }
}

#[test]
fn map_of_the_running_server_and_route_on_its_config_agree_for_every_lab_scenario() {
    let mut failures = Vec::new();
    let mut agreed = 0;
    for s in SCENARIOS {
        match compare(s.name) {
            Ok(line) => {
                eprintln!("agree {line}");
                agreed += 1;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ:\n\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n\n")
    );
    assert_eq!(agreed, SCENARIOS.len());
}
