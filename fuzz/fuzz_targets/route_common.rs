//! Shared by the config fuzz targets (nginx, Apache, HAProxy, IIS): after parsing, run the route
//! resolution (`triage502 route`) on a few URLs derived from the input, so
//! the location/vhost/ACL matching and upstream resolution see the same
//! arbitrary configurations the parsers do.

use std::path::PathBuf;

use triage502::discovery::offline::{self, RouteArgs, RouteFormat, ServerKind};

/// Up to six URLs: `/`, paths and host names that occur in the input.
fn urls(text: &str) -> Vec<String> {
    let mut out = vec!["http://localhost/".to_owned()];
    let mut next_is_name = false;
    for w in text
        .split(|c: char| c.is_whitespace() || c == ';' || c == '"' || c == '{' || c == '}')
        .filter(|w| !w.is_empty())
    {
        if out.len() >= 6 {
            break;
        }
        let ok = |s: &str| s.chars().all(|c| c.is_ascii_graphic() && c != '#' && c != '\\');
        if next_is_name && ok(w) && !w.contains('/') && !w.contains('@') {
            out.push(format!("http://{}/x", w.trim_start_matches(['*', '.', '~'])));
        } else if w.starts_with('/') && ok(w) && w.len() < 200 {
            out.push(format!("http://localhost:8080{w}"));
        }
        next_is_name = matches!(
            w.to_ascii_lowercase().as_str(),
            "server_name" | "servername" | "serveralias" | "-i"
        );
    }
    out
}

/// Parse `data` as `kind` from a file (includes relative to it), explain
/// each URL (recovering past broken lines as `route` does), render the
/// text; nothing may panic and every route found must say why.
pub fn route(data: &[u8], kind: ServerKind, name: &str) {
    thread_local! {
        static DIR: PathBuf = {
            let d = std::env::temp_dir().join(format!("triage502-fuzz-route-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&d);
            d
        };
    }
    let path = DIR.with(|d| d.join(name));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let args = RouteArgs {
        config: path,
        server: Some(kind),
        listen: None,
        headers: vec![
            ("X-Tenant".into(), "beta".into()),
            ("Host".into(), "shop.example.test".into()),
        ],
        format: RouteFormat::Text,
        urls: urls(&text),
    };
    // A URL the input made unusable is an argument error, not a crash.
    let Ok(rep) = offline::report(&args) else {
        return;
    };
    let _ = offline::text(&rep);
    for r in &rep.routes {
        if r.server_block.is_some() {
            assert!(!r.why.is_empty(), "{}: a route without a reason", r.url);
        }
    }
}
