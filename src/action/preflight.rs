//! Pre-flight: run the server's configuration test before touching it.
//! A restart of a server whose config test fails turns a partial outage into
//! a full one, so the executor refuses and shows the test's errors.

use std::time::Duration;

use super::policy::ExecPolicy;
use super::process::{self, Run};
use super::{ServiceAction, service};

/// How long a config test may run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The verdict of the pre-flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The test that ran, if one is known for this server.
    pub test: Option<Run>,
    /// May the operation go ahead?
    pub ok: bool,
    /// One line for the operator.
    pub message: String,
}

/// Run the config test of `s` (if one is known).
pub async fn check(s: &ServiceAction, policy: &ExecPolicy) -> Preflight {
    let Some(argv) = service::config_test(s, policy) else {
        return Preflight {
            test: None,
            ok: true,
            message: format!("no configuration test is known for {}", s.unit),
        };
    };
    let run = process::run(&argv, TEST_TIMEOUT, policy).await;
    let ok = run.ok;
    let message = if ok {
        format!("configuration test passed: {}", super::shell_quote(&argv))
    } else {
        format!(
            "configuration test failed, refusing to {} {}: {}",
            s.op,
            s.unit,
            run.head(4)
        )
    };
    Preflight {
        test: Some(run),
        ok,
        message,
    }
}
