//! Redaction before anything leaves the box.
//!
//! Secrets (cookies, `Authorization` headers, bearer tokens, passwords, keys
//! and signatures in URLs, query strings, headers, config lines and log
//! samples, private key blocks, well-known token shapes) are always replaced
//! by `[REDACTED]`. Client IPs and host names can optionally be replaced by
//! consistent pseudonyms (`ip-1`, `host-1`); the private mapping is kept
//! locally by the caller ([`Pseudonyms::save`], mode 0600).
//!
//! Invariants: redaction is idempotent (redacting redacted text changes
//! nothing), never panics on any input, and the [`Masked`] records never
//! contain the secret itself.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// The replacement for every secret.
pub const MASK: &str = "[REDACTED]";

/// One masked span: what kind of secret, and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masked {
    /// e.g. "password in URL", "Authorization header", "client IP".
    pub what: String,
    /// e.g. "line 3, column 17" or a field path like `findings[0].evidence[1].text`.
    #[serde(rename = "where")]
    pub location: String,
}

/// A secret pattern: the regex, what it masks, and which capture groups to keep.
struct Rule {
    what: &'static str,
    re: Regex,
    /// Replacement with `$n` references; `{MASK}` is inserted where the secret was.
    replace: &'static str,
}

// The patterns are constants compiled once; a pattern that fails to compile is
// a build defect caught by every test in this module, not an operator error.
#[allow(clippy::expect_used)]
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |what, pat: &str, replace| Rule {
            what,
            re: Regex::new(pat).expect("redaction patterns are valid (tested)"),
            replace,
        };
        vec![
            r(
                "private key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
                "[REDACTED PRIVATE KEY]",
            ),
            r(
                "credentials in URL",
                r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\[\]]+(?::[^/\s@]*)?@",
                "${1}[REDACTED]@",
            ),
            r(
                "credential header",
                r#"(?i)\b(authorization|proxy-authorization|x-api-key|x-auth-token|x-csrf-token|x-amz-security-token|api-key|private-token)(\s*[:=]\s*|"?\s+")("?)(?:(?:basic|bearer|digest|token|negotiate|ntlm)\s+)?(?:[^\s"'\[;,]|\[[^R])[^\s"';]*"#,
                "${1}${2}${3}[REDACTED]",
            ),
            r(
                "cookie",
                r#"(?i)\b(cookie|set-cookie)(\s*[:=]\s*|"?\s+")("?)(?:[^\s"\[;]|\[[^R])[^\r\n"]*"#,
                "${1}${2}${3}[REDACTED]",
            ),
            r(
                "secret in config",
                r#"(?i)\b((?:fastcgi_param|uwsgi_param|scgi_param|proxy_set_header|add_header|setenv|setenvif|env|requestheader\s+set|header\s+set)\s+"?[\w.-]*(?:pass|pwd|secret|token|key|auth|cookie|credential|salt)[\w.-]*"?\s+)("?)(?:[^\s;"\[]|\[[^R])[^;\r\n"]*"#,
                "${1}${2}[REDACTED]",
            ),
            r(
                "secret in PHP define",
                r#"(?i)(define\s*\(\s*['"]\w*(?:password|pass|key|salt|secret|token)\w*['"]\s*,\s*)(?:'[^']*'|"[^"]*")"#,
                "${1}'[REDACTED]'",
            ),
            r(
                "secret parameter",
                r#"(?i)\b([\w.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|credential|session[_-]?id|sessid|phpsessid|auth)[\w.-]*|key|sig|signature|x-amz-signature|x-amz-credential|pass)("?\s*[:=]\s*)(?:"(?:[^"\[]|\[[^R])[^"]*"|'(?:[^'\[]|\[[^R])[^']*'|(?:[^\s&;,"'\[]|\[[^R])[^\s&;,"']*)"#,
                "${1}${2}[REDACTED]",
            ),
            r(
                "bearer token",
                r"(?i)\b(bearer|basic|digest|token)\s+[A-Za-z0-9._~+/=-]{8,}",
                "${1} [REDACTED]",
            ),
            r(
                "JSON web token",
                r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
                "[REDACTED]",
            ),
            r(
                "access key",
                r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_(?:live|test)_[A-Za-z0-9]{10,}|glpat-[A-Za-z0-9_-]{16,})\b",
                "[REDACTED]",
            ),
        ]
    })
}

#[allow(clippy::expect_used)] // constant pattern, see `rules`
fn ipv4_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}\b").expect("constant pattern is valid (tested)")
    })
}

#[allow(clippy::expect_used)] // constant pattern, see `rules`
fn ipv6_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b|::[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){0,6}",
        )
        .expect("constant pattern is valid (tested)")
    })
}

#[allow(clippy::expect_used)] // constant pattern, see `rules`
fn domain_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b")
            .expect("constant pattern is valid (tested)")
    })
}

