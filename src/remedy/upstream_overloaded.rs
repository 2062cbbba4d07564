//! `upstream_overloaded` (php-fpm): every worker of the pool is busy and
//! requests queue until the proxy gives up. Remedy: raise `pm.max_children`
//! to what memory allows, from the workers' measured resident memory and the
//! memory available now:
//!
//! `fit = floor((Σ worker RSS + 0.8 × MemAvailable) / mean worker RSS)`
//! (the running workers keep their memory; 20% of what is free stays free),
//! and in one step at most `max(4 × current, current + 4)`: idle workers
//! measure small and grow under load, and a pool that is slow rather than
//! small (a runaway script, a locked database) only gets more stuck workers.

use super::{Inputs, Remedy, php_fpm_pool, split_at};
use crate::action_spec::ConfigSyntax;

const MIB: u64 = 1024 * 1024;

/// The step cap above.
pub fn step_cap(current: u64) -> u64 {
    (current * 4).max(current + 4)
}

/// The memory fit above; `None` without a measured worker.
pub fn max_children(worker_rss: &[u64], mem_available: u64) -> Option<u64> {
    let n = worker_rss.len() as u64;
    if n == 0 {
        return None;
    }
    let sum: u64 = worker_rss.iter().sum();
    let mean = (sum / n).max(1);
    Some((sum + mem_available / 5 * 4) / mean)
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, pool, allowed) = php_fpm_pool(i.map)?;
    let p = i.map.php_fpm.as_ref().ok_or("no php-fpm pool")?;
    let cur = p
        .settings
        .get("pm.max_children")
        .ok_or("pm.max_children of the pool is not known")?;
    let current: u64 = cur
        .value
        .trim()
        .parse()
        .map_err(|_| format!("pm.max_children = {} is not a number", cur.value))?;
    let avail = i
        .measured
        .mem_available
        .ok_or("the available memory was not measured")?;
    let fit =
        max_children(&i.measured.worker_rss, avail).ok_or("no worker of the pool was measured")?;
    let cap = step_cap(current);
    let new = fit.min(cap);
    let n = i.measured.worker_rss.len() as u64;
    let mean = i.measured.worker_rss.iter().sum::<u64>() / n.max(1);
    if new <= current {
        return Err(format!(
            "memory does not allow more workers: {n} workers of {} MiB each and {} MiB available fit {fit}, pm.max_children is already {current}; the pool is slow rather than small: read its slow log",
            mean / MIB,
            avail / MIB
        ));
    }
    let (file, _) = split_at(&cur.source).ok_or_else(|| {
        format!(
            "pm.max_children comes from {}, not a file:line that can be edited",
            cur.source
        )
    })?;
    Ok(Remedy::edit(
        "upstream_overloaded",
        ConfigSyntax::PhpFpm,
        (server, allowed),
        file,
        vec![format!("[{pool}] pm.max_children = {new}")],
        format!(
            "php-fpm pool {pool} is saturated at pm.max_children = {current} ({}); each worker uses {} MiB, {} MiB are available: floor(({n} × {} MiB + 0.8 × {} MiB) / {} MiB) = {fit} would fit; raised to {new} (at most max(4 × {current}, {current} + 4) = {cap} in one step: idle workers grow under load; if it saturates again, the pool is slow rather than small: read its slow log)",
            cur.source,
            mean / MIB,
            avail / MIB,
            mean / MIB,
            avail / MIB,
            mean / MIB
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formula_keeps_a_fifth_of_free_memory() {
        // 2 workers of 30 MiB, 1000 MiB available: (60 + 800) / 30 = 28.
        assert_eq!(max_children(&[30 * MIB, 30 * MIB], 1000 * MIB), Some(28));
        assert_eq!(max_children(&[], 1000 * MIB), None);
        assert_eq!(step_cap(1), 5);
        assert_eq!(step_cap(20), 80);
    }
}
