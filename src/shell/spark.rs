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

/// On the master, after `node_status`: prints `history=<yes|no>`, whether the history server
/// runs (checked like every daemon: its unit, else its pidfile and command line).
pub fn history_status(layout: &Layout) -> String {
    format!(
        "\nif {check}; then echo history=yes; else echo history=no; fi",
        check = daemon_check(&layout.daemon(&layout.history)),
    )
}

/// Stops the worker daemon: its unit where systemd runs it, else `spark-daemon.sh stop`.
fn worker_stop(layout: &Layout) -> String {
    let w = layout.daemon(&layout.worker);
    format!(
        "if [ -d /run/systemd/system ] && systemctl cat {unit} >/dev/null 2>&1; then systemctl stop {unit}; else {stop}; fi",
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

/// Stops the worker daemon on a node the inventory no longer lists.
pub fn stop_worker(layout: &Layout) -> String {
    format!("cd / && {}", worker_stop(layout))
}

/// Decommissions a worker the way Spark means it (SIGPWR: it takes no new tasks, and its
/// executors migrate their shuffle and cached blocks before they exit), waits up to
/// `timeout_secs` for its executors to leave, then stops the daemon. Prints
/// `executors_left=<n> seconds=<s>` (or `not_running`), so the caller can tell a clean
/// decommission from a deadline.
pub fn decommission_worker(layout: &Layout, timeout_secs: u64) -> String {
    let w = layout.daemon(&layout.worker);
    // `[o]rg...`: the pattern must not match this script's own command line.
    let executors = "[o]rg.apache.spark.executor.CoarseGrainedExecutorBackend";
    format!(
        r#"cd / || exit 1
{PID_FN}unit={unit}; user={user}
if [ -d /run/systemd/system ] && systemctl is-active --quiet "$unit"; then systemctl kill --signal=SIGPWR "$unit"
elif sb_pid {pf} {class} >/dev/null; then {signal}
else echo not_running; exit 0; fi
start=$(date +%s); left=0
while :; do
  left=$(pgrep -u "$user" -f {exec} | wc -l)
  [ "$left" -eq 0 ] && break
  [ $(( $(date +%s) - start )) -ge {timeout} ] && break
  sleep 1
done
took=$(( $(date +%s) - start ))
{{ {stop}; }} >/dev/null 2>&1
echo "executors_left=$left seconds=$took""#,
        unit = quote(&w.unit),
        user = quote(&layout.user),
        pf = quote(&w.pidfile),
        class = quote(&w.class),
        signal = as_user(
            &layout.user,
            &format!(
                "{} decommission {} 1",
                quote(&layout.daemon_script()),
                quote(&w.class)
            )
        ),
        exec = quote(executors),
        timeout = timeout_secs,
        stop = worker_stop(layout),
    )
}
