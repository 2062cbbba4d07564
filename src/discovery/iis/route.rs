//! The route of a URL through IIS: site (by binding), URL Rewrite rule
//! (global rules first, then the site's), ARR server farm, servers; each
//! step with its `file:line` and the candidates that lost, and why.
//!
//! Rule evaluation follows the URL Rewrite module: the pattern is matched
//! against the URL path without its leading slash (no query string);
//! `ignoreCase` defaults to true; `negate` inverts the match; conditions
//! are all (`MatchAll`) or any (`MatchAny`) of their inputs matching; the
//! first rule whose action rewrites to another server (a farm or a URL)
//! decides, and `stopProcessing` ends the evaluation. Patterns are
//! ECMAScript regular expressions; the few constructs the Rust `regex`
//! crate lacks (look-around, back-references) make the rule "not
//! evaluable" rather than silently wrong.

use std::collections::BTreeMap;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use super::config::{Application, Condition, IisConfig, Rule, Site};
use crate::check::Evidence;
use crate::discovery::service_map::{Place, Route, ServiceMap, Upstream};

/// The request as `route` gives it.
#[derive(Debug, Clone)]
pub struct Request {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Path with the query string, as in the URL.
    pub path: String,
    pub local_ip: Option<IpAddr>,
    /// Header names lower case.
    pub headers: BTreeMap<String, String>,
}

impl Request {
    fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }
    fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }
}

/// A block considered, chosen or not, and why.
#[derive(Debug, Clone)]
pub struct Considered {
    pub at: Place,
    pub chosen: bool,
    pub verdict: String,
}

/// What IIS does with the request.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub site: Option<usize>,
    pub site_candidates: Vec<Considered>,
    pub application: Option<Application>,
    pub rule: Option<Rule>,
    pub rule_candidates: Vec<Considered>,
    /// The URL the matching rule rewrites to, back-references filled in.
    pub rewritten: Option<String>,
    pub farm: Option<String>,
    pub upstreams: Vec<Upstream>,
    pub why: Vec<String>,
    pub notes: Vec<String>,
    pub unknown: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// How well a binding matches: higher wins (IIS: a specific host before
/// the empty host, a specific address before `*`).
fn binding_rank(b: &super::config::Binding, req: &Request) -> Option<(u8, String)> {
    if b.protocol != req.scheme {
        return None;
    }
    if b.port != req.port {
        return None;
    }
    let ip_ok = b.ip == "*" || req.local_ip.is_some_and(|ip| ip.to_string() == b.ip);
    if !ip_ok {
        return None;
    }
    let host = req.host.to_ascii_lowercase();
    let (host_rank, how) = if b.host.is_empty() {
        (0, "any host".to_owned())
    } else if b.host == host {
        (2, format!("host {}", b.host))
    } else if let Some(suffix) = b.host.strip_prefix("*.") {
        if host.ends_with(&format!(".{suffix}")) {
            (1, format!("wildcard host {}", b.host))
        } else {
            return None;
        }
    } else {
        return None;
    };
    let ip_rank = u8::from(b.ip != "*");
    Some((host_rank * 2 + ip_rank, how))
}

fn site_of(cfg: &IisConfig, req: &Request, d: &mut Decision) {
    let mut best: Option<(u8, usize, usize)> = None;
    for (si, s) in cfg.sites.iter().enumerate() {
        for (bi, b) in s.bindings.iter().enumerate() {
            if let Some((rank, _)) = binding_rank(b, req)
                && best.is_none_or(|(r, _, _)| rank > r)
            {
                best = Some((rank, si, bi));
            }
        }
    }
    for (si, s) in cfg.sites.iter().enumerate() {
        for (bi, b) in s.bindings.iter().enumerate() {
            let chosen = best.is_some_and(|(_, s2, b2)| s2 == si && b2 == bi);
            let verdict = match binding_rank(b, req) {
                Some((_, how)) if chosen => format!("site {:?}: binding matches ({how})", s.name),
                Some((_, how)) => format!(
                    "site {:?}: binding matches ({how}) but a more specific binding wins",
                    s.name
                ),
                None if b.protocol != req.scheme => {
                    format!(
                        "site {:?}: protocol {} is not {}",
                        s.name, b.protocol, req.scheme
                    )
                }
                None if b.port != req.port => {
                    format!("site {:?}: port {} is not {}", s.name, b.port, req.port)
                }
                None if b.ip != "*" && req.local_ip.is_none() => format!(
                    "site {:?}: bound to address {} only (give --listen {}:{} to take it)",
                    s.name, b.ip, b.ip, b.port
                ),
                None if b.ip != "*" && !b.host.is_empty() && b.host != req.host => {
                    format!("site {:?}: host {} is not {}", s.name, b.host, req.host)
                }
                None if b.ip != "*" => format!(
                    "site {:?}: address {} is not the one the request arrives on",
                    s.name, b.ip
                ),
                None => format!("site {:?}: host {} is not {}", s.name, b.host, req.host),
            };
            d.site_candidates.push(super::route::Considered {
                at: b.at.clone(),
                chosen,
                verdict,
            });
        }
    }
    if let Some((_, si, bi)) = best {
        let s = &cfg.sites[si];
        d.site = Some(si);
        d.why.push(format!(
            "site {:?} ({}) takes {}://{}:{} by its binding {} ({})",
            s.name,
            s.at.at(),
            req.scheme,
            req.host,
            req.port,
            s.bindings[bi].at.text,
            s.bindings[bi].at.at()
        ));
    }
}

