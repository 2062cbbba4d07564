//! `iis_service`: is IIS serving? The World Wide Web Publishing Service's
//! state from the service control manager (`sc query w3svc`) and, when a
//! pool is named, its application pool's state
//! (`%windir%\system32\inetsrv\appcmd.exe list apppool /name:POOL`).
//!
//! Windows only (on Linux the runner answers `inconclusive`, see
//! [`crate::platform`]); the argv builders and the output parsers are pure
//! and tested everywhere. Invariants: both commands only query; nothing is
//! started, stopped or recycled here (that is `crate::action::iis`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;
use crate::duration::HumanDuration;

/// The IIS web service (World Wide Web Publishing Service).
pub const W3SVC: &str = "w3svc";

/// Parameters of the `iis_service` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The Windows service name (default `w3svc`, the World Wide Web Publishing Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// An application pool whose state to read too, e.g. `DefaultAppPool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_pool: Option<String>,
    /// Time allowed for each command (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "iis_service",
    summary: "IIS on Windows: the World Wide Web Publishing Service's state (`sc query w3svc`) and an application pool's state (`appcmd list apppool /name:POOL`). Windows only; inconclusive elsewhere.",
    example: r#"{ iis_service = { service = "w3svc", app_pool = "DefaultAppPool" } }"#,
    facts: &["iis.service_state", "iis.app_pool_state"],
};

impl Params {
    pub fn label(&self) -> String {
        match self.app_pool.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => format!("IIS service {} and app pool {p}", self.service()),
            None => format!("IIS service {}", self.service()),
        }
    }
    pub fn timeout(&self) -> Duration {
        2 * self.per_command() + Duration::from_secs(1)
    }
    fn per_command(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0)
    }
    fn service(&self) -> &str {
        self.service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(W3SVC)
    }
}

/// `appcmd.exe` under the Windows directory `windir` (`%windir%`; `C:\Windows` when unknown).
pub fn appcmd_in(windir: Option<&str>) -> String {
    let w = windir
        .map(|w| w.trim_end_matches(['\\', '/']))
        .filter(|w| !w.is_empty())
        .unwrap_or(r"C:\Windows");
    format!(r"{w}\system32\inetsrv\appcmd.exe")
}

/// `appcmd.exe` of this host (`%windir%`, else `%SystemRoot%`).
pub fn appcmd() -> String {
    let windir = std::env::var("windir")
        .or_else(|_| std::env::var("SystemRoot"))
        .ok();
    appcmd_in(windir.as_deref())
}

/// `sc query SERVICE`.
pub fn sc_query_argv(service: &str) -> Vec<String> {
    vec!["sc".into(), "query".into(), service.to_owned()]
}

/// `APPCMD list apppool /name:POOL`.
pub fn list_apppool_argv(appcmd: &str, pool: &str) -> Vec<String> {
    vec![
        appcmd.to_owned(),
        "list".into(),
        "apppool".into(),
        format!("/name:{pool}"),
    ]
}

pub use crate::action_spec::valid_pool_name;

/// The state `sc query` reports, from its `STATE : 4  RUNNING` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScState {
    /// SERVICE_STATUS.dwCurrentState: 1 stopped … 4 running … 7 paused.
    pub code: u32,
    /// `RUNNING`, `STOPPED`, `START_PENDING`...
    pub name: String,
}

impl ScState {
    pub fn running(&self) -> bool {
        self.code == 4
    }
}

const SC_STATES: &[(u32, &str)] = &[
    (1, "STOPPED"),
    (2, "START_PENDING"),
    (3, "STOP_PENDING"),
    (4, "RUNNING"),
    (5, "CONTINUE_PENDING"),
    (6, "PAUSE_PENDING"),
    (7, "PAUSED"),
];

