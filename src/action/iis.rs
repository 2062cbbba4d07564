//! IIS actions (Windows): restart the World Wide Web Publishing Service the
//! way the method says (`net stop w3svc`, then `net start w3svc`), restart
//! every IIS service (`iisreset`), or recycle one application pool
//! (`%windir%\system32\inetsrv\appcmd.exe recycle apppool /apppool.name:POOL`).
//!
//! The exact argv come from [`crate::action_spec::iis_commands`] (pure, tested
//! on every platform); this file runs them under the session's
//! [`ExecPolicy`] (the executor has already checked `--read-only`,
//! `--max-tier` and consent), then reads the state back (`sc query w3svc`,
//! `appcmd list apppool`) and, given the URL, requests it again. On another
//! platform nothing runs: the result says "not available on this platform".

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::executor::SERVICE_TIMEOUT;
use super::policy::ExecPolicy;
use super::process;
use super::{IisAction, IisOp};
use crate::checks::iis_service::{
    self, W3SVC, list_apppool_argv, parse_apppool_state, parse_sc_state, sc_query_argv,
};
use crate::engine::ActionResult;

/// The commands this host would run, in order (`appcmd.exe` under this
/// host's `%windir%`).
pub fn commands(a: &IisAction) -> Result<Vec<Vec<String>>, String> {
    crate::action_spec::iis_commands(a, &iis_service::appcmd())
}

/// The read-only command that shows whether the action took: the service's
/// state, or the recycled pool's.
pub fn readback_argv(a: &IisAction, appcmd: &str) -> Vec<String> {
    match (a.op, a.app_pool.as_deref()) {
        (IisOp::Recycle, Some(pool)) => list_apppool_argv(appcmd, pool),
        _ => sc_query_argv(W3SVC),
    }
}

/// What the read-back output says, and whether it is the state wanted
/// (the service RUNNING, the pool Started).
pub fn readback_verdict(a: &IisAction, output: &str) -> (bool, String) {
    match (a.op, a.app_pool.as_deref()) {
        (IisOp::Recycle, Some(pool)) => match parse_apppool_state(output, pool) {
            Some(s) => (
                s.eq_ignore_ascii_case("started"),
                format!("application pool {pool} is {s}"),
            ),
            None => (false, format!("appcmd shows no application pool {pool}")),
        },
        _ => match parse_sc_state(output) {
            Some(s) => (s.running(), format!("{W3SVC} is {}", s.name)),
            None => (false, format!("`sc query {W3SVC}` shows no state")),
        },
    }
}

