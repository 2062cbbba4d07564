//! `triage502 map URL`: the clap arguments and the entry point the binary
//! calls.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

/// Output format of `map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MapFormat {
    #[default]
    Text,
    Json,
}

/// Map the serving path of a URL on this host: front server, config,
/// route, upstreams and their listeners, logs, worker user, settings.
///
/// Exit codes: 0 the route was mapped (or the gateway is clearly not on
/// this host), 1 the front was found but could not be mapped (see
/// `unknown`), 2 unusable input (URL or --var).
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  triage502 map https://shop.example.com/checkout\n  triage502 map http://127.0.0.1:8080/ --format json\n  triage502 map https://example.com/ --var error_log=/srv/logs/error.log"
)]
pub struct MapArgs {
    /// The failing URL (scheme optional, http:// assumed).
    pub url: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MapFormat::Text)]
    pub format: MapFormat,
    /// Override a fact discovery cannot see, e.g. `--var error_logs=/srv/logs/error.log`
    /// or `--var front.config=/opt/nginx/nginx.conf` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

/// `NAME=VALUE` with a non-empty name.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Run `map`: discover, print, and say how it went as an exit code.
pub fn run(args: MapArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let overrides: BTreeMap<String, String> = args.vars.into_iter().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let map = match rt.block_on(super::discover(&args.url, &overrides)) {
        Ok(m) => m,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    match args.format {
        MapFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &map).context("writing JSON")?;
            writeln!(out)?;
        }
        MapFormat::Text => out.write_all(super::render::text(&map).as_bytes())?,
    }
    let complete = map.is_mapped() || !map.gateway_local;
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