/// Top-level "domains" that are really file names or code: never pseudonymised.
const NOT_TLDS: &[&str] = &[
    "log", "conf", "php", "html", "htm", "sock", "pid", "toml", "json", "js", "css", "txt", "md",
    "j2", "rs", "py", "sh", "service", "socket", "target", "d", "so", "ini", "xml", "yml", "yaml",
    "gz", "png", "jpg", "svg", "ico", "lock", "pem", "crt", "key", "cgi", "pl", "rb", "go", "tmp",
    "bak", "old", "cache", "timer", "mount", "jsonl", "woff", "map", "local", "internal", "status",
];

/// Consistent pseudonyms for IPs and host names; the mapping stays on the box.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pseudonyms {
    /// original → pseudonym.
    pub map: BTreeMap<String, String>,
}

impl Pseudonyms {
    /// Load a saved mapping (a missing or unreadable file gives an empty one).
    pub fn load(path: &Path) -> Pseudonyms {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Save the mapping with mode 0600 (it reverses the pseudonyms).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use crate::platform::fs::OpenOptionsExt as _;
        use std::io::Write as _;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        crate::platform::fs::set_private(&f)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    fn name(&mut self, original: &str, prefix: &str) -> String {
        if let Some(p) = self.map.get(original) {
            return p.clone();
        }
        let n = self.map.values().filter(|v| v.starts_with(prefix)).count() + 1;
        let p = format!("{prefix}{n}");
        self.map.insert(original.to_owned(), p.clone());
        p
    }
}

/// Redaction settings plus the pseudonym state.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Replace client IP addresses (not loopback) by `ip-N`.
    pub ips: bool,
    /// Replace host names by `host-N`.
    pub hosts: bool,
    /// Host names known to belong to this incident (the URL host, the machine).
    pub known_hosts: Vec<String>,
    pub pseudonyms: Pseudonyms,
    /// Everything masked so far.
    pub masked: Vec<Masked>,
}

impl Redactor {
    pub fn new(ips: bool, hosts: bool) -> Redactor {
        Redactor {
            ips,
            hosts,
            ..Redactor::default()
        }
    }

    /// Redact one text; `place` names it in the [`Masked`] records.
    pub fn text(&mut self, s: &str, place: &str) -> String {
        let mut out = s.to_owned();
        for rule in rules() {
            if !rule.re.is_match(&out) {
                continue;
            }
            let mut hits = Vec::new();
            let replaced = rule
                .re
                .replace_all(&out, |c: &Captures<'_>| {
                    let mut dst = String::new();
                    c.expand(rule.replace, &mut dst);
                    if dst != c[0] {
                        let at = c.get(0).map_or(0, |m| m.start());
                        hits.push(at);
                    }
                    dst
                })
                .into_owned();
            for at in hits {
                self.masked.push(Masked {
                    what: rule.what.to_owned(),
                    location: locate(place, &out, at),
                });
            }
            out = replaced;
        }
        if self.ips {
            out = self.pseudonymise_ips(&out, place);
        }
        if self.hosts {
            out = self.pseudonymise_hosts(&out, place);
        }
        out
    }

    fn pseudonymise_ips(&mut self, s: &str, place: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        let mut spans = Vec::new();
        for m in ipv4_re().find_iter(s).chain(ipv6_re().find_iter(s)) {
            if let Ok(ip) = m.as_str().parse::<IpAddr>() {
                if !ip.is_loopback() && !ip.is_unspecified() {
                    spans.push((m.start(), m.end(), ip.to_string()));
                }
            }
        }
        spans.sort_by_key(|x| x.0);
        for (a, b, ip) in spans {
            if a < last {
                continue;
            }
            out.push_str(&s[last..a]);
            let p = self.pseudonyms.name(&ip, "ip-");
            self.masked.push(Masked {
                what: "IP address".into(),
                location: locate(place, s, a),
            });
            out.push_str(&p);
            last = b;
        }
        out.push_str(&s[last..]);
        out
    }

    fn pseudonymise_hosts(&mut self, s: &str, place: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for m in domain_re().find_iter(s) {
            let name = m.as_str();
            let lower = name.to_ascii_lowercase();
            let tld = lower.rsplit('.').next().unwrap_or_default();
            let known = self
                .known_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name));
            if (!known && NOT_TLDS.contains(&tld))
                || lower == "localhost"
                || name.parse::<IpAddr>().is_ok()
            {
                continue;
            }
            out.push_str(&s[last..m.start()]);
            let p = self.pseudonyms.name(&lower, "host-");
            self.masked.push(Masked {
                what: "host name".into(),
                location: locate(place, s, m.start()),
            });
            out.push_str(&p);
            last = m.end();
        }
        out.push_str(&s[last..]);
        // Single-label names given as known (the machine's short host name).
        for h in self.known_hosts.clone() {
            if h.contains('.') || h.len() < 3 || h.eq_ignore_ascii_case("localhost") {
                continue;
            }
            if let Ok(re) = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(&h))) {
                if re.is_match(&out) {
                    let p = self.pseudonyms.name(&h.to_ascii_lowercase(), "host-");
                    self.masked.push(Masked {
                        what: "host name".into(),
                        location: place.to_owned(),
                    });
                    out = re.replace_all(&out, p.as_str()).into_owned();
                }
            }
        }
        out
    }

    /// Redact every string inside a JSON value; places are JSON paths.
    pub fn value(&mut self, v: &mut serde_json::Value, place: &str) {
        match v {
            serde_json::Value::String(s) => *s = self.text(s, place),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    self.value(x, &format!("{place}[{i}]"));
                }
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    let p = if place.is_empty() {
                        k.clone()
                    } else {
                        format!("{place}.{k}")
                    };
                    self.value(x, &p);
                }
            }
            _ => {}
        }
    }
}

