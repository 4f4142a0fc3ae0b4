//! Cross-host checks after the roles ran: every inventory worker must be ALIVE on the master,
//! and workers the master still lists but the inventory dropped (a scale-in) are stopped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::apply::{self, HostRun, HostState, Prepared, Settings};
use crate::inventory::{Host, NodeRole};
use crate::shell;
use crate::transport::KnownHosts;

use super::registration::alive_workers;

/// The script that reads the master's status page from the master itself.
pub fn status_script(address: &str, port: u16) -> String {
    let url = format!("http://{address}:{port}/json/");
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsS --max-time 5 {u}; else wget -q -T 5 -O - {u}; fi",
        u = shell::quote(&url)
    )
}

/// Polls the master until every expected worker is ALIVE or the deadline passes; returns the
/// workers that are ALIVE at the end (the master's view).
fn wait_for(
    run: &mut HostRun,
    port: u16,
    expected: &BTreeSet<String>,
    timeout: Duration,
) -> Result<BTreeSet<String>, String> {
    let started = Instant::now();
    let script = status_script(&run.host.address, port);
    loop {
        run.bar.set("waiting for workers to register");
        let last = match run.run(&script, None) {
            Some(out) if out.success() => match alive_workers(&out.stdout) {
                Ok(alive) if expected.is_subset(&alive) => return Ok(alive),
                Ok(alive) => Ok(alive),
                Err(e) => Err(e),
            },
            Some(out) => Err(format!(
                "cannot read the master's status page: {}",
                out.stderr.trim()
            )),
            None => return Err("lost the connection to the master".into()),
        };
        if started.elapsed() >= timeout {
            return last;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Stops the worker daemon at `address` (no longer in the inventory), reached with the master's
/// login settings. Returns a line for the report.
///
/// Only a host sparkboot configured before (its key pinned in known_hosts) is contacted, and
/// only with that key: anyone holding the Spark secret can register a worker at any address,
/// and logging in there would hand that address the operator's key, agent and jump host.
fn stop_removed(template: &Host, address: &str, prep: &Prepared, known: &KnownHosts) -> String {
    match known.knows(address, template.port) {
        Ok(true) => {}
        Ok(false) => {
            return format!("{address} is registered with the master but is neither in the inventory nor a host sparkboot configured (no pinned key): not connecting to it; if it is not yours, someone holds the Spark secret (rotate it by deleting the state dir's spark-auth-secret and converging)")
        }
        Err(e) => return format!("not connecting to {address}: {e}"),
    }
    let pinned_only = KnownHosts::new(known.path().to_path_buf(), true);
    let known = &pinned_only;
    let host = Host {
        name: address.to_string(),
        address: address.to_string(),
        role: NodeRole::Worker,
        ..template.clone()
    };
    let opts = crate::transport::SshOptions {
        retry_deadline: Duration::from_secs(3),
        ..prep.config.ssh.clone()
    };
    let script = shell::as_user(
        "spark",
        "/opt/spark/sbin/spark-daemon.sh stop org.apache.spark.deploy.worker.Worker 1",
    );
    match crate::transport::Connection::open(&host, &opts, known) {
        Ok(conn) => match conn.run(&script, shell::Privilege::Root, None) {
            Ok(out) if out.success() => format!("stopped the worker daemon on {address}, which is no longer in the inventory"),
            Ok(out) => format!("could not stop the worker on {address} (no longer in the inventory): {}", out.stderr.trim()),
            Err(e) => format!("could not stop the worker on {address}: {e}"),
        },
        Err(_) => format!("{address} is no longer in the inventory and is not reachable; the master drops it after its worker timeout"),
    }
}

/// Runs the registration check on the master and fails inventory workers that are not ALIVE.
/// Returns notes for the report (scale-in actions).
pub async fn verify(
    mut runs: Vec<HostRun>,
    prep: &Arc<Prepared>,
    known: &Arc<KnownHosts>,
    settings: &Settings,
) -> (Vec<HostRun>, Vec<String>) {
    let master_alive = runs
        .iter()
        .any(|r| r.host.role == NodeRole::Master && r.alive());
    if !master_alive {
        return (runs, Vec::new());
    }
    let expected: BTreeSet<String> = runs
        .iter()
        .filter(|r| r.host.role == NodeRole::Worker && r.alive())
        .map(|r| r.host.address.clone())
        .collect();
    let inventory: BTreeSet<String> = prep
        .inventory
        .workers
        .iter()
        .map(|w| w.address.clone())
        .collect();
    let port = prep.config.spark.master_webui_port;
    let timeout = Duration::from_secs(prep.config.spark.registration_timeout_secs);
    let exp = expected.clone();
    let (k2, p2) = (known.clone(), prep.clone());
    runs = apply::for_each_host(runs, prep, known, settings, move |run, _| {
        if run.host.role != NodeRole::Master {
            return;
        }
        match wait_for(run, port, &exp, timeout) {
            Ok(alive) => {
                let removed: Vec<String> = alive.difference(&inventory).cloned().collect();
                let template = run.host.clone();
                run.notes
                    .extend(removed.iter().map(|a| stop_removed(&template, a, &p2, &k2)));
                run.registered = Some(alive);
            }
            Err(e) => run.state = HostState::Failed(format!("registration check: {e}")),
        }
    })
    .await;
    let mut notes = Vec::new();
    let alive = runs
        .iter()
        .find(|r| r.host.role == NodeRole::Master)
        .and_then(|m| {
            notes.extend(m.notes.iter().cloned());
            m.registered.clone()
        });
    if let Some(alive) = alive {
        for run in runs
            .iter_mut()
            .filter(|r| r.host.role == NodeRole::Worker && r.alive())
        {
            if !alive.contains(&run.host.address) {
                run.state = HostState::Failed(format!(
                    "did not register with the master within {}s; see /var/log/spark on {} and check that it can reach {}:{}",
                    timeout.as_secs(),
                    run.host.name,
                    prep.inventory.master.address,
                    prep.config.spark.master_port
                ));
            }
        }
    }
    (runs, notes)
}