/// Run the action (the policy was checked by the executor).
pub async fn run(a: &IisAction, policy: &ExecPolicy) -> ActionResult {
    let t0 = Instant::now();
    let done = |argv: Vec<String>, ok: bool, output: String, summary: String| ActionResult {
        argv,
        ok,
        exit_code: None,
        output,
        summary,
        duration_ms: t0.elapsed().as_millis() as u64,
    };
    if let Some(why) = crate::platform::unavailable(iis_service::DOC.kind) {
        return done(
            crate::action::ActionSpec::Iis(a.clone()).argv(),
            false,
            String::new(),
            format!("not run: IIS actions need Windows ({why})"),
        );
    }
    let cmds = match commands(a) {
        Ok(c) => c,
        Err(e) => return done(Vec::new(), false, String::new(), e),
    };
    let mut out = String::new();
    let mut last = Vec::new();
    for (i, argv) in cmds.iter().enumerate() {
        let r = process::run(argv, SERVICE_TIMEOUT, policy).await;
        out.push_str(&r.transcript());
        last.clone_from(&r.argv);
        if r.ok {
            continue;
        }
        // `net stop` of a stopped service fails ("is not started"): the
        // restart still has to start it, which the state read back decides.
        let stop_of_restart = a.op == IisOp::Restart && i == 0;
        if stop_of_restart {
            let q = process::run(&sc_query_argv(W3SVC), SERVICE_TIMEOUT, policy).await;
            out.push_str(&q.transcript());
            if parse_sc_state(&q.output).is_some_and(|s| s.code == 1) {
                let _ = writeln!(out, "({W3SVC} was already stopped: starting it)");
                continue;
            }
        }
        let summary = format!(
            "`{}` failed{}: {}",
            super::shell_quote(argv),
            r.exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default(),
            r.head(3)
        );
        return done(last, false, out, summary);
    }
    // Read the state back: the commands can succeed while the service or
    // pool does not come up (a pool stops again after rapid-fail protection).
    let rb = readback_argv(a, &iis_service::appcmd());
    let q = process::run(&rb, SERVICE_TIMEOUT, policy).await;
    out.push_str(&q.transcript());
    let (up, state) = readback_verdict(a, &q.output);
    let what = match a.op {
        IisOp::Restart => format!("{W3SVC} restarted"),
        IisOp::Reset => "IIS reset".to_owned(),
        IisOp::Recycle => format!(
            "application pool {} recycled",
            a.app_pool.as_deref().unwrap_or_default()
        ),
    };
    let mut summary = format!("{what}; {state}");
    let mut ok = up;
    if let Some(url) = a.url.as_deref().filter(|u| !u.is_empty()) {
        let v = super::verify(url, 3, Duration::from_secs(2), Vec::new()).await;
        let _ = writeln!(out, "verify: {}", v.summary());
        let _ = write!(summary, "; {}", v.summary());
        ok = ok && v.fixed();
    }
    done(last, ok, out, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action_spec::{APPCMD, iis_commands};

    fn act(op: IisOp, pool: Option<&str>) -> IisAction {
        IisAction {
            op,
            app_pool: pool.map(str::to_owned),
            url: None,
        }
    }

    #[test]
    fn restart_is_net_stop_then_net_start_w3svc() {
        assert_eq!(
            iis_commands(&act(IisOp::Restart, None), APPCMD).unwrap(),
            vec![vec!["net", "stop", "w3svc"], vec!["net", "start", "w3svc"]]
        );
    }

    #[test]
    fn reset_is_iisreset_alone() {
        assert_eq!(
            iis_commands(&act(IisOp::Reset, None), APPCMD).unwrap(),
            vec![vec!["iisreset"]]
        );
    }

    #[test]
    fn recycle_names_the_pool_as_one_argument() {
        let appcmd = iis_service::appcmd_in(Some(r"C:\Windows"));
        assert_eq!(
            iis_commands(&act(IisOp::Recycle, Some("Shop Pool")), &appcmd).unwrap(),
            vec![vec![
                r"C:\Windows\system32\inetsrv\appcmd.exe",
                "recycle",
                "apppool",
                "/apppool.name:Shop Pool"
            ]]
        );
        assert!(iis_commands(&act(IisOp::Recycle, None), APPCMD).is_err());
        assert!(iis_commands(&act(IisOp::Recycle, Some("/commit:apphost")), APPCMD).is_err());
        assert!(iis_commands(&act(IisOp::Recycle, Some("a\" /x")), APPCMD).is_err());
    }

    #[test]
    fn the_state_is_read_back_from_sc_or_appcmd() {
        assert_eq!(
            readback_argv(&act(IisOp::Restart, None), APPCMD),
            ["sc", "query", "w3svc"]
        );
        assert_eq!(
            readback_argv(&act(IisOp::Recycle, Some("Shop")), APPCMD),
            [APPCMD, "list", "apppool", "/name:Shop"]
        );
        let running = "SERVICE_NAME: w3svc\r\n        STATE              : 4  RUNNING\r\n";
        assert_eq!(
            readback_verdict(&act(IisOp::Reset, None), running),
            (true, "w3svc is RUNNING".into())
        );
        let stopped = running.replace("4  RUNNING", "1  STOPPED");
        assert!(!readback_verdict(&act(IisOp::Restart, None), &stopped).0);
        let pool = "APPPOOL \"Shop\" (MgdVersion:v4.0,MgdMode:Integrated,state:Stopped)";
        assert_eq!(
            readback_verdict(&act(IisOp::Recycle, Some("Shop")), pool),
            (false, "application pool Shop is Stopped".into())
        );
    }

    #[test]
    fn iis_actions_are_disruptive_and_refused_read_only() {
        use crate::action::Tier;
        for op in [IisOp::Restart, IisOp::Reset, IisOp::Recycle] {
            let spec = ActionSpec::Iis(act(op, Some("Shop")));
            assert_eq!(spec.effective_tier(Tier::Reversible), Tier::Disruptive);
        }
        let ro = ExecPolicy {
            read_only: true,
            interactive_consent: true,
            ..ExecPolicy::default()
        };
        let spec = ActionSpec::Iis(act(IisOp::Restart, None));
        let x = futures::executor::block_on(crate::action::execute(&spec, Tier::Disruptive, &ro));
        assert!(x.refused.as_deref().unwrap().contains("read-only"), "{x:?}");
        assert_eq!(x.result.argv, ["net", "stop", "w3svc"]);
        assert!(!x.result.ok);
    }

    #[test]
    fn iis_actions_parse_from_toml() {
        let s: ActionSpec =
            toml::from_str(r#"iis = { op = "restart", url = "http://x/" }"#).unwrap();
        assert_eq!(
            s,
            ActionSpec::Iis(IisAction {
                op: IisOp::Restart,
                app_pool: None,
                url: Some("http://x/".into())
            })
        );
        assert!(toml::from_str::<ActionSpec>(r#"iis = { op = "stop" }"#).is_err());
    }

    use crate::action::ActionSpec;
}
