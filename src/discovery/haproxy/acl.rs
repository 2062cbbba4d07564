//! HAProxy ACL conditions on what a URL alone tells: the Host header and
//! the path. `use_backend X if|unless cond`, where cond is terms (AND),
//! `||`/`or` (OR), `!` (NOT), named ACLs (several lines OR together) and
//! anonymous `{ … }` ACLs. A criterion that needs more than the URL
//! (source address, cookies, TLS) cannot be evaluated and says so.

use std::collections::BTreeMap;
use std::net::IpAddr;

use regex::RegexBuilder;

use crate::discovery::directive::Directive;

/// What the request carries.
#[derive(Debug, Clone)]
pub struct Request {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub local_ip: Option<IpAddr>,
}

impl Request {
    /// The Host header a client sends (with the port when not default).
    pub fn host_header(&self) -> String {
        if self.port == 80 || self.port == 443 {
            self.host.clone()
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }
}

/// The named ACLs of a section.
pub struct Acls(BTreeMap<String, Vec<Vec<String>>>);

impl Acls {
    pub fn of(section: &Directive) -> Acls {
        let mut m: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for d in section.all("acl") {
            if let Some(name) = d.arg(0) {
                m.entry(name.to_owned())
                    .or_default()
                    .push(d.args[1..].to_vec());
            }
        }
        Acls(m)
    }
}

/// Evaluate `if|unless cond...` (empty: true). `Err` says why not.
pub fn condition(words: &[String], acls: &Acls, req: &Request) -> Result<bool, String> {
    let (negate, terms) = match words.first().map(String::as_str) {
        None => return Ok(true),
        Some("if") => (false, &words[1..]),
        Some("unless") => (true, &words[1..]),
        Some(w) => {
            return Err(format!(
                "unexpected {w:?} where `if` or `unless` was expected"
            ));
        }
    };
    // OR of ANDs.
    let mut any = false;
    let mut all = true;
    let mut i = 0;
    while i < terms.len() {
        let t = terms[i].as_str();
        if t == "||" || t == "or" {
            any |= all;
            all = true;
            i += 1;
            continue;
        }
        let (neg, t) = t.strip_prefix('!').map_or((false, t), |r| (true, r));
        let v = if t == "{" || (t.is_empty() && terms.get(i + 1).is_some_and(|x| x == "{")) {
            let start = if t.is_empty() { i + 2 } else { i + 1 };
            let end = terms[start..]
                .iter()
                .position(|x| x == "}")
                .map(|p| start + p)
                .ok_or("unclosed `{`")?;
            let r = test(&terms[start..end], req)?;
            i = end + 1;
            r
        } else {
            i += 1;
            named(t, acls, req)?
        };
        all &= v != neg;
    }
    any |= all;
    Ok(any != negate)
}

fn named(name: &str, acls: &Acls, req: &Request) -> Result<bool, String> {
    match name {
        "TRUE" => return Ok(true),
        "FALSE" => return Ok(false),
        "METH_GET" | "HTTP" | "HTTP_1.1" => return Ok(true),
        "METH_POST" | "METH_PUT" | "METH_DELETE" | "METH_OPTIONS" | "METH_CONNECT" | "HTTP_1.0"
        | "HTTP_2.0" => return Ok(false),
        _ => {}
    }
    let lines = acls
        .0
        .get(name)
        .ok_or_else(|| format!("acl {name} is not defined"))?;
    for l in lines {
        if test(l, req)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One ACL test: `criterion [-i] [-m method] values...`.
fn test(words: &[String], req: &Request) -> Result<bool, String> {
    let Some(crit) = words.first() else {
        return Err("empty ACL".into());
    };
    let mut ci = false;
    let mut method: Option<String> = None;
    let mut values = Vec::new();
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-i" => ci = true,
            "-m" => method = it.next().cloned(),
            "--" => values.extend(it.by_ref().cloned()),
            w if w.starts_with('-') && values.is_empty() && w.len() == 2 => {
                return Err(format!("ACL flag {w} is not supported here"));
            }
            w => values.push(w.to_owned()),
        }
    }
    let crit = crit.as_str();
    let (fetch, derived) = match crit.split_once('(') {
        Some((f, _)) => (f, None),
        None => match crit {
            c if c.starts_with("path") => ("path", c.strip_prefix("path_")),
            c if c.starts_with("base") => ("base", c.strip_prefix("base_")),
            c if c.starts_with("url") => ("url", c.strip_prefix("url_")),
            _ => (crit, None),
        },
    };
    let (sample, derived) = match fetch {
        "hdr" | "req.hdr" | "hdr_beg" | "hdr_end" | "hdr_dom" | "hdr_sub" | "hdr_reg"
        | "hdr_dir" | "hdr_len" | "req.fhdr" => {
            let arg = crit.split_once('(').map_or("", |(_, a)| {
                a.trim_end_matches(')').split(',').next().unwrap_or("")
            });
            if !arg.eq_ignore_ascii_case("host") {
                return Err(format!("{crit} needs request headers other than Host"));
            }
            (
                req.host_header(),
                fetch.strip_prefix("hdr_").map(str::to_owned),
            )
        }
        "path" => (req.path_only().to_owned(), derived.map(str::to_owned)),
        "url" => (req.path.clone(), derived.map(str::to_owned)),
        "base" => (
            format!("{}{}", req.host_header(), req.path_only()),
            derived.map(str::to_owned),
        ),
        "dst_port" => (req.port.to_string(), None),
        _ => return Err(format!("criterion {crit} needs more than the URL")),
    };
    let method = method.or(derived).unwrap_or_else(|| "str".into());
    let (s, vals): (String, Vec<String>) = if ci {
        (
            sample.to_ascii_lowercase(),
            values.iter().map(|v| v.to_ascii_lowercase()).collect(),
        )
    } else {
        (sample, values)
    };
    for v in &vals {
        let hit = match method.as_str() {
            "str" => s == *v,
            "beg" => s.starts_with(v.as_str()),
            "end" => s.ends_with(v.as_str()),
            "sub" => s.contains(v.as_str()),
            "dir" => s.split('/').any(|p| p == v),
            "dom" => s
                .split(['/', '?', '.', ':'])
                .collect::<Vec<_>>()
                .windows(v.split('.').count())
                .any(|w| w.join(".") == *v),
            "reg" => RegexBuilder::new(v)
                .case_insensitive(ci)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| e.to_string())?
                .is_match(&s),
            "found" => true,
            "len" => v.parse::<usize>().is_ok_and(|n| s.len() == n),
            m => return Err(format!("match method {m} is not supported")),
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(method == "found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn req(host: &str, path: &str) -> Request {
        Request {
            host: host.into(),
            port: 8080,
            path: path.into(),
            local_ip: None,
        }
    }

    fn section(lines: &[&str]) -> Directive {
        let children = lines
            .iter()
            .map(|l| {
                let w = super::super::parse::words(l).unwrap();
                Directive {
                    name: w[0].clone(),
                    args: w[1..].to_vec(),
                    file: Arc::from(Path::new("/x")),
                    line: 1,
                    block: None,
                }
            })
            .collect();
        Directive {
            name: "frontend".into(),
            args: vec!["f".into()],
            file: Arc::from(Path::new("/x")),
            line: 1,
            block: Some(children),
        }
    }

    fn w(s: &str) -> Vec<String> {
        super::super::parse::words(s).unwrap()
    }

    #[test]
    fn host_and_path_acls() {
        let s = section(&[
            "acl is_api path_beg /api",
            "acl is_shop hdr_dom(host) -i shop.localhost",
            "acl exact hdr(host) -i shop.localhost:8080",
        ]);
        let a = Acls::of(&s);
        let r = req("Shop.localhost", "/api/v1?x=1");
        assert_eq!(condition(&w("if is_api"), &a, &r), Ok(true));
        assert_eq!(condition(&w("if is_shop !is_api"), &a, &r), Ok(false));
        assert_eq!(condition(&w("if is_shop is_api"), &a, &r), Ok(true));
        assert_eq!(condition(&w("if exact"), &a, &r), Ok(true));
        assert_eq!(condition(&w("unless is_api || is_shop"), &a, &r), Ok(false));
        assert_eq!(
            condition(&w("if { path_end .php }"), &a, &req("x", "/index.php")),
            Ok(true)
        );
        assert_eq!(
            condition(&w("if { path -m reg ^/a+$ }"), &a, &req("x", "/aaa")),
            Ok(true)
        );
        assert!(condition(&w("if { src 10.0.0.0/8 }"), &a, &r).is_err());
    }
}
