//! Who generated an HTTP error response: the proxy in front, a CDN or load
//! balancer, or the upstream application itself.
//!
//! Pure function of status, headers and body, built from the exact templates
//! in signatures.md §3 and §1.2 (nginx 502 body 150/157/173 bytes, +402 bytes
//! of MSIE padding; ALB 122/132/162 bytes; HAProxy 107/92 bytes, …). A body
//! that matches no known template while the status is 5xx is attributed to
//! the upstream application (the proxy passed it through). Header-only
//! evidence (a `Server:` header) is never enough to say the proxy made the
//! page: nginx passes upstream 502s through with its own `Server:` header.

/// Who made the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    Nginx,
    Apache,
    Haproxy,
    Caddy,
    Envoy,
    Traefik,
    Cloudflare,
    AwsElb,
    GcpLb,
    Fastly,
    Akamai,
    Azure,
    UpstreamApp,
    /// Not an error response: nothing to attribute.
    None,
}

impl Generator {
    /// The value of the `http.generator` fact.
    pub fn id(self) -> &'static str {
        match self {
            Generator::Nginx => "nginx",
            Generator::Apache => "apache",
            Generator::Haproxy => "haproxy",
            Generator::Caddy => "caddy",
            Generator::Envoy => "envoy",
            Generator::Traefik => "traefik",
            Generator::Cloudflare => "cloudflare",
            Generator::AwsElb => "aws_elb",
            Generator::GcpLb => "gcp_lb",
            Generator::Fastly => "fastly",
            Generator::Akamai => "akamai",
            Generator::Azure => "azure",
            Generator::UpstreamApp => "upstream_app",
            Generator::None => "none",
        }
    }

    /// A CDN or cloud load balancer (as opposed to a proxy on the origin host).
    pub fn is_edge(self) -> bool {
        matches!(
            self,
            Generator::Cloudflare
                | Generator::AwsElb
                | Generator::GcpLb
                | Generator::Fastly
                | Generator::Akamai
                | Generator::Azure
        )
    }
}

/// The verdict with the reason, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub generator: Generator,
    /// A gateway (proxy/CDN/LB) produced this error itself, rather than relaying the app's.
    pub gateway_error: bool,
    /// The edge's page says the *origin* returned this error (Cloudflare branded 502/504).
    pub origin_reported: bool,
    /// Why, in one line (the matched header or template).
    pub reason: String,
}

const NGINX_PADDING: &str = "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// nginx's `ngx_http_special_response.c` template: returns the footer text
/// (`nginx/1.24.0`, `cloudflare`, ``(none: ALB)) when the body is one.
fn nginx_template(status: u16, body: &str) -> Option<String> {
    let stripped = body.replace(NGINX_PADDING, "");
    let title_end = stripped.find("</title></head>\r\n<body")?;
    let head = &stripped[..title_end];
    if !head.starts_with("<html>\r\n<head><title>") || !head.contains(&status.to_string()) {
        return None;
    }
    let rest = &stripped[title_end..];
    if let Some(i) = rest.find("<hr><center>") {
        let tail = &rest[i + "<hr><center>".len()..];
        let end = tail.find("</center>")?;
        return Some(tail[..end].to_owned());
    }
    // No footer at all: the ALB variant.
    rest.contains("</h1></center>\r\n</body>\r\n</html>")
        .then(String::new)
}

/// Known sizes of nginx-made bodies (signatures §1.2) for a status, without padding.
fn nginx_sizes(status: u16) -> &'static [usize] {
    match status {
        502 => &[150, 157, 173],
        504 => &[160, 167, 183],
        503 => &[190, 197, 213],
        _ => &[],
    }
}

fn is_gateway_status(status: u16) -> bool {
    matches!(status, 502..=504) || (520..=527).contains(&status) || status == 530
}

