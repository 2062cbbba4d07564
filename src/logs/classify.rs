//! One entry in, one verdict out: which signature matched, what cause it
//! means, and the request fields it names.
//!
//! The literal prefilter picks the candidate signatures; they are tried in
//! catalogue order and the first regex that matches decides. Causes come
//! from errno *numbers* (never libc text): nginx/Apache print them, and the
//! few layouts that do not (HAProxy termination states, Go error strings)
//! are mapped to the errno they stand for, so one table decides everything.

use serde::Serialize;

use super::catalogue::{Catalogue, CauseRule, Signature};
use super::format::{self, Fields, Head, request_path};
use super::{template, wrapper};
use crate::cause::Cause;

/// What part an entry plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A gateway failure the proxy saw: counts toward its cause.
    Primary,
    /// A consequence or backend-side corroboration: never outranks a primary.
    Secondary,
    /// A negative control: related-looking, not a gateway failure.
    Ignored,
    /// Mentions upstream trouble but no signature matched (a catalogue gap).
    Unmatched,
}

/// The verdict on one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub role: Role,
    /// The cause, when the signature decides one.
    pub cause: Option<Cause>,
    /// Index into [`Catalogue::signatures`].
    #[serde(skip)]
    pub signature: Option<usize>,
    pub fields: Fields,
    /// Other causes the same line may mean (`113: No route to host` is a
    /// REJECT rule or an address that no longer exists): the walk decides
    /// with the other evidence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Cause>,
}

impl Classification {
    pub fn signature<'c>(&self, cat: &'c Catalogue) -> Option<&'c Signature> {
        self.signature.and_then(|i| cat.signatures.get(i))
    }
}

/// Longest entry classified; longer ones are cut (nginx itself caps at 2 KiB,
/// FastCGI stderr entries with stack traces are the long ones).
pub const MAX_ENTRY: usize = 64 * 1024;

/// The named captures [`Catalogue::verdict`] reads.
const CAPTURE_NAMES: [&str; 11] = [
    "errno", "upstream", "socket", "client", "request", "uri", "host", "status", "pid", "pid2",
    "term",
];

/// A signature's captures on this entry, or remembered from the first entry
/// of its template ([`template::Captured`]).
enum Caps<'a, 'h> {
    Live(&'a regex::bytes::Captures<'h>),
    Cached(&'a template::Captured),
}

impl Caps<'_, '_> {
    fn has(&self, name: &str) -> bool {
        match self {
            Caps::Live(c) => c.name(name).is_some(),
            Caps::Cached(c) => c.get(name).is_some(),
        }
    }

    /// The errno the match implies ([`template::Implied::Unknown`]: the
    /// remembered captures cannot tell).
    fn implied_errno(&self, entry: &[u8]) -> template::Implied {
        match self {
            Caps::Live(_) => template::Implied::Known(implied_errno(self, entry)),
            Caps::Cached(c) => c.implied_errno,
        }
    }
}

/// The errno a text stands for where the layout prints none.
fn implied_errno(caps: &Caps<'_, '_>, text: &[u8]) -> Option<u32> {
    let Caps::Live(caps) = caps else {
        return None;
    };
    if let Some(t) = caps.name("term") {
        return Some(match t.as_bytes() {
            b"SC" => 111,
            b"sC" | b"sH" => 110,
            b"SH" => 104,
            b"PH" => 71,
            b"sQ" => 11,
            _ => 24, // PC, RC: local resources
        });
    }
    let m = caps.get(0).map_or(text, |m| m.as_bytes());
    let phrases: [(&[u8], u32); 6] = [
        (b"connection refused", 111),
        (b"permission denied", 13),
        (b"no route to host", 113),
        (b"network is unreachable", 101),
        (b"cannot assign requested address", 99),
        (b"too many open files", 24),
    ];
    phrases
        .iter()
        .find(|(p, _)| memchr::memmem::find(m, p).is_some())
        .map(|(_, e)| *e)
}

fn cap_str(caps: &Caps<'_, '_>, name: &str) -> Option<String> {
    match caps {
        Caps::Live(c) => c
            .name(name)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned()),
        Caps::Cached(c) => c.get(name).map(str::to_owned),
    }
}