/// The service state in `sc query` output. The label (`STATE`) is
/// translated on localized Windows, the code and its constant name are not:
/// the line is found by them.
pub fn parse_sc_state(text: &str) -> Option<ScState> {
    text.lines().find_map(|l| {
        let (_, value) = l.split_once(':')?;
        let mut w = value.split_whitespace();
        let code: u32 = w.next()?.parse().ok()?;
        let name = w.next()?;
        SC_STATES
            .iter()
            .any(|(c, n)| *c == code && *n == name)
            .then(|| ScState {
                code,
                name: name.to_owned(),
            })
    })
}

/// The Win32 error `sc` printed (`OpenService FAILED 1060:`), if any.
pub fn parse_sc_error(text: &str) -> Option<u32> {
    let at = text.find("FAILED ")?;
    let rest = &text[at + "FAILED ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
}

/// The state of `pool` in `appcmd list apppool` output:
/// `APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)`.
pub fn parse_apppool_state(text: &str, pool: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("APPPOOL \"")?;
        let (name, attrs) = rest.split_once('"')?;
        if !name.eq_ignore_ascii_case(pool) {
            return None;
        }
        let attrs = attrs.trim().strip_prefix('(')?.strip_suffix(')')?;
        attrs.split(',').find_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("state")
                .then(|| v.trim().to_owned())
        })
    })
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = look(p).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn look(p: &Params) -> CheckReport {
    let label = p.label();
    let service = p.service();
    let argv = sc_query_argv(service);
    let out = match tool::run(&argv[0], &argv[1..], p.per_command(), 64 * 1024).await {
        Ok(o) => o,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    let text = out.combined();
    let ev = Evidence::new("sc query", text.trim().to_owned()).at(out.argv.clone());
    let Some(state) = parse_sc_state(&text) else {
        let why = match parse_sc_error(&text) {
            Some(1060) => format!("no service `{service}` is installed (IIS is not installed?)"),
            Some(5) => format!("access to service `{service}` is denied (run as an administrator)"),
            Some(code) => format!("`{}` failed with Win32 error {code}", out.argv),
            None => format!("`{}` printed no service state", out.argv),
        };
        return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, why).with_evidence(ev);
    };
    let mut r = CheckReport::new(DOC.kind, label.clone(), Outcome::Ok, String::new())
        .with_fact("iis.service_state", state.name.to_ascii_lowercase())
        .with_evidence(ev.clone());
    let mut summary = format!("service {service} is {}", state.name);
    if !state.running() {
        r.outcome = Outcome::Problem;
        r = r.diagnose(
            Cause::FrontendDown,
            Severity::Critical,
            format!("the IIS service {service} is {} (not running)", state.name),
            vec![ev],
        );
    }
    if let Some(pool) = p.app_pool.as_deref().filter(|x| !x.is_empty()) {
        if let Err(e) = valid_pool_name(pool) {
            r.outcome = Outcome::combine([r.outcome, Outcome::Inconclusive]);
            let _ = write!(summary, "; {e}");
        } else {
            let argv = list_apppool_argv(&appcmd(), pool);
            match tool::run_path(
                std::path::Path::new(&argv[0]),
                &argv[0],
                &argv[1..],
                p.per_command(),
                64 * 1024,
            )
            .await
            {
                Ok(o) => {
                    let text = o.combined();
                    let ev = Evidence::new("appcmd list apppool", text.trim().to_owned())
                        .at(o.argv.clone());
                    r.evidence.push(ev.clone());
                    if let Some(s) = parse_apppool_state(&text, pool) {
                        let _ = write!(summary, "; application pool {pool} is {s}");
                        r.facts
                            .insert("iis.app_pool_state".into(), s.to_ascii_lowercase());
                        if !s.eq_ignore_ascii_case("started") {
                            r.outcome = Outcome::Problem;
                            r = r.diagnose(
                                Cause::AppFatal,
                                Severity::High,
                                format!(
                                    "application pool {pool} is {s}: IIS cannot hand requests to it"
                                ),
                                vec![ev],
                            );
                        }
                    } else {
                        r.outcome = Outcome::combine([r.outcome, Outcome::Inconclusive]);
                        let _ = write!(summary, "; appcmd shows no application pool {pool}");
                    }
                }
                Err(e) => {
                    r.outcome = Outcome::combine([r.outcome, Outcome::Inconclusive]);
                    let _ = write!(summary, "; {e}");
                }
            }
        }
    }
    r.summary = summary;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    // The layout of `sc query` on Windows Server (fields padded with spaces).
    const SC_RUNNING: &str = "\r
SERVICE_NAME: w3svc \r
        TYPE               : 20  WIN32_SHARE_PROCESS  \r
        STATE              : 4  RUNNING \r
                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r
        WIN32_EXIT_CODE    : 0  (0x0)\r
        SERVICE_EXIT_CODE  : 0  (0x0)\r
        CHECKPOINT         : 0x0\r
        WAIT_HINT          : 0x0\r
";

    #[test]
    fn sc_query_argv_is_exact() {
        assert_eq!(sc_query_argv("w3svc"), ["sc", "query", "w3svc"]);
    }

    #[test]
    fn appcmd_lives_under_windir() {
        assert_eq!(
            appcmd_in(Some(r"C:\WINDOWS")),
            r"C:\WINDOWS\system32\inetsrv\appcmd.exe"
        );
        assert_eq!(
            appcmd_in(Some(r"D:\Win\")),
            r"D:\Win\system32\inetsrv\appcmd.exe"
        );
        assert_eq!(appcmd_in(None), r"C:\Windows\system32\inetsrv\appcmd.exe");
        assert_eq!(
            list_apppool_argv(&appcmd_in(None), "Shop Pool"),
            [
                r"C:\Windows\system32\inetsrv\appcmd.exe",
                "list",
                "apppool",
                "/name:Shop Pool"
            ]
        );
    }

    #[test]
    fn sc_states_are_read_by_code_and_name() {
        let s = parse_sc_state(SC_RUNNING).unwrap();
        assert_eq!((s.code, s.name.as_str(), s.running()), (4, "RUNNING", true));
        let stopped = SC_RUNNING.replace("4  RUNNING", "1  STOPPED");
        let s = parse_sc_state(&stopped).unwrap();
        assert_eq!((s.code, s.running()), (1, false));
        // A localized label (German `STATUS`) keeps the code and its name.
        let de = SC_RUNNING.replace("STATE   ", "STATUS  ");
        assert_eq!(parse_sc_state(&de).unwrap().name, "RUNNING");
        // `TYPE : 20 WIN32_SHARE_PROCESS` is not a state.
        assert_eq!(
            parse_sc_state("        TYPE : 20  WIN32_SHARE_PROCESS"),
            None
        );
    }

    #[test]
    fn sc_failures_give_the_win32_code() {
        let missing = "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n";
        assert_eq!(parse_sc_state(missing), None);
        assert_eq!(parse_sc_error(missing), Some(1060));
        assert_eq!(parse_sc_error(SC_RUNNING), None);
    }

    #[test]
    fn apppool_state_is_read_for_the_named_pool() {
        let out = "APPPOOL \"DefaultAppPool\" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)\r\nAPPPOOL \"Shop\" (MgdVersion:,MgdMode:Integrated,state:Stopped)\r\n";
        assert_eq!(
            parse_apppool_state(out, "DefaultAppPool").as_deref(),
            Some("Started")
        );
        assert_eq!(parse_apppool_state(out, "shop").as_deref(), Some("Stopped"));
        assert_eq!(parse_apppool_state(out, "Other"), None);
        let err = "ERROR ( message:Cannot find APPPOOL object with identifier \"X\". )";
        assert_eq!(parse_apppool_state(err, "X"), None);
    }

    #[test]
    fn pool_names_that_would_read_as_switches_are_refused() {
        assert!(valid_pool_name("DefaultAppPool").is_ok());
        assert!(valid_pool_name("Shop Pool 2").is_ok());
        for bad in ["", " ", "/apppool.name:x", "-x", "a\"b", "a|b", "a\nb"] {
            assert!(valid_pool_name(bad).is_err(), "{bad:?}");
        }
    }
}