/// The application whose path is the longest prefix of the request path.
fn application_of(site: &Site, path: &str) -> Option<Application> {
    site.applications
        .iter()
        .filter(|a| {
            let p = a.path.trim_end_matches('/');
            p.is_empty()
                || path.eq_ignore_ascii_case(p)
                || path
                    .to_ascii_lowercase()
                    .starts_with(&format!("{}/", p.to_ascii_lowercase()))
        })
        .max_by_key(|a| a.path.len())
        .cloned()
}

/// The Rust regex for a rule or condition pattern.
fn compile(pattern: &str, syntax: &str, ignore_case: bool) -> Result<Regex, String> {
    let src = match syntax.to_ascii_lowercase().as_str() {
        "wildcard" => {
            let mut s = String::from("^");
            for c in pattern.chars() {
                match c {
                    '*' => s.push_str("(.*)"),
                    '?' => s.push('.'),
                    c => s.push_str(&regex::escape(&c.to_string())),
                }
            }
            s.push('$');
            s
        }
        "exactmatch" => format!("^{}$", regex::escape(pattern)),
        _ => pattern.to_owned(),
    };
    RegexBuilder::new(&src)
        .case_insensitive(ignore_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            format!(
                "pattern {pattern:?} is not evaluable here ({})",
                e.to_string().lines().last().unwrap_or("").trim()
            )
        })
}

/// The value of a server variable a condition reads, when the request
/// gives it.
fn server_variable(name: &str, req: &Request) -> Option<String> {
    let n = name.to_ascii_uppercase();
    Some(match n.as_str() {
        "HTTP_HOST" => req.host.clone(),
        "HTTPS" => if req.scheme == "https" { "on" } else { "off" }.to_owned(),
        "SERVER_PORT" => req.port.to_string(),
        "QUERY_STRING" => req.query().to_owned(),
        "REQUEST_URI" => req.path.clone(),
        "URL" | "PATH_INFO" => req.path_only().to_owned(),
        // `route` explains a GET of the URL.
        "REQUEST_METHOD" => "GET".to_owned(),
        "SERVER_PROTOCOL" => "HTTP/1.1".to_owned(),
        _ => {
            let h = n
                .strip_prefix("HTTP_")?
                .to_ascii_lowercase()
                .replace('_', "-");
            return req.headers.get(&h).cloned();
        }
    })
}

