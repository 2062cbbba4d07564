//! pages against a real loopback site: none, page_specific, site_wide.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::pages::{Params, run};

const HOME: &str = "<html><a href=\"/shop\">shop</a> <a href=\"/blog/\">blog</a> <a href=\"https://elsewhere.example/\">x</a></html>";

/// A site where every path in `broken` answers nginx's 502 page.
async fn site(broken: &'static [&'static str]) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let resp = if broken.contains(&path.as_str()) || broken.contains(&"*") {
                    let body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
                    format!(
                        "HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    let body = if path == "/" { HOME } else { "ok" };
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn params(url: String) -> Params {
    Params {
        url,
        paths: vec!["/checkout".into()],
        control: None,
        links: None,
        concurrency: Some(2),
        timeout: None,
        resolve: None,
    }
}

#[tokio::test]
async fn healthy_site_is_scope_none_and_follows_home_links() {
    let r = run(&params(site(&[]).await), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["pages.scope"], "none");
    assert_eq!(
        r.facts["pages.checked"], "4",
        "/, /checkout, /shop, /blog/: {r:?}"
    );
}

#[tokio::test]
async fn some_pages_failing_is_page_specific() {
    let r = run(&params(site(&["/checkout"]).await), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.facts["pages.scope"], "page_specific");
    assert_eq!(r.facts["pages.failing"], "/checkout");
    assert_eq!(r.diagnoses[0].cause, Cause::AppFatal);
    assert!(r.evidence[0].text.contains("by nginx"), "{:?}", r.evidence);
}

#[tokio::test]
async fn everything_failing_is_site_wide() {
    let r = run(&params(site(&["*"]).await), &listeners::ctx()).await;
    assert_eq!(r.facts["pages.scope"], "site_wide", "{r:?}");
    assert!(r.summary.contains("static control too"));
}

#[tokio::test]
async fn not_a_url_is_inconclusive() {
    let r = run(&params("file:///etc".into()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}
