//! `applicationHost.config` and the sites' `web.config` files, read into
//! what the route needs: sites and their bindings, applications and
//! physical paths, log settings, ARR server farms, URL Rewrite rules
//! (global, per site in a `<location>`, per site in `web.config`) and the
//! ASP.NET Core Module / HttpPlatformHandler settings. Every item keeps its
//! `file:line`.
//!
//! XML is read with `roxmltree`: a small read-only DOM with no unsafe code
//! and no dependencies that keeps every node's byte range (so every item has
//! a line) and reports a malformed file at `line:col`; DTDs are refused, so
//! entity expansion cannot blow up memory. Nothing here writes anywhere.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node, ParsingOptions};

use crate::discovery::service_map::Place;
use crate::discovery::source::ConfigError;

/// Largest configuration file read.
pub const MAX_FILE: u64 = 8 << 20;
/// Most XML nodes in one file.
const MAX_NODES: u32 = 1_000_000;

/// One `<binding protocol="http" bindingInformation="*:80:shop.example" />`.
#[derive(Debug, Clone)]
pub struct Binding {
    pub protocol: String,
    /// `*` or an address.
    pub ip: String,
    pub port: u16,
    /// The host name; empty: any host.
    pub host: String,
    pub at: Place,
}

/// An `<application path="/api" applicationPool="ApiPool">` with its root
/// virtual directory's physical path.
#[derive(Debug, Clone)]
pub struct Application {
    pub path: String,
    pub pool: Option<String>,
    pub physical_path: Option<String>,
    pub at: Place,
}

/// `<logFile directory="..." logFormat="W3C" />`.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    pub directory: Option<String>,
    pub format: Option<String>,
    pub at: Option<Place>,
}

/// A `<site>`.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub id: Option<String>,
    pub at: Place,
    pub bindings: Vec<Binding>,
    pub applications: Vec<Application>,
    pub log: LogSettings,
    /// Rules from `<location path="SITE">` in applicationHost.config, then
    /// from the root application's `web.config`.
    pub rules: Vec<Rule>,
    /// ASP.NET Core Module / HttpPlatformHandler of the root application.
    pub handlers: Vec<AppHandler>,
    /// The root application's web.config, when one was read.
    pub web_config: Option<PathBuf>,
    /// What could not be read about the site (its web.config), and why.
    pub problems: Vec<String>,
}

/// A server of an ARR farm.
#[derive(Debug, Clone)]
pub struct FarmServer {
    pub address: String,
    pub enabled: bool,
    pub http_port: u16,
    pub https_port: u16,
    pub weight: Option<u32>,
    pub at: Place,
}

/// A `<webFarm>`.
#[derive(Debug, Clone)]
pub struct Farm {
    pub name: String,
    pub enabled: bool,
    pub at: Place,
    pub servers: Vec<FarmServer>,
    /// ARR settings of the farm (`protocol.timeout`, `healthCheck.url`,
    /// `loadBalancing.algorithm`), each with where it is set.
    pub settings: Vec<(String, String, Place)>,
}

/// A `<condition input="{HTTP_HOST}" pattern="..." />`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub input: String,
    pub pattern: Option<String>,
    pub match_type: String,
    pub negate: bool,
    pub ignore_case: bool,
    pub at: Place,
}

/// A URL Rewrite `<rule>`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// `global` (applicationHost globalRules), `site` (a `<location>`), `web.config`.
    pub scope: String,
    pub enabled: bool,
    pub pattern: String,
    /// `ECMAScript` (default), `Wildcard` or `ExactMatch`.
    pub syntax: String,
    pub negate: bool,
    pub ignore_case: bool,
    pub stop_processing: bool,
    /// `MatchAll` (default) or `MatchAny`.
    pub grouping: String,
    pub conditions: Vec<Condition>,
    /// `Rewrite`, `Redirect`, `CustomResponse`, `AbortRequest`, `None`.
    pub action: String,
    pub action_url: Option<String>,
    pub action_at: Option<Place>,
    pub at: Place,
}