/// Expand `{HTTP_HOST}`, `{R:1}`, `{C:1}` in an input or action string.
fn expand(s: &str, req: &Request, r: &[String], c: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &after[..end];
        let val = if let Some(n) = name.strip_prefix("R:") {
            n.parse::<usize>().ok().and_then(|n| r.get(n).cloned())
        } else if let Some(n) = name.strip_prefix("C:") {
            n.parse::<usize>().ok().and_then(|n| c.get(n).cloned())
        } else if name.contains(':') {
            // `{ToLower:...}`, `{UrlEncode:...}`, a rewrite map: run time.
            return Err(format!("{{{name}}} is a function or rewrite map"));
        } else {
            server_variable(name, req)
        };
        match val {
            Some(v) => out.push_str(&v),
            None => return Err(format!("{{{name}}} is known only at run time")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn captures(re: &Regex, s: &str) -> Option<Vec<String>> {
    re.captures(s).map(|c| {
        c.iter()
            .map(|m| m.map_or_else(String::new, |m| m.as_str().to_owned()))
            .collect()
    })
}

/// Do the rule's conditions hold? `Err` when one cannot be evaluated offline.
fn conditions_hold(
    rule: &Rule,
    req: &Request,
    r: &[String],
) -> Result<(bool, Vec<String>, String), String> {
    let any = rule.grouping.eq_ignore_ascii_case("MatchAny");
    let mut last_caps: Vec<String> = Vec::new();
    let mut said = Vec::new();
    for c in &rule.conditions {
        let ok = one_condition(c, req, r, &last_caps)?;
        said.push(format!(
            "{} {} {}: {}",
            c.input,
            if c.negate {
                "does not match"
            } else {
                "matches"
            },
            c.pattern.as_deref().unwrap_or(&c.match_type),
            if ok.0 { "yes" } else { "no" }
        ));
        if ok.0 && !ok.1.is_empty() {
            last_caps = ok.1;
        }
        if any && ok.0 {
            return Ok((true, last_caps, said.join("; ")));
        }
        if !any && !ok.0 {
            return Ok((false, last_caps, said.join("; ")));
        }
    }
    Ok((
        !any || rule.conditions.is_empty(),
        last_caps,
        said.join("; "),
    ))
}

fn one_condition(
    c: &Condition,
    req: &Request,
    r: &[String],
    prev: &[String],
) -> Result<(bool, Vec<String>), String> {
    if !c.match_type.eq_ignore_ascii_case("Pattern") {
        return Err(format!(
            "condition {} matchType={} ({}) looks at the file system or a run-time value",
            c.input,
            c.match_type,
            c.at.at()
        ));
    }
    let input =
        expand(&c.input, req, r, prev).map_err(|e| format!("condition at {}: {e}", c.at.at()))?;
    let re = compile(
        c.pattern.as_deref().unwrap_or(".*"),
        "ECMAScript",
        c.ignore_case,
    )
    .map_err(|e| format!("condition at {}: {e}", c.at.at()))?;
    let caps = captures(&re, &input);
    let matched = caps.is_some();
    Ok((matched != c.negate, caps.unwrap_or_default()))
}

/// Where a rewrite URL points: `(scheme, authority, path)` for an absolute one.
fn split_url(u: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = u.split_once("://")?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((
        scheme.to_ascii_lowercase(),
        auth.to_owned(),
        path.to_owned(),
    ))
}

fn evaluate_rules(cfg: &IisConfig, site: Option<&Site>, req: &Request, d: &mut Decision) {
    let mut url = req.path_only().trim_start_matches('/').to_owned();
    let rules: Vec<&Rule> = cfg
        .global_rules
        .iter()
        .chain(site.map(|s| s.rules.iter()).into_iter().flatten())
        .collect();
    let mut stopped = false;
    for rule in rules {
        let mut considered = |chosen: bool, verdict: String| {
            d.rule_candidates.push(Considered {
                at: rule.at.clone(),
                chosen,
                verdict: format!("{} rule {:?}: {verdict}", rule.scope, rule.name),
            });
        };
        if stopped {
            considered(
                false,
                "not evaluated: an earlier rule stopped processing".into(),
            );
            continue;
        }
        if !rule.enabled {
            considered(false, "disabled".into());
            continue;
        }
        let re = match compile(&rule.pattern, &rule.syntax, rule.ignore_case) {
            Ok(re) => re,
            Err(e) => {
                // Whether it matches decides what follows: stop here rather
                // than guess.
                d.unknown.push(format!(
                    "rule {:?} ({}): {e}; the rules from it on are not decided",
                    rule.name,
                    rule.at.at()
                ));
                considered(false, e);
                stopped = true;
                continue;
            }
        };
        let caps = captures(&re, &url);
        let matched = caps.is_some() != rule.negate;
        if !matched {
            considered(
                false,
                format!(
                    "pattern {:?}{} does not match {url:?}",
                    rule.pattern,
                    if rule.negate { " (negated)" } else { "" }
                ),
            );
            continue;
        }
        let r = caps.unwrap_or_default();
        let (holds, c, said) = match conditions_hold(rule, req, &r) {
            Ok(x) => x,
            Err(e) => {
                d.unknown.push(format!(
                    "rule {:?} ({}): {e}; the rules from it on are not decided",
                    rule.name,
                    rule.at.at()
                ));
                considered(false, format!("pattern matches, but {e}"));
                stopped = true;
                continue;
            }
        };
        if !holds {
            considered(
                false,
                format!("pattern matches; conditions do not hold ({said})"),
            );
            continue;
        }
        let target = match rule.action_url.as_deref().map(|u| expand(u, req, &r, &c)) {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                d.unknown.push(format!(
                    "rule {:?} ({}): the action URL {}",
                    rule.name,
                    rule.at.at(),
                    e
                ));
                rule.action_url.clone()
            }
            None => None,
        };
        let action = rule.action.to_ascii_lowercase();
        let verdict = format!(
            "pattern {:?} matches {url:?}{}; action {}{}{}",
            rule.pattern,
            if said.is_empty() {
                String::new()
            } else {
                format!(" and conditions hold ({said})")
            },
            rule.action,
            target
                .as_deref()
                .map_or_else(String::new, |t| format!(" {t}")),
            if rule.stop_processing {
                ", stopProcessing"
            } else {
                ""
            }
        );
        let proxies = action == "rewrite" && target.as_deref().is_some_and(|t| t.contains("://"));
        let ends = proxies
            || matches!(
                action.as_str(),
                "redirect" | "customresponse" | "abortrequest"
            );
        let decisive = ends || rule.stop_processing;
        considered(decisive, verdict);
        if decisive && !ends {
            // `None` or a local rewrite that stops processing: the site
            // itself serves the request.
            d.rule = Some(rule.clone());
            d.why.push(format!(
                "{} rule {:?} ({}) matches and stops processing: {}",
                rule.scope,
                rule.name,
                rule.at.at(),
                match &target {
                    Some(t) if action == "rewrite" => format!("the site serves {t} itself"),
                    _ => "the site serves the request itself".to_owned(),
                }
            ));
            stopped = true;
            continue;
        }
        if ends {
            d.rule = Some(rule.clone());
            d.rewritten.clone_from(&target);
            d.why.push(format!(
                "{} rule {:?} ({}) matches: {} {}",
                rule.scope,
                rule.name,
                rule.at.at(),
                rule.action,
                target.as_deref().unwrap_or("")
            ));
            stopped = true;
            continue;
        }
        if action == "rewrite"
            && let Some(t) = target
        {
            d.why.push(format!(
                "{} rule {:?} ({}) rewrites the URL to {t}",
                rule.scope,
                rule.name,
                rule.at.at()
            ));
            t.trim_start_matches('/').clone_into(&mut url);
        }
        if rule.stop_processing {
            stopped = true;
        }
    }
}

fn farm_upstreams(cfg: &IisConfig, d: &mut Decision) {
    // Only a rewrite proxies (ARR); a redirect sends the client elsewhere.
    if !d
        .rule
        .as_ref()
        .is_some_and(|r| r.action.eq_ignore_ascii_case("rewrite"))
    {
        return;
    }
    let Some((scheme, auth, _)) = d.rewritten.as_deref().and_then(split_url) else {
        return;
    };
    let host = auth.rsplit_once(':').map_or(auth.as_str(), |(h, p)| {
        if p.parse::<u16>().is_ok() {
            h
        } else {
            auth.as_str()
        }
    });
    if let Some(farm) = cfg.farm(host) {
        d.farm = Some(farm.name.clone());
        d.why.push(format!(
            "{} names the server farm {:?} ({}): ARR sends the request to one of its {} servers",
            auth,
            farm.name,
            farm.at.at(),
            farm.servers.len()
        ));
        d.evidence
            .push(Evidence::new("webFarm", farm.at.text.clone()).at(farm.at.at()));
        if !farm.enabled {
            d.notes.push(format!(
                "the farm {:?} is disabled ({})",
                farm.name,
                farm.at.at()
            ));
        }
        for s in &farm.servers {
            let port = if scheme == "https" {
                s.https_port
            } else {
                s.http_port
            };
            let mut options = Vec::new();
            if let Some(w) = s.weight {
                options.push(format!("weight={w}"));
            }
            if !s.enabled {
                options.push("disabled".into());
            }
            let kind = if s.address.parse::<IpAddr>().is_ok() {
                "tcp"
            } else {
                "name"
            };
            d.evidence
                .push(Evidence::new("farm server", s.at.text.clone()).at(s.at.at()));
            d.upstreams.push(Upstream {
                address: if s.address.contains(':')
                    && s.address.parse::<std::net::Ipv6Addr>().is_ok()
                {
                    format!("[{}]:{port}", s.address)
                } else {
                    format!("{}:{port}", s.address)
                },
                kind: kind.into(),
                scheme: scheme.clone(),
                group: Some(farm.name.clone()),
                options,
                backup: false,
                source: s.at.at(),
                ..Upstream::default()
            });
        }
        if farm.servers.is_empty() {
            d.unknown.push(format!(
                "the farm {:?} ({}) has no servers: ARR answers 502.4",
                farm.name,
                farm.at.at()
            ));
        }
        return;
    }
    // A literal URL: the authority is the upstream.
    let rule_at = d.rule.as_ref().and_then(|r| r.action_at.clone());
    let default_port = if scheme == "https" { 443 } else { 80 };
    let address = if auth
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        auth.clone()
    } else {
        format!("{auth}:{default_port}")
    };
    let kind = address
        .rsplit_once(':')
        .is_some_and(|(h, _)| h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok());
    d.upstreams.push(Upstream {
        address,
        kind: if kind { "tcp" } else { "name" }.into(),
        scheme,
        source: rule_at.map(|p| p.at()).unwrap_or_default(),
        ..Upstream::default()
    });
    if cfg.farms.is_empty() {
        return;
    }
    d.notes.push(format!(
        "{host} is not the name of a server farm here ({}): ARR proxies to it directly",
        cfg.farms
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// Decide the route of `req` through `cfg`.
pub fn decide(cfg: &IisConfig, req: &Request) -> Decision {
    let mut d = Decision::default();
    site_of(cfg, req, &mut d);
    let site = d.site.map(|i| &cfg.sites[i]);
    if let Some(s) = site {
        d.application = application_of(s, req.path_only());
        for p in &s.problems {
            d.notes.push(p.clone());
        }
    } else {
        d.unknown.push(format!(
            "no site binding takes {}://{}:{} (IIS answers 404 or 400 Bad Request - Invalid Hostname)",
            req.scheme, req.host, req.port
        ));
    }
    evaluate_rules(cfg, site, req, &mut d);
    farm_upstreams(cfg, &mut d);
    if d.rule.is_none()
        && let Some(s) = site
    {
        match s.handlers.first() {
            Some(h) => d.why.push(format!(
                "no rewrite rule proxies the request: the site's {} handler ({}) runs {}",
                h.kind,
                h.at.at(),
                h.process_path.as_deref().unwrap_or("?")
            )),
            None => d
                .why
                .push("no rewrite rule proxies the request: the site serves it itself".into()),
        }
    }
    d
}

/// Fill a service map (as `map` and `route` read it) with the decision.
pub fn map(cfg: &IisConfig, req: &Request, m: &mut ServiceMap) -> Decision {
    let d = decide(cfg, req);
    let site = d.site.map(|i| &cfg.sites[i]);
    let handler = d
        .rule
        .as_ref()
        .and_then(|r| r.action_at.clone())
        .or_else(|| site.and_then(|s| s.handlers.first()).map(|h| h.at.clone()));
    m.route = Some(Route {
        server_block: site.map(|s| s.at.clone()),
        location: d.rule.as_ref().map(|r| r.at.clone()),
        handler,
        why: d.why.clone(),
        server: Some("iis".into()),
    });
    m.upstreams.clone_from(&d.upstreams);
    m.evidence.extend(d.evidence.iter().cloned());
    for n in &d.notes {
        m.note(n.clone());
    }
    for u in &d.unknown {
        m.unknown("route", u.clone());
    }
    if let Some(s) = site {
        m.evidence
            .push(Evidence::new("site", s.at.text.clone()).at(s.at.at()));
        if let Some(a) = &d.application {
            if let Some(p) = &a.physical_path {
                m.document_root = Some(p.clone());
            }
            m.evidence
                .push(Evidence::new("application", a.at.text.clone()).at(a.at.at()));
        }
        let log = if s.log.at.is_some() {
            &s.log
        } else {
            &cfg.site_defaults_log
        };
        let dir = log
            .directory
            .clone()
            .unwrap_or_else(|| "%SystemDrive%\\inetpub\\logs\\LogFiles".into());
        let id = s.id.clone().unwrap_or_default();
        let src = log
            .at
            .as_ref()
            .map_or_else(|| "IIS default".to_owned(), Place::at);
        m.log("access", &format!("{dir}\\W3SVC{id}"), &src);
        m.logs.access_format_name = Some(log.format.clone().unwrap_or_else(|| "W3C".into()));
        m.log(
            "error",
            "%windir%\\System32\\LogFiles\\HTTPERR",
            "HTTP.sys default",
        );
        for h in &s.handlers {
            if let Some(f) = &h.stdout_log_file {
                m.log("error", f, &h.at.at());
            }
            m.setting(
                &format!("{}.processPath", h.kind),
                h.process_path.clone().unwrap_or_default(),
                h.at.at(),
            );
        }
    }
    if let Some(f) = d.farm.as_ref().and_then(|f| cfg.farm(f)) {
        for (k, v, at) in &f.settings {
            m.setting(&format!("arr.{k}"), v.clone(), at.at());
        }
    }
    for (k, v, at) in &cfg.proxy {
        m.setting(&format!("proxy.{k}"), v.clone(), at.at());
    }
    d
}