fn locate(place: &str, text: &str, at: usize) -> String {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    if place.is_empty() {
        format!("line {line}, column {col}")
    } else if line == 1 {
        place.to_owned()
    } else {
        format!("{place}, line {line}")
    }
}

/// Redact secrets in a text (no pseudonyms).
pub fn text(s: &str) -> String {
    Redactor::default().text(s, "")
}

/// What [`text`] would mask, without the secrets: for the TUI's export preview.
pub fn preview(s: &str) -> Vec<Masked> {
    let mut r = Redactor::default();
    let _ = r.text(s, "");
    r.masked
}

/// Redact every string of a JSON value in place (no pseudonyms).
pub fn value(v: &mut serde_json::Value) {
    Redactor::default().value(v, "");
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &[&str] = &[
        "hunter2pw",
        "tok123secret",
        "AKIAABCDEFGHIJKLMNOP",
        "c2VjcmV0OnBhc3M=",
        "sessabc999",
        "s3cr3tDB",
        "sigvalue77",
        "keyvalue88",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcdefSIG",
        "wpSalt!x",
    ];

    fn planted() -> String {
        [
            "GET https://admin:hunter2pw@shop.example.com/x?token=tok123secret&page=2 HTTP/1.1",
            "https://s3.example.com/o?X-Amz-Credential=AKIAABCDEFGHIJKLMNOP&sig=sigvalue77",
            "Authorization: Basic c2VjcmV0OnBhc3M=",
            "Cookie: PHPSESSID=sessabc999; theme=dark",
            "fastcgi_param DB_PASSWORD s3cr3tDB;",
            "proxy_set_header Authorization \"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcdefSIG\";",
            "api_key=keyvalue88",
            "define('AUTH_SALT', 'wpSalt!x');",
            r#"{"user": "bob", "password": "hunter2pw", "api_key":"keyvalue88"}"#,
            "postgres://app:s3cr3tDB@db.internal:5432/shop",
            r#"1.2.3.4 - - [23/Nov/2026:09:21:00 +0000] "GET /cart?password=hunter2pw HTTP/1.1" 502 157 "-" "curl" "cookie=sessabc999""#,
        ]
        .join("\n")
    }

    #[test]
    fn no_planted_secret_survives() {
        let out = text(&planted());
        for s in SECRETS {
            assert!(!out.contains(s), "{s} survived in:\n{out}");
        }
        assert!(out.contains("page=2"), "{out}");
        assert!(out.contains("theme") || out.contains("Cookie"), "{out}");
        assert!(out.contains("shop.example.com/x"), "{out}");
    }

    #[test]
    fn redaction_is_idempotent() {
        let once = text(&planted());
        assert_eq!(text(&once), once);
        assert!(preview(&once).is_empty(), "{:?}", preview(&once));
    }

    #[test]
    fn preview_names_what_and_where_without_the_secret() {
        let m = preview("ok line\nAuthorization: Bearer abcdefghijkl\n");
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].what, "credential header");
        assert_eq!(m[0].location, "line 2, column 1");
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("abcdefghijkl"));
    }

    #[test]
    fn pseudonyms_are_consistent_and_skip_loopback() {
        let mut r = Redactor::new(true, true);
        r.known_hosts.push("web01".into());
        let a = r.text(
            "203.0.113.9 hit shop.example.com via 127.0.0.1 on web01; 203.0.113.9 again; /var/log/nginx/error.log",
            "x",
        );
        assert_eq!(
            a,
            "ip-1 hit host-1 via 127.0.0.1 on host-2; ip-1 again; /var/log/nginx/error.log"
        );
        let b = r.text("2001:db8::7 and SHOP.example.com", "y");
        assert_eq!(b, "ip-2 and host-1");
        assert_eq!(r.pseudonyms.map["203.0.113.9"], "ip-1");
    }

    #[test]
    fn json_values_are_redacted_everywhere() {
        let mut v = serde_json::json!({"a": ["x?token=tok123secret"], "b": {"c": "Cookie: a=b"}});
        value(&mut v);
        let s = v.to_string();
        assert!(!s.contains("tok123secret") && !s.contains("a=b"), "{s}");
    }
}
