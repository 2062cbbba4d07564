//! The `triage502` binary: parse the command line, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

// musl's own allocator is slow under the many small allocations of start-up (the playbook's TOML,
// the first frame), which made the static binary's first frame slower than the glibc build's;
// the static build uses mimalloc instead (as ripgrep does with jemalloc for its musl builds).
// glibc's malloc and free were a fifth of the CPU time of classifying a failure-dense log (the
// fields of every failure line are small strings), so every Linux build uses it.
#[cfg(target_os = "linux")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
