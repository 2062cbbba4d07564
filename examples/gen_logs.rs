//! Generate realistic nginx / Apache error and access logs with a known burst
//! of upstream failures near the end, and the ground truth beside them.
//!
//! cargo run --release --example gen_logs -- --flavor nginx --error-size 1G --access-size 1G --out /tmp/t502
//!
//! `--profile dense` writes the failure-dense nginx logs instead: the same 7
//! days of background and a 30-minute incident at about 3,500 failure lines
//! a minute, ending 5 minutes before the end (see `Profile::Dense`).
//!
//! Writes OUT/<flavor>-error.log, OUT/<flavor>-access.log and OUT/<flavor>-truth.json.
//! Keep large files out of the repository (use /tmp).

use std::path::PathBuf;

use clap::Parser;
use triage502::logs::generate::{Flavor, Profile, Spec, generate_files};

#[derive(Parser)]
struct Args {
    /// nginx, apache or both.
    #[arg(long, default_value = "both")]
    flavor: String,
    /// Error log size (bytes, or with K/M/G).
    #[arg(long, default_value = "10M")]
    error_size: String,
    /// Access log size.
    #[arg(long, default_value = "10M")]
    access_size: String,
    #[arg(long, default_value = "/tmp/triage502-logs")]
    out: PathBuf,
    /// End of the logs (RFC 3339); default now.
    #[arg(long)]
    end: Option<String>,
    #[arg(long, default_value_t = 7)]
    days: i64,
    #[arg(long, default_value_t = 502)]
    seed: u64,
    /// light (a burst at the request rate) or dense (a 30-minute incident
    /// at about 3,500 failure lines a minute; nginx only).
    #[arg(long, default_value = "light")]
    profile: String,
}

fn size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().trim_end_matches(['B', 'b']);
    let (num, mul) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    Ok((num.parse::<f64>()? * mul as f64) as u64)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out)?;
    let end = match &a.end {
        Some(e) => e.parse::<jiff::Timestamp>()?.as_second(),
        None => jiff::Timestamp::now().as_second(),
    };
    let profile = match a.profile.as_str() {
        "light" => Profile::Light,
        "dense" => Profile::Dense,
        other => anyhow::bail!("--profile {other}: use light or dense"),
    };
    let flavors = match (a.flavor.as_str(), profile) {
        ("nginx", _) => vec![Flavor::Nginx],
        ("apache", Profile::Dense) => anyhow::bail!("--profile dense writes nginx logs only"),
        ("apache", _) => vec![Flavor::Apache],
        ("both", Profile::Dense) => vec![Flavor::Nginx],
        ("both", _) => vec![Flavor::Nginx, Flavor::Apache],
        (other, _) => anyhow::bail!("--flavor {other}: use nginx, apache or both"),
    };
    for f in flavors {
        let (es, acs) = (size(&a.error_size)?, size(&a.access_size)?);
        let mut spec = match profile {
            Profile::Dense => Spec::dense(es, acs, end),
            Profile::Light => Spec::new(f, es, acs, end),
        };
        spec.days = a.days;
        spec.seed = a.seed;
        let t = generate_files(&spec, &a.out)?;
        println!(
            "{:?}: error log {} bytes, access log {} bytes, window {} .. {}, causes {:?}, onset {:?}",
            f, t.error_log_bytes, t.access_log_bytes, t.window_from, t.window_to, t.causes, t.onset
        );
    }
    Ok(())
}