impl Catalogue {
    /// Classify one entry (head line plus continuation lines). `None` when the
    /// entry has nothing to do with upstream failures.
    ///
    /// Wrappers (container runtimes, shippers, syslog) are peeled off every
    /// line first ([`super::wrapper`]); `head` is the head of the line inside
    /// ([`format::head`] looks through wrappers). When the layout is unknown
    /// (a fragment, a bare message) every signature may apply, whatever
    /// server it names.
    ///
    /// Single-line nginx entries go through the template cache
    /// ([`super::template`]): the same verdict as
    /// [`Catalogue::classify_uncached`], for less work per line.
    pub fn classify(&self, head: &Head, entry: &[u8]) -> Option<Classification> {
        let entry = &entry[..entry.len().min(MAX_ENTRY)];
        let unwrapped = wrapper::unwrap_entry(entry);
        if let std::borrow::Cow::Borrowed(entry) = unwrapped {
            return template::with_cached(self, head, entry, |cached| match cached {
                Some((span, Some(rem))) => match self.confirm(&rem, head, entry) {
                    Some(c) => (Some(c), None),
                    None => self.classify_remembered(span, head, entry),
                },
                Some((span, None)) => self.classify_remembered(span, head, entry),
                None => (self.classify_unwrapped(head, entry), None),
            });
        }
        self.classify_unwrapped(head, &unwrapped)
    }

    /// [`Catalogue::classify`] without the template cache (the reference the
    /// cache is tested against).
    pub fn classify_uncached(&self, head: &Head, entry: &[u8]) -> Option<Classification> {
        let entry = &entry[..entry.len().min(MAX_ENTRY)];
        let unwrapped = wrapper::unwrap_entry(entry);
        self.classify_unwrapped(head, &unwrapped)
    }

    /// The full path, and what a template may remember: the signature, and
    /// its captures when they all lie in the message (`span`).
    fn classify_remembered(
        &self,
        span: (usize, usize),
        head: &Head,
        entry: &[u8],
    ) -> (Option<Classification>, Option<template::Remembered>) {
        let c = self.classify_unwrapped(head, entry);
        let remember = c
            .as_ref()
            .filter(|c| c.role != Role::Unmatched || c.signature.is_some())
            .and_then(|c| c.signature)
            .map(|idx| template::Remembered {
                sig: idx as u32,
                captures: self.captured(idx, span, entry).map(std::rc::Rc::new),
            });
        (c, remember)
    }

    /// The captures of signature `idx` on `entry` when every one the verdict
    /// reads lies inside `span` (and so is the same on every line of the
    /// template); `None` otherwise.
    fn captured(
        &self,
        idx: usize,
        span: (usize, usize),
        entry: &[u8],
    ) -> Option<template::Captured> {
        let sig = self.signatures.get(idx)?;
        if sig.not_a_cause {
            return None; // a match test already decides these
        }
        let caps = sig.regex.get().captures(entry)?;
        let inside = |m: regex::bytes::Match<'_>| m.start() >= span.0 && m.end() <= span.1;
        let mut values = Vec::new();
        for name in CAPTURE_NAMES {
            if let Some(m) = caps.name(name) {
                if !inside(m) {
                    return None;
                }
                values.push((name, String::from_utf8_lossy(m.as_bytes()).into_owned()));
            }
        }
        let whole_inside = caps.get(0).is_some_and(inside);
        Some(template::Captured {
            values,
            implied_errno: if whole_inside {
                template::Implied::Known(implied_errno(&Caps::Live(&caps), entry))
            } else {
                template::Implied::Unknown
            },
        })
    }