/// `<aspNetCore processPath=...>` or `<httpPlatform processPath=...>`.
#[derive(Debug, Clone)]
pub struct AppHandler {
    /// `aspNetCore` or `httpPlatform`.
    pub kind: String,
    pub process_path: Option<String>,
    pub arguments: Option<String>,
    pub stdout_log_file: Option<String>,
    pub stdout_log_enabled: Option<bool>,
    pub hosting_model: Option<String>,
    pub at: Place,
}

/// Everything read from an IIS configuration.
#[derive(Debug, Clone, Default)]
pub struct IisConfig {
    pub file: PathBuf,
    pub files: Vec<PathBuf>,
    pub sites: Vec<Site>,
    pub farms: Vec<Farm>,
    pub global_rules: Vec<Rule>,
    /// `system.webServer/proxy` settings (`enabled`, `timeout`), with where.
    pub proxy: Vec<(String, String, Place)>,
    pub site_defaults_log: LogSettings,
}

impl IisConfig {
    pub fn farm(&self, name: &str) -> Option<&Farm> {
        self.farms
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Read a file, capped, as UTF-8 (a BOM is dropped; IIS writes UTF-8).
fn read_capped(path: &Path) -> Result<String, ConfigError> {
    let f = std::fs::File::open(path)
        .map_err(|e| ConfigError::new(path, 0, 0, crate::discovery::source::io_reason(&e)))?;
    let meta = f
        .metadata()
        .map_err(|e| ConfigError::new(path, 0, 0, e.to_string()))?;
    if !meta.is_file() {
        return Err(ConfigError::new(path, 0, 0, "not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(ConfigError::new(
            path,
            0,
            0,
            format!("larger than {} MiB: not read", MAX_FILE >> 20),
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_FILE)
        .read_to_end(&mut buf)
        .map_err(|e| ConfigError::new(path, 0, 0, e.to_string()))?;
    let text = String::from_utf8(buf).map_err(|e| {
        let (line, col) =
            crate::discovery::source::line_col(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::new(path, line, col, "not valid UTF-8")
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// Parse XML text, errors at `file:line:col`.
pub fn parse_xml<'a>(path: &Path, text: &'a str) -> Result<Document<'a>, ConfigError> {
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    Document::parse_with_options(text, opts).map_err(|e| {
        let p = e.pos();
        let msg = e.to_string();
        // roxmltree appends ` at L:C`; the position is in front already.
        let msg = match msg.rfind(" at ") {
            Some(i) if msg[i + 4..].contains(':') => msg[..i].to_owned(),
            _ => msg,
        };
        ConfigError::new(path, p.row, p.col, format!("malformed XML: {msg}"))
    })
}

struct Ctx<'a, 'input> {
    doc: &'a Document<'input>,
    file: String,
}

impl Ctx<'_, '_> {
    fn place(&self, n: Node<'_, '_>) -> Place {
        let pos = self.doc.text_pos_at(n.range().start);
        Place {
            file: self.file.clone(),
            line: pos.row,
            text: head_text(self.doc.input_text(), n),
        }
    }
}

/// The start tag as written, on one line, capped.
fn head_text(input: &str, n: Node<'_, '_>) -> String {
    let r = n.range();
    let s = &input[r.start..r.end.min(input.len())];
    let end = s.find('>').map_or(s.len(), |i| i + 1);
    let one: String = s[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one.chars().take(240).collect();
    if out.len() < one.len() {
        out.push('…');
    }
    out
}

fn children<'a, 'input>(
    n: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'input>(n: Node<'a, 'input>, name: &'a str) -> Option<Node<'a, 'input>> {
    children(n, name).next()
}

/// The element at a `/`-separated path below `n`.
fn path<'a, 'input>(n: Node<'a, 'input>, p: &'a str) -> Option<Node<'a, 'input>> {
    p.split('/').try_fold(n, |n, seg| child(n, seg))
}

fn attr(n: Node<'_, '_>, name: &str) -> Option<String> {
    n.attribute(name).map(str::to_owned)
}

fn flag(n: Node<'_, '_>, name: &str, default: bool) -> bool {
    match n.attribute(name) {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    }
}

fn parse_binding(cx: &Ctx<'_, '_>, b: Node<'_, '_>) -> Option<Binding> {
    let protocol = attr(b, "protocol")?.to_ascii_lowercase();
    let info = attr(b, "bindingInformation")?;
    // `IP:PORT:HOST`; an IPv6 address is bracketed.
    let (ip, rest) = if let Some(r) = info.strip_prefix('[') {
        let close = r.find(']')?;
        (
            r[..close].to_owned(),
            r[close + 1..].strip_prefix(':')?.to_owned(),
        )
    } else {
        let (ip, rest) = info.split_once(':')?;
        (ip.to_owned(), rest.to_owned())
    };
    let (port, host) = rest.split_once(':').unwrap_or((rest.as_str(), ""));
    Some(Binding {
        protocol,
        ip: if ip.is_empty() { "*".into() } else { ip },
        port: port.parse().ok()?,
        host: host.to_ascii_lowercase(),
        at: cx.place(b),
    })
}

fn parse_log(cx: &Ctx<'_, '_>, n: Option<Node<'_, '_>>) -> LogSettings {
    let Some(n) = n else {
        return LogSettings::default();
    };
    LogSettings {
        directory: attr(n, "directory"),
        format: attr(n, "logFormat"),
        at: Some(cx.place(n)),
    }
}

fn parse_rules(cx: &Ctx<'_, '_>, parent: Option<Node<'_, '_>>, scope: &str) -> Vec<Rule> {
    let Some(parent) = parent else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in children(parent, "rule") {
        let m = child(r, "match");
        let conds = child(r, "conditions");
        let action = child(r, "action");
        let conditions = conds
            .map(|c| {
                children(c, "add")
                    .map(|a| Condition {
                        input: attr(a, "input").unwrap_or_default(),
                        pattern: attr(a, "pattern"),
                        match_type: attr(a, "matchType").unwrap_or_else(|| "Pattern".into()),
                        negate: flag(a, "negate", false),
                        ignore_case: flag(a, "ignoreCase", true),
                        at: cx.place(a),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Rule {
            name: attr(r, "name").unwrap_or_default(),
            scope: scope.to_owned(),
            enabled: flag(r, "enabled", true),
            pattern: m.and_then(|m| attr(m, "url")).unwrap_or_default(),
            syntax: attr(r, "patternSyntax").unwrap_or_else(|| "ECMAScript".into()),
            negate: m.is_some_and(|m| flag(m, "negate", false)),
            ignore_case: m.is_none_or(|m| flag(m, "ignoreCase", true)),
            stop_processing: flag(r, "stopProcessing", false),
            grouping: conds
                .and_then(|c| attr(c, "logicalGrouping"))
                .unwrap_or_else(|| "MatchAll".into()),
            conditions,
            action: action
                .and_then(|a| attr(a, "type"))
                .unwrap_or_else(|| "None".into()),
            action_url: action.and_then(|a| attr(a, "url")),
            action_at: action.map(|a| cx.place(a)),
            at: cx.place(r),
        });
    }
    out
}

fn parse_handlers(cx: &Ctx<'_, '_>, ws: Option<Node<'_, '_>>) -> Vec<AppHandler> {
    let Some(ws) = ws else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for kind in ["aspNetCore", "httpPlatform"] {
        for h in children(ws, kind) {
            out.push(AppHandler {
                kind: kind.to_owned(),
                process_path: attr(h, "processPath"),
                arguments: attr(h, "arguments"),
                stdout_log_file: attr(h, "stdoutLogFile"),
                stdout_log_enabled: h
                    .attribute("stdoutLogEnabled")
                    .map(|v| v.eq_ignore_ascii_case("true")),
                hosting_model: attr(h, "hostingModel"),
                at: cx.place(h),
            });
        }
    }
    out
}

/// `system.webServer` elements of a `<configuration>` root, also those
/// inside `<location>` elements whose path is `.`/empty (a web.config) or
/// the given site name (applicationHost.config).
fn web_servers<'a, 'input>(
    root: Node<'a, 'input>,
    location: Option<&'a str>,
) -> Vec<Node<'a, 'input>> {
    let mut out: Vec<Node<'a, 'input>> = children(root, "system.webServer").collect();
    for loc in children(root, "location") {
        let p = loc.attribute("path").unwrap_or("");
        let wanted = match location {
            None => p.is_empty() || p == ".",
            Some(site) => p.eq_ignore_ascii_case(site),
        };
        if wanted {
            out.extend(children(loc, "system.webServer"));
        }
    }
    out
}

/// Expand `%VAR%` as IIS does (from the environment; `%SystemDrive%` is
/// `C:` when unset, as on Windows).
pub fn expand_env(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        let after = &rest[i + 1..];
        let Some(end) = after.find('%') else { break };
        let name = &after[..end];
        out.push_str(&rest[..i]);
        let val = std::env::var(name)
            .ok()
            .or_else(|| match name.to_ascii_lowercase().as_str() {
                "systemdrive" => Some("C:".into()),
                "windir" | "systemroot" => Some("C:\\Windows".into()),
                _ => None,
            });
        match val {
            Some(v) if !name.is_empty() => out.push_str(&v),
            _ => {
                out.push('%');
                out.push_str(name);
                out.push('%');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Where a Windows path named in the configuration is on this machine.
/// On Windows, the path itself. Elsewhere (a configuration copied off a
/// server), a drive path `C:\inetpub\shop` is looked for below the copy's
/// drive root: five levels above a `Windows/System32/inetsrv/config/`
/// file, else the configuration's own directory.
pub fn local_path(config: &Path, windows_path: &str) -> PathBuf {
    let p = expand_env(windows_path);
    if cfg!(windows) {
        return PathBuf::from(p);
    }
    let unix = p.replace('\\', "/");
    let drive_less = match unix.as_bytes() {
        [d, b':', rest @ ..] if d.is_ascii_alphabetic() => String::from_utf8_lossy(rest)
            .trim_start_matches('/')
            .to_owned(),
        _ if unix.starts_with('/') => return PathBuf::from(unix),
        _ => unix.clone(),
    };
    let dir = config.parent().unwrap_or(Path::new("."));
    let lower = config
        .to_string_lossy()
        .replace('\\', "/")
        .to_ascii_lowercase();
    let root = if lower.ends_with("windows/system32/inetsrv/config/applicationhost.config") {
        dir.ancestors().nth(4).unwrap_or(dir)
    } else {
        dir
    };
    root.join(drive_less)
}

/// Parse `applicationHost.config` and the `web.config` of every site's root
/// application that can be found.
pub fn load(file: &Path) -> Result<IisConfig, ConfigError> {
    let text = read_capped(file)?;
    let doc = parse_xml(file, &text)?;
    let cx = Ctx {
        doc: &doc,
        file: file.display().to_string(),
    };
    let root = doc.root_element();
    if root.tag_name().name() != "configuration" {
        return Err(ConfigError::new(
            file,
            cx.place(root).line,
            1,
            format!(
                "the root element is <{}>, not <configuration>: not an IIS configuration",
                root.tag_name().name()
            ),
        ));
    }
    let mut cfg = IisConfig {
        file: file.to_path_buf(),
        files: vec![file.to_path_buf()],
        ..IisConfig::default()
    };
    let sites = path(root, "system.applicationHost/sites");
    cfg.site_defaults_log = parse_log(&cx, sites.and_then(|s| path(s, "siteDefaults/logFile")));
    for ws in web_servers(root, None) {
        cfg.global_rules
            .extend(parse_rules(&cx, path(ws, "rewrite/globalRules"), "global"));
        if let Some(p) = child(ws, "proxy") {
            for a in p.attributes() {
                cfg.proxy
                    .push((a.name().to_owned(), a.value().to_owned(), cx.place(p)));
            }
        }
    }
    for f in root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "webFarms")
        .flat_map(|w| children(w, "webFarm"))
    {
        let mut farm = Farm {
            name: attr(f, "name").unwrap_or_default(),
            enabled: flag(f, "enabled", true),
            at: cx.place(f),
            servers: Vec::new(),
            settings: Vec::new(),
        };
        for s in children(f, "server") {
            let arr = child(s, "applicationRequestRouting");
            let port = |name: &str, default: u16| {
                arr.and_then(|a| a.attribute(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            farm.servers.push(FarmServer {
                address: attr(s, "address").unwrap_or_default(),
                enabled: flag(s, "enabled", true),
                http_port: port("httpPort", 80),
                https_port: port("httpsPort", 443),
                weight: arr
                    .and_then(|a| a.attribute("weight"))
                    .and_then(|v| v.parse().ok()),
                at: cx.place(s),
            });
        }
        if let Some(arr) = child(f, "applicationRequestRouting") {
            for sub in arr.children().filter(Node::is_element) {
                for a in sub.attributes() {
                    farm.settings.push((
                        format!("{}.{}", sub.tag_name().name(), a.name()),
                        a.value().to_owned(),
                        cx.place(sub),
                    ));
                }
            }
        }
        cfg.farms.push(farm);
    }
    for s in sites.into_iter().flat_map(|s| children(s, "site")) {
        let name = attr(s, "name").unwrap_or_default();
        let mut site = Site {
            id: attr(s, "id"),
            at: cx.place(s),
            bindings: path(s, "bindings")
                .map(|b| {
                    children(b, "binding")
                        .filter_map(|b| parse_binding(&cx, b))
                        .collect()
                })
                .unwrap_or_default(),
            applications: children(s, "application")
                .map(|a| Application {
                    path: attr(a, "path").unwrap_or_else(|| "/".into()),
                    pool: attr(a, "applicationPool"),
                    physical_path: children(a, "virtualDirectory")
                        .find(|v| v.attribute("path") == Some("/"))
                        .and_then(|v| attr(v, "physicalPath")),
                    at: cx.place(a),
                })
                .collect(),
            log: parse_log(&cx, child(s, "logFile")),
            rules: Vec::new(),
            handlers: Vec::new(),
            web_config: None,
            problems: Vec::new(),
            name,
        };
        let site_name = site.name.clone();
        for ws in web_servers(root, Some(&site_name)).into_iter().filter(|w| {
            w.parent()
                .is_some_and(|p| p.tag_name().name() == "location")
        }) {
            site.rules
                .extend(parse_rules(&cx, path(ws, "rewrite/rules"), "site"));
            site.handlers.extend(parse_handlers(&cx, Some(ws)));
        }
        read_web_config(file, &mut site, &mut cfg.files);
        cfg.sites.push(site);
    }
    Ok(cfg)
}

/// Read the root application's `web.config`, when it is there.
fn read_web_config(config: &Path, site: &mut Site, files: &mut Vec<PathBuf>) {
    let Some(root) = site
        .applications
        .iter()
        .find(|a| a.path == "/")
        .and_then(|a| a.physical_path.clone())
    else {
        return;
    };
    let dir = local_path(config, &root);
    let wc = dir.join("web.config");
    if !wc.is_file() {
        site.problems.push(format!(
            "no web.config read for site {:?}: {} ({}) is not a readable file here",
            site.name,
            wc.display(),
            root
        ));
        return;
    }
    let text = match read_capped(&wc) {
        Ok(t) => t,
        Err(e) => {
            site.problems.push(e.to_string());
            return;
        }
    };
    let doc = match parse_xml(&wc, &text) {
        Ok(d) => d,
        Err(e) => {
            site.problems.push(e.to_string());
            return;
        }
    };
    let cx = Ctx {
        doc: &doc,
        file: wc.display().to_string(),
    };
    files.push(wc.clone());
    for ws in web_servers(doc.root_element(), None) {
        site.rules
            .extend(parse_rules(&cx, path(ws, "rewrite/rules"), "web.config"));
        site.handlers.extend(parse_handlers(&cx, Some(ws)));
    }
    site.web_config = Some(wc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_drive_paths() {
        assert_eq!(expand_env("%NO_SUCH_VAR_X%\\a"), "%NO_SUCH_VAR_X%\\a");
        if !cfg!(windows) {
            let p = local_path(
                Path::new("/copy/Windows/System32/inetsrv/config/applicationHost.config"),
                "D:\\sites\\shop",
            );
            assert_eq!(p, Path::new("/copy/sites/shop"));
            let p = local_path(Path::new("/fx/applicationHost.config"), "C:\\inetpub\\a");
            assert_eq!(p, Path::new("/fx/inetpub/a"));
        }
    }

    #[test]
    fn malformed_xml_names_the_line() {
        let text = "<configuration>\n  <system.webServer>\n    <rewrite>\n  </system.webServer>\n</configuration>\n";
        let e = parse_xml(Path::new("web.config"), text).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().starts_with("web.config:4:"), "{e}");
    }
}
