//! `socket_permission`: the proxy's worker user may not connect to the
//! php-fpm socket. Remedy: set `listen.owner`, `listen.group` and
//! `listen.mode = 0660` in the pool so that user can, then reload php-fpm
//! (which recreates the socket with them).

use super::{Inputs, Remedy, php_fpm_pool, split_at};
use crate::action_spec::ConfigSyntax;

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, pool, allowed) = php_fpm_pool(i.map)?;
    let p = i.map.php_fpm.as_ref().ok_or("no php-fpm pool")?;
    let user = i
        .map
        .worker_user
        .clone()
        .ok_or("the proxy's worker user is not known")?;
    let group = i.map.worker_group.clone().unwrap_or_else(|| user.clone());
    let listen = p
        .settings
        .get("listen")
        .ok_or("the pool's listen setting was not found")?;
    let (file, _) = split_at(&listen.source)
        .ok_or_else(|| format!("listen comes from {}, not a file", listen.source))?;
    let now = |k: &str| {
        p.settings
            .get(k)
            .map_or_else(|| "unset".to_owned(), |s| s.value.clone())
    };
    Ok(Remedy {
        cause: "socket_permission".into(),
        reason: format!(
            "the proxy's workers run as {user} but the socket {} is owner {}, group {}, mode {}: give it to {user}:{group} with mode 0660 in pool {pool}",
            listen.value,
            now("listen.owner"),
            now("listen.group"),
            now("listen.mode")
        ),
        stopgap: false,
        changes: vec![
            format!("[{pool}] listen.owner = {user}"),
            format!("[{pool}] listen.group = {group}"),
            format!("[{pool}] listen.mode = 0660"),
        ],
        file,
        syntax: ConfigSyntax::PhpFpm,
        allowed,
        server,
    })
}
