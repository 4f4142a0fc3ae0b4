//! Cross-host checks after the roles ran: every inventory worker must be ALIVE on the master,
//! and workers the master still lists but the inventory dropped (a scale-in) are stopped.
//!
//! On a no-op run the master's probe already read its status page: when no host changed
//! anything and every expected worker was ALIVE then, nothing is read again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::engine::converge::ConvergePlan;
use crate::engine::{Engine, Node};
use crate::inventory::{Host, NodeRole};
use crate::shell;
use crate::transport::KnownHosts;

use super::layout::Layout;
use super::registration::alive_workers;

type Items = Vec<(Node, crate::engine::HostConverge)>;

/// Polls the master until every expected worker is ALIVE or the deadline passes; returns the
/// workers that are ALIVE at the end (the master's view).
pub fn wait_for(
    node: &mut Node,
    port: u16,
    expected: &BTreeSet<String>,
    timeout: Duration,
) -> Result<BTreeSet<String>, String> {
    let started = Instant::now();
    let script = shell::spark::status_page(&node.host.address, port);
    loop {
        node.bar.set("waiting for workers to register");
        let last = match node.run(&script, None) {
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
pub fn stop_removed(
    template: &Host,
    address: &str,
    layout: &Layout,
    ssh: &crate::transport::SshOptions,
    known: &KnownHosts,
) -> String {
    match known.knows(address, template.port) {
        Ok(true) => {}
        Ok(false) => {
            return format!("{address} is registered with the master but is neither in the inventory nor a host sparkboot configured (no pinned key): not connecting to it; if it is not yours, someone holds the Spark secret (rotate it by deleting the state dir's spark-auth-secret and converging)")
        }
        Err(e) => return format!("not connecting to {address}: {e}"),
    }
    let pinned_only = KnownHosts::new(known.path().to_path_buf(), true);
    let host = Host {
        name: address.to_string(),
        address: address.to_string(),
        role: NodeRole::Worker,
        ..template.clone()
    };
    let opts = crate::transport::SshOptions {
        retry_deadline: Duration::from_secs(3),
        ..ssh.clone()
    };
    match crate::transport::Connection::open(&host, &opts, &pinned_only) {
        Ok(conn) => match conn.run(&shell::spark::stop_worker(layout), shell::Privilege::Root, None) {
            Ok(out) if out.success() => format!("stopped the worker daemon on {address}, which is no longer in the inventory"),
            Ok(out) => format!("could not stop the worker on {address} (no longer in the inventory): {}", out.stderr.trim()),
            Err(e) => format!("could not stop the worker on {address}: {e}"),
        },
        Err(_) => format!("{address} is no longer in the inventory and is not reachable; the master drops it after its worker timeout"),
    }
}

/// Runs the registration check on the master and fails inventory workers that are not ALIVE.
/// Returns the runs, notes for the report (scale-in actions) and the master's ALIVE workers.
pub fn verify(
    engine: &Engine,
    items: Items,
    plan: &ConvergePlan,
) -> (Items, Vec<String>, Option<BTreeSet<String>>) {
    let (mut masters, mut rest): (Items, Items) = items
        .into_iter()
        .partition(|(n, _)| n.host.role == NodeRole::Master);
    if !masters.iter().any(|(n, _)| n.alive()) {
        masters.append(&mut rest);
        return (masters, Vec::new(), None);
    }
    let expected: BTreeSet<String> = rest
        .iter()
        .filter(|(n, _)| n.alive())
        .map(|(n, _)| n.host.address.clone())
        .collect();
    let inventory: BTreeSet<String> = plan
        .inventory
        .workers
        .iter()
        .map(|w| w.address.clone())
        .collect();
    let port = plan.base.config.spark.master_webui_port;
    let timeout = Duration::from_secs(plan.base.config.spark.registration_timeout_secs);
    let nothing_changed = masters
        .iter()
        .chain(rest.iter())
        .all(|(_, hc)| hc.changed == 0);
    let seen = masters
        .iter()
        .find_map(|(_, hc)| hc.observed("status"))
        .and_then(|json| alive_workers(json).ok());
    let mut alive = match seen {
        // A no-op: the probe's view holds, no round trip.
        Some(seen) if nothing_changed && expected.is_subset(&seen) => Some(Ok(seen)),
        _ => None,
    };
    if alive.is_none() {
        let exp = expected.clone();
        engine.progress.stage("workers registering");
        masters = engine.each(masters, move |node, hc| {
            hc.registration = Some(wait_for(node, port, &exp, timeout));
        });
        alive = masters
            .iter_mut()
            .find_map(|(_, hc)| hc.registration.take());
    }
    let mut notes = Vec::new();
    let alive = match alive {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            for (n, _) in masters.iter_mut() {
                n.fail(format!("registration check: {e}"));
            }
            masters.append(&mut rest);
            return (masters, notes, None);
        }
        None => {
            masters.append(&mut rest);
            return (masters, notes, None);
        }
    };
    if let (Some(layout), Some((master, _))) = (&plan.base.layout, masters.first()) {
        for removed in alive.difference(&inventory) {
            notes.push(stop_removed(
                &master.host,
                removed,
                layout,
                &plan.base.config.ssh,
                &engine.known,
            ));
        }
    }
    for (node, _) in rest.iter_mut().filter(|(n, _)| n.alive()) {
        if !alive.contains(&node.host.address) {
            node.fail(format!(
                "did not register with the master within {}s; see the Spark logs on {} and check that it can reach {}:{}",
                timeout.as_secs(),
                node.host.name,
                plan.inventory.master.address,
                plan.base.config.spark.master_port
            ));
        }
    }
    masters.append(&mut rest);
    (masters, notes, Some(alive))
}