/// Attribute a response. `headers` are (name, value) pairs as received.
pub fn fingerprint(status: u16, headers: &[(String, String)], body: &[u8]) -> Fingerprint {
    let body_text = String::from_utf8_lossy(body);
    let body_t = body_text.as_ref();
    let server = header(headers, "server").unwrap_or("").to_ascii_lowercase();
    let via = header(headers, "via").unwrap_or("").to_ascii_lowercase();
    let ctype = header(headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mk = |g: Generator, gateway: bool, reason: String| Fingerprint {
        generator: g,
        gateway_error: gateway,
        origin_reported: false,
        reason,
    };
    if status < 500 {
        return mk(
            Generator::None,
            false,
            format!("status {status} is not a server error"),
        );
    }
    let gw = is_gateway_status(status);

    // Cloudflare: branded pages (origin reported the error, or 52x) and the
    // unbranded nginx-style page (Cloudflare made it).
    let cf_ray = header(headers, "cf-ray").is_some();
    let cf = server == "cloudflare" || cf_ray;
    if cf || body_t.contains("cf-error-details") {
        if body_t.contains("cf-error-details")
            || body_t.contains("cloudflare.com/5xx-error-landing")
            || body_t.contains("Error code ")
        {
            let origin = matches!(status, 502 | 504);
            let mut f = mk(
                Generator::Cloudflare,
                true,
                if origin {
                    format!("Cloudflare branded {status} page: the origin returned {status}")
                } else {
                    format!(
                        "Cloudflare branded {status} page (error generated at the edge about the origin)"
                    )
                },
            );
            f.origin_reported = origin;
            return f;
        }
        if let Some(footer) = nginx_template(status, body_t)
            && footer == "cloudflare"
        {
            return mk(
                Generator::Cloudflare,
                true,
                format!(
                    "unbranded nginx-style {status} page with footer `cloudflare`: made by Cloudflare itself"
                ),
            );
        }
        if (520..=527).contains(&status) || status == 530 {
            return mk(
                Generator::Cloudflare,
                true,
                format!("Cloudflare-only status {status}"),
            );
        }
    }

    // nginx and the templates derived from it.
    if let Some(footer) = nginx_template(status, body_t) {
        let fl = footer.to_ascii_lowercase();
        let padded = body_t.contains(NGINX_PADDING);
        let unpadded_len = body_t.replace(NGINX_PADDING, "").len();
        let size_note = if nginx_sizes(status).contains(&unpadded_len) {
            format!(
                "{} bytes{}, a known nginx size",
                body.len(),
                if padded { " with MSIE padding" } else { "" }
            )
        } else {
            format!("{} bytes", body.len())
        };
        if fl.starts_with("microsoft-azure-application-gateway") {
            return mk(
                Generator::Azure,
                gw,
                format!("nginx-style page with footer `{footer}`"),
            );
        }
        if footer.is_empty() {
            return mk(
                Generator::AwsElb,
                gw,
                format!(
                    "nginx-style page without footer ({} bytes){}",
                    body.len(),
                    if server.starts_with("awselb") {
                        ", server: awselb"
                    } else {
                        ""
                    }
                ),
            );
        }
        if fl == "cloudflare" {
            return mk(
                Generator::Cloudflare,
                gw,
                format!("nginx-style page with footer `cloudflare` ({size_note})"),
            );
        }
        return mk(
            Generator::Nginx,
            gw,
            format!("nginx error page template, footer `{footer}` ({size_note})"),
        );
    }
    if server.starts_with("awselb") {
        return mk(Generator::AwsElb, gw, format!("server: {server}"));
    }

    // Apache canned error pages (http_protocol.c) all start with the HTML 2.0 doctype.
    if body_t.starts_with("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">")
        && body_t.contains(&format!("<title>{status} "))
    {
        let proxy_error = body_t.contains("<h1>Proxy Error</h1>");
        return mk(
            Generator::Apache,
            gw,
            if proxy_error {
                format!("Apache `Proxy Error` page (ap_proxyerror), status {status}")
            } else {
                format!("Apache canned {status} page")
            },
        );
    }

    // HAProxy http_err_msgs.
    let haproxy_bodies = [
        "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
        "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
    ];
    if haproxy_bodies.contains(&body_t)
        || (body_t.starts_with(&format!("<html><body><h1>{status} "))
            && header(headers, "cache-control").is_some_and(|c| c.contains("no-cache")))
    {
        return mk(
            Generator::Haproxy,
            gw,
            format!("HAProxy built-in {status} page ({} bytes)", body.len()),
        );
    }

    // Envoy local replies.
    let envoy_bodies = [
        "upstream connect error or disconnect/reset before headers",
        "no healthy upstream",
        "upstream request timeout",
    ];
    {
        if envoy_bodies.iter().any(|b| body_t.starts_with(b)) {
            let first = body_t.lines().next().unwrap_or("");
            return mk(
                Generator::Envoy,
                gw,
                format!(
                    "Envoy local reply `{}`",
                    first.chars().take(120).collect::<String>()
                ),
            );
        }
    }

    // Traefik (Go net/http text/plain bodies).
    let trimmed = body_t.trim_end();
    if ctype.starts_with("text/plain")
        && matches!(
            trimmed,
            "Bad Gateway" | "Gateway Timeout" | "no available server" | "Service Unavailable"
        )
        && !server.contains("caddy")
    {
        return mk(
            Generator::Traefik,
            gw,
            format!("Traefik plain-text body `{trimmed}`"),
        );
    }

    // Caddy: `Server: Caddy` with an empty body.
    if server.starts_with("caddy") && body.is_empty() {
        return mk(
            Generator::Caddy,
            gw,
            "server: Caddy with an empty body".into(),
        );
    }

    // GCP external HTTP(S) LB.
    if body_t.contains("<h1>Error: Server Error</h1>")
        || (via.contains("google") && body_t.contains("Server Error</title>"))
    {
        return mk(
            Generator::GcpLb,
            gw,
            "Google `Error: Server Error` page".into(),
        );
    }

    // Fastly / Varnish.
    if body_t.contains("Guru Meditation") || body_t.contains("Varnish cache server") {
        return mk(
            Generator::Fastly,
            true,
            "Varnish `Guru Meditation` page".into(),
        );
    }

    // Akamai.
    if server.contains("akamaighost")
        && (body_t.contains("Reference #") || body_t.contains("Reference&#32;&#35;"))
    {
        return mk(
            Generator::Akamai,
            gw,
            "Akamai error page with `Reference #`".into(),
        );
    }
    if server.starts_with("microsoft-azure-application-gateway") {
        return mk(Generator::Azure, gw, format!("server: {server}"));
    }

    // Anything else with a 5xx: the application's own page, passed through.
    let via_proxy = if server.is_empty() {
        String::new()
    } else {
        format!(" (relayed by `{server}`)")
    };
    mk(
        Generator::UpstreamApp,
        false,
        format!(
            "{status} body ({} bytes) matches no proxy/CDN template: the upstream application made it{via_proxy}",
            body.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn nginx_502_sizes_are_the_catalogue_ones() {
        let b = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(b.len(), 157);
        let f = fingerprint(502, &h(&[("Server", "nginx/1.24.0")]), b.as_bytes());
        assert_eq!(f.generator, Generator::Nginx);
        assert!(f.gateway_error);
        assert!(f.reason.contains("known nginx size"), "{}", f.reason);
        let padded = format!("{b}{}", NGINX_PADDING.repeat(6));
        assert_eq!(padded.len(), 559);
    }

    #[test]
    fn nginx_server_header_with_other_body_is_the_app() {
        let f = fingerprint(502, &h(&[("Server", "nginx")]), b"upstream says no");
        assert_eq!(f.generator, Generator::UpstreamApp);
        assert!(!f.gateway_error);
    }

    #[test]
    fn success_is_not_attributed() {
        assert_eq!(fingerprint(200, &[], b"").generator, Generator::None);
    }
}