    /// The verdict of the remembered signature on `entry` when its regex
    /// matches: a match test with the template's captures when they are
    /// remembered, a capture search otherwise.
    fn confirm(
        &self,
        rem: &template::Remembered,
        head: &Head,
        entry: &[u8],
    ) -> Option<Classification> {
        let idx = rem.sig as usize;
        let sig = self.signatures.get(idx)?;
        let re = sig.regex.get();
        if sig.not_a_cause {
            return re.is_match(entry).then(|| Classification {
                role: Role::Ignored,
                cause: None,
                signature: Some(idx),
                fields: Fields::default(),
                alternatives: Vec::new(),
            });
        }
        if let Some(captured) = &rem.captures {
            if !re.is_match(entry) {
                return None;
            }
            if let Some(v) = self.verdict(idx, sig, head, entry, &Caps::Cached(captured)) {
                return Some(v);
            }
        }
        let caps = re.captures(entry)?;
        self.verdict(idx, sig, head, entry, &Caps::Live(&caps))
    }

    /// Classify an entry whose wrappers are already peeled.
    fn classify_unwrapped(&self, head: &Head, entry: &[u8]) -> Option<Classification> {
        let mut candidates: Vec<u32> = Vec::new();
        let mut marker = false;
        for m in self.literals.find_overlapping_iter(entry) {
            let p = m.pattern().as_usize();
            if p < self.literal_count {
                candidates.extend_from_slice(&self.owners[p]);
            } else {
                marker = true;
            }
        }
        if candidates.is_empty() && !marker {
            return None;
        }
        candidates.sort_unstable();
        candidates.dedup();
        let server = head.server();
        for i in candidates {
            let sig = &self.signatures[i as usize];
            if sig.server != "any" && server != "any" && sig.server != server {
                continue;
            }
            let re = sig.regex.get();
            if sig.not_a_cause {
                // Negative controls are only counted: a match test is enough.
                if re.is_match(entry) {
                    return Some(Classification {
                        role: Role::Ignored,
                        cause: None,
                        signature: Some(i as usize),
                        fields: Fields::default(),
                        alternatives: Vec::new(),
                    });
                }
                continue;
            }
            let Some(caps) = re.captures(entry) else {
                continue;
            };
            return self.verdict(i as usize, sig, head, entry, &Caps::Live(&caps));
        }
        // Nothing matched: a gap worth showing only when it mentions upstream
        // trouble and the server called it an error.
        let errorish = head.level.is_some_and(format::Level::is_error);
        (marker && errorish).then(|| Classification {
            role: Role::Unmatched,
            cause: None,
            signature: None,
            fields: format::fields(head, entry),
            alternatives: Vec::new(),
        })
    }

