//! Scripts about the Spark daemons themselves, outside the roles: the master's status page, a
//! node's installed version and daemon state (`status`), stopping a worker the inventory
//! dropped, and decommissioning a worker gracefully (`watch`). Every path and name comes from
//! the layout.

use super::{as_user, quote, PID_FN};
use crate::spark::layout::{DaemonPaths, Layout};

/// Reads the master's `/json/` from the master itself (its UI may listen only on the private
/// address).
pub fn status_page(address: &str, port: u16) -> String {
    let url = format!("http://{address}:{port}/json/");
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsS --max-time 5 {u}; else wget -q -T 5 -O - {u}; fi",
        u = quote(&url)
    )
}

/// Checks a daemon the way converge does: its systemd unit where systemd runs, else the
/// pidfile (and its command line).
fn daemon_check(d: &DaemonPaths) -> String {
    format!(
        "if [ -d /run/systemd/system ]; then systemctl is-active --quiet {unit}; else sb_pid {pf} {class} >/dev/null; fi",
        unit = quote(&d.unit),
        pf = quote(&d.pidfile),
        class = quote(&d.class),
    )
}

/// `sparkboot status` on one node: prints `version=<dir the Spark home links to>` and
/// `running=<yes|no>`.
pub fn node_status(layout: &Layout, daemon: &DaemonPaths) -> String {
    format!(
        "{PID_FN}l=$(readlink {home} 2>/dev/null); echo \"version=${{l##*/}}\"\nif {check}; then echo running=yes; else echo running=no; fi",
        home = quote(&layout.home),
        check = daemon_check(daemon),
    )
}

/// Stops the worker daemon on a node the inventory no longer lists.
pub fn stop_worker(layout: &Layout) -> String {
    let w = layout.daemon(&layout.worker);
    format!(
        "cd / && if [ -d /run/systemd/system ] && systemctl cat {unit} >/dev/null 2>&1; then systemctl stop {unit}; else {stop}; fi",
        unit = quote(&w.unit),
        stop = as_user(
            &layout.user,
            &format!(
                "{} stop {} 1",
                quote(&layout.daemon_script()),
                quote(&w.class)
            )
        ),
    )
}
