//! The front without root: other users' `/proc/PID/fd` are unreadable, so the process that
//! holds the URL's listening socket cannot be named from the socket. A server master's command
//! line is world-readable, and so usually is its configuration: of the running masters, the one
//! whose configuration listens on the URL's port is the front. Exactly one must match; several
//! are listed instead of guessed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::front::{self, Kind};
use super::service_map::{Front, ServiceMap};
use super::{Build, HostView, build_info, map_front};
use crate::check::{AS_ROOT, Unseen};
use crate::sys::{Listener, Process};

/// Masters examined at most (a host running hundreds of servers is told to use root).
const MAX_CANDIDATES: usize = 64;

/// The listener the URL reached (found by `find_front`), when nobody readable holds it.
fn ownerless<'a>(view: &'a HostView, map: &ServiceMap) -> Option<&'a Listener> {
    let endpoint = map.target.local_endpoint.as_deref()?;
    let (ip, port) = endpoint.rsplit_once(':')?;
    let ip = ip.trim_matches(['[', ']']).parse().ok()?;
    let port = port.parse().ok()?;
    view.scan
        .tcp_for(ip, port)
        .into_iter()
        .next()
        .filter(|l| l.pids.is_empty())
}

/// Server masters whose command line can be read: nginx, Apache and HAProxy processes whose
/// parent is not a process of the same kind.
fn masters(view: &HostView) -> Vec<(Kind, &Process)> {
    view.procs
        .iter()
        .filter_map(|p| {
            let kind = front::kind_of(p);
            if !matches!(kind, Kind::Nginx | Kind::Apache | Kind::Haproxy) {
                return None;
            }
            let parent_same = view
                .process(p.ppid)
                .is_some_and(|pp| front::kind_of(pp) == kind);
            (!parent_same && !p.cmdline.is_empty()).then_some((kind, p))
        })
        .take(MAX_CANDIDATES)
        .collect()
}

/// Does the candidate's configuration, mapped for this URL, accept it on the URL's port?
fn listens(m: &ServiceMap) -> bool {
    m.route.as_ref().is_some_and(|r| r.server_block.is_some())
        && !m.unknown.iter().any(|u| u.fact == "front.listen")
}

/// When the listener's owner could not be read for lack of privilege: the master whose
/// configuration listens on the URL's port. Records what could not be seen either way.
pub(super) async fn infer_front(
    view: &HostView,
    overrides: &BTreeMap<String, String>,
    map: &mut ServiceMap,
) -> Option<(Listener, u32)> {
    let listener = ownerless(view, map)?.clone();
    let caveat = view.scan.owner_caveat()?;
    map.unseen.push(Unseen::new(
        format!("the process that holds {listener}"),
        caveat
            .trim_end_matches(" (permission denied: run as root)")
            .to_owned()
            + " (other users' /proc/PID/fd)",
        AS_ROOT,
    ));
    let candidates = masters(view);
    let mut builds: BTreeMap<(&'static str, Option<PathBuf>), Build> = BTreeMap::new();
    let mut work = Vec::new();
    for (kind, p) in candidates {
        let key = (
            kind.as_str(),
            p.exe
                .clone()
                .or_else(|| p.cmdline.first().map(PathBuf::from)),
        );
        let build = if let Some(b) = builds.get(&key) {
            b.clone()
        } else {
            let b = build_info(kind, p).await;
            builds.insert(key, b.clone());
            b
        };
        work.push((kind, p.clone(), build));
    }
    let (view2, ov, target, url) = (
        view.clone(),
        overrides.clone(),
        map.target.clone(),
        map.url.clone(),
    );
    let l2 = listener.clone();
    type Examined = (Option<(Kind, Process, String)>, Vec<Unseen>);
    let examined: Vec<Examined> = tokio::task::spawn_blocking(move || {
        work.into_iter()
            .map(|(kind, p, build)| {
                let mut scratch = ServiceMap {
                    url: url.clone(),
                    target: target.clone(),
                    front: Some(Front {
                        kind: kind.as_str().to_owned(),
                        pid: p.pid,
                        ..Front::default()
                    }),
                    ..ServiceMap::default()
                };
                map_front(&mut scratch, kind, &p, &l2, &build, &view2, &ov);
                let config = scratch
                    .front
                    .as_ref()
                    .and_then(|f| f.config.clone())
                    .unwrap_or_default();
                let hit = listens(&scratch).then_some((kind, p, config));
                (hit, scratch.unseen)
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let mut matched = Vec::new();
    for (hit, unseen) in examined {
        // A master whose configuration cannot be read may be the front: say so.
        for u in unseen {
            if !map.unseen.contains(&u) {
                map.unseen.push(u);
            }
        }
        matched.extend(hit);
    }
    match matched.as_slice() {
        [(kind, p, config)] => {
            map.unknown.retain(|u| u.fact != "front.pid");
            map.note(format!(
                "not root: {listener} has no readable owner; the front is the {} master {} because its configuration {config} (from its command line) listens on port {}",
                kind.as_str(),
                p.pid,
                map.target.port
            ));
            map.sources.insert(
                "front.pid".into(),
                format!(
                    "inferred: the only running server master whose configuration listens on port {} ({config})",
                    map.target.port
                ),
            );
            Some((listener, p.pid))
        }
        [] => None,
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(k, p, c)| format!("{} {} ({c})", k.as_str(), p.pid))
                .collect();
            map.note(format!(
                "not root: {} running masters' configurations listen on port {}: {}; give the right one with --var front.pid=PID",
                many.len(),
                map.target.port,
                names.join(", ")
            ));
            None
        }
    }
}