    /// The verdict of signature `idx` from its captures; `None` only when
    /// remembered captures cannot tell the errno the match text implies.
    fn verdict(
        &self,
        idx: usize,
        sig: &Signature,
        head: &Head,
        entry: &[u8],
        caps: &Caps<'_, '_>,
    ) -> Option<Classification> {
        if sig.not_a_cause {
            // Negative controls need no fields: they are only counted.
            return Some(Classification {
                role: Role::Ignored,
                cause: None,
                signature: Some(idx),
                fields: Fields::default(),
                alternatives: Vec::new(),
            });
        }
        let mut f = format::fields(head, entry);
        if let Some(e) = cap_str(caps, "errno").and_then(|s| s.parse().ok()) {
            f.errno = Some(e);
        }
        if let Some(u) = cap_str(caps, "upstream") {
            if let Some(path) = u.strip_prefix("unix:") {
                f.socket = Some(path.trim().trim_end_matches(':').to_owned());
            }
            f.upstream = Some(u);
        }
        if let Some(s) = cap_str(caps, "socket") {
            f.socket = Some(s);
        }
        if let Some(c) = cap_str(caps, "client") {
            f.client = Some(c);
        }
        if let Some(r) = cap_str(caps, "request") {
            f.path = request_path(&r);
            f.request = Some(r);
        }
        if let Some(u) = cap_str(caps, "uri") {
            f.path = request_path(&u);
        }
        if let Some(h) = cap_str(caps, "host") {
            f.host = Some(h);
        }
        if let Some(s) = cap_str(caps, "status").and_then(|s| s.parse().ok()) {
            f.status = Some(s);
        }
        if let Some(p) = cap_str(caps, "pid")
            .or_else(|| cap_str(caps, "pid2"))
            .and_then(|s| s.parse().ok())
        {
            f.pid = Some(p);
        } else if f.pid.is_none() && head.format == format::Format::PhpFpm {
            f.pid = head.pid;
        }
        let (role, cause) = if sig.not_a_cause {
            (Role::Ignored, None)
        } else {
            let cause = match sig.cause {
                CauseRule::Fixed(c) => Some(c),
                CauseRule::None => None,
                CauseRule::Errno => {
                    if f.errno.is_none() || caps.has("term") {
                        let template::Implied::Known(implied) = caps.implied_errno(entry) else {
                            return None;
                        };
                        f.errno = implied.or(f.errno);
                    }
                    f.errno.and_then(|e| self.errno_cause(e, f.is_unix()))
                }
            };
            if sig.cause == CauseRule::Errno && cause.is_none() {
                // An errno the table does not know: show it as a gap.
                (Role::Unmatched, None)
            } else if sig.secondary {
                (Role::Secondary, cause)
            } else {
                (Role::Primary, cause)
            }
        };
        let mut alternatives = sig.alternatives.clone();
        if sig.cause == CauseRule::Errno
            && let Some(e) = f.errno
        {
            alternatives.extend(self.errno_alternatives(e));
        }
        alternatives.retain(|a| Some(*a) != cause);
        alternatives.dedup();
        Some(Classification {
            role,
            cause,
            signature: Some(idx),
            fields: f,
            alternatives,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::time::Zone;

    fn classify(line: &str) -> Option<Classification> {
        let cat = Catalogue::builtin();
        let mut z = Zone::utc();
        let head = format::head(line.as_bytes(), &mut z).expect("a head line");
        cat.classify(&head, line.as_bytes())
    }

    #[test]
    fn every_builtin_example_is_classified_as_its_signature_says() {
        let cat = Catalogue::builtin();
        let mut z = Zone::utc();
        let mut bad = Vec::new();
        for sig in &cat.signatures {
            for ex in &sig.examples {
                let c = crate::logs::classify_with(cat, &mut z, ex.as_bytes());
                let Some(c) = c else {
                    bad.push(format!("{}: not classified: {ex}", sig.id));
                    continue;
                };
                let got = c.signature(cat).map_or("-", |s| s.id.as_str());
                if sig.not_a_cause {
                    // Another negative control may catch it first; it must stay out of the causes.
                    if c.role != Role::Ignored {
                        bad.push(format!(
                            "{}: negative control became {:?} via {got}: {ex}",
                            sig.id, c.role
                        ));
                    }
                } else if got != sig.id {
                    bad.push(format!("{}: matched by {got} instead: {ex}", sig.id));
                } else if sig.cause != CauseRule::None && c.cause.is_none() {
                    bad.push(format!("{}: no cause for {ex}", sig.id));
                }
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn errno_decides_not_text() {
        let tcp13 = "2024/03/14 09:22:07 [crit] 1#1: *1 connect() to 127.0.0.1:8080 failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: x, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"x\"";
        assert_eq!(classify(tcp13).unwrap().cause, Some(Cause::FirewallBlocked));
        let unix13 = tcp13
            .replace(
                "to 127.0.0.1:8080 failed",
                "to unix:/run/php/php8.2-fpm.sock failed",
            )
            .replace(
                "http://127.0.0.1:8080/",
                "fastcgi://unix:/run/php/php8.2-fpm.sock:",
            );
        let c = classify(&unix13).unwrap();
        assert_eq!(c.cause, Some(Cause::SocketPermission));
        assert_eq!(c.fields.socket.as_deref(), Some("/run/php/php8.2-fpm.sock"));
        let musl = tcp13.replace("(13: Permission denied)", "(113: Host is unreachable)");
        let glibc = tcp13.replace("(13: Permission denied)", "(113: No route to host)");
        assert_eq!(
            classify(&musl).unwrap().cause,
            classify(&glibc).unwrap().cause
        );
    }
}
