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
    Ok(Remedy::edit(
        "socket_permission",
        ConfigSyntax::PhpFpm,
        (server, allowed),
        file,
        vec![
            format!("[{pool}] listen.owner = {user}"),
            format!("[{pool}] listen.group = {group}"),
            format!("[{pool}] listen.mode = 0660"),
        ],
        format!(
            "the proxy's workers run as {user} but the socket {} is owner {}, group {}, mode {}: give it to {user}:{group} with mode 0660 in pool {pool}",
            listen.value,
            now("listen.owner"),
            now("listen.group"),
            now("listen.mode")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Measured;
    use super::super::fixture::remedy;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{PhpFpm, Setting};

    #[test]
    fn the_pool_socket_is_given_to_the_proxy_user_in_the_file_that_sets_listen() {
        let mut fpm = PhpFpm {
            master_pid: 9,
            config: Some("/etc/php/8.2/fpm/php-fpm.conf".into()),
            pool: Some("www".into()),
            ..PhpFpm::default()
        };
        fpm.settings.insert(
            "listen".into(),
            Setting {
                value: "/run/php/php8.2-fpm.sock".into(),
                source: "/etc/php/8.2/fpm/pool.d/www.conf:41".into(),
            },
        );
        fpm.settings.insert(
            "listen.owner".into(),
            Setting {
                value: "www-data".into(),
                source: "/etc/php/8.2/fpm/pool.d/www.conf:52".into(),
            },
        );
        let m = ServiceMap {
            worker_user: Some("nginx".into()),
            worker_group: Some("nginx".into()),
            php_fpm: Some(fpm),
            ..ServiceMap::default()
        };
        let r = remedy("socket_permission", &m, &Measured::default()).unwrap();
        assert_eq!(r.file, "/etc/php/8.2/fpm/pool.d/www.conf");
        assert_eq!(
            r.changes,
            [
                "[www] listen.owner = nginx",
                "[www] listen.group = nginx",
                "[www] listen.mode = 0660"
            ]
        );
        assert!(r.allowed.contains(&r.file));
        assert!(r.reason.contains("owner www-data"), "{}", r.reason);
        let none = ServiceMap::default();
        assert!(remedy("socket_permission", &none, &Measured::default()).is_err());
    }
}
