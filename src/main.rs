//! The `triage502` binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = triage502::cli::Cli::parse();
    match triage502::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("triage502: {e:#}");
            if e.downcast_ref::<triage502::cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}
