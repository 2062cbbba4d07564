//! A tiny harness for `triage502 logs …` until the lead wires
//! `LogsCommand` into the main CLI (used by scripts/bench-logs.sh and by hand):
//!
//! cargo run --release --example logs_cli -- scan /var/log/nginx/error.log --since 30m

use std::process::ExitCode;

use clap::Parser;
use triage502::logs::cli::{LogsCommand, run};

#[derive(Parser)]
#[command(name = "triage502 logs")]
struct Cli {
    #[command(subcommand)]
    cmd: LogsCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(cli.cmd, &mut out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("triage502 logs: {e:#}");
            ExitCode::from(3)
        }
    }
}
