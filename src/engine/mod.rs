//! The engine: what every command that talks to hosts calls, and the only place that fans work
//! out over them.
//!
//! [`Engine::new`] resolves how many hosts run at once and whether sessions can stay open
//! (fitted once to the open-file limit), and owns the async runtime. [`Engine::each`] runs a
//! command's work on every node, each with the command's own per-host value (`exec` keeps an
//! output, `status` a daemon state, `converge` its plan and counters), connecting first with
//! at most `max_handshakes` concurrent handshakes per sshd (each sshd's MaxStartups is its own).
//! [`converge::run`] is the roles pipeline (probe, phases, handlers, exports, the registration
//! check) that `converge`, `harden` and `watch` share.
//! Nodes are plain values moved in and out of each call, so `watch` keeps its sessions between
//! reconciles and no lock is shared between hosts.

mod context;
pub mod converge;
mod host;
mod limits;
pub mod lock;
mod node;
mod rolling;

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::report::{PassCounter, Progress};
use crate::transport::{jump_sessions, JumpPool, KnownHosts};

pub use host::HostConverge;
pub use node::{Link, Node};

/// Concurrency, fitted to the open-file limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub forks: usize,
    /// Concurrent handshakes per receiving sshd (see [`limits::HandshakeGates`]).
    pub max_handshakes: usize,
    /// Sessions stay open across calls unless there are too many hosts for the fd limit.
    pub keep_sessions: bool,
}

pub struct Engine {
    pub config: Arc<Config>,
    pub inventory: Arc<Inventory>,
    pub known: Arc<KnownHosts>,
    pub limits: Limits,
    link: Arc<Link>,
    runtime: tokio::runtime::Runtime,
    pub progress: Progress,
}

impl Engine {
    /// An engine for up to `hosts` hosts at once. Prints a note when the fd limit caps forks.
    pub fn new(
        config: Config,
        inventory: Inventory,
        known: KnownHosts,
        hosts: usize,
        show_progress: bool,
    ) -> Result<Engine, Error> {
        let jumps = jump_sessions(inventory.hosts());
        let (forks, keep_sessions, note) = limits::plan_concurrency(config.forks, hosts, jumps);
        if let Some(n) = note {
            eprintln!("sparkboot: note: {n}");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
        let known = Arc::new(known);
        let link = Arc::new(Link {
            ssh: config.ssh.clone(),
            known: known.clone(),
            jumps: JumpPool::new(),
        });
        Ok(Engine {
            limits: Limits {
                forks,
                max_handshakes: config.max_handshakes,
                keep_sessions,
            },
            config: Arc::new(config),
            inventory: Arc::new(inventory),
            known,
            link,
            runtime,
            progress: Progress::new(show_progress),
        })
    }

    /// Replaces the inventory (a watcher's cluster grows and shrinks) and fits forks and
    /// session keeping to its size again: sized once for the first inventory, a watcher that
    /// started with two hosts would work on a scale-out of ten two at a time.
    pub fn set_inventory(&mut self, inventory: Arc<Inventory>) {
        let hosts = inventory.hosts().count().max(1);
        let jumps = jump_sessions(inventory.hosts());
        let (forks, keep_sessions, note) =
            limits::plan_concurrency(self.config.forks, hosts, jumps);
        if let Some(n) = note.filter(|_| forks != self.limits.forks) {
            eprintln!("sparkboot: note: {n}");
        }
        self.limits.forks = forks;
        self.limits.keep_sessions = keep_sessions;
        self.inventory = inventory;
    }

    /// Nodes (not yet connected) for the selected inventory hosts, in inventory order.
    pub fn nodes(&self, selected: &BTreeSet<String>) -> Vec<Node> {
        self.inventory
            .hosts()
            .filter(|h| selected.contains(&h.name))
            .map(|h| self.node(h.clone(), &h.name))
            .collect()
    }

    /// A node for one host, with its own progress line labelled `label`.
    pub fn node(&self, host: crate::inventory::Host, label: &str) -> Node {
        Node::new(host, self.link.clone(), self.progress.host(label))
    }

    /// Runs `work` on every live node with its per-host value, at most `forks` at once,
    /// connecting first where needed (at most `max_handshakes` handshakes at once against any
    /// one sshd, because each sshd's MaxStartups drops floods; hosts behind a jump host share
    /// one session to it and each handshake their own sshd). A failed node keeps its state and
    /// skips the work.
    pub fn each<T, F>(&self, items: Vec<(Node, T)>, work: F) -> Vec<(Node, T)>
    where
        T: Send + 'static,
        F: Fn(&mut Node, &mut T) + Send + Sync + 'static,
    {
        let pass = self
            .progress
            .pass(items.iter().filter(|(n, _)| n.alive()).count());
        self.runtime
            .block_on(fan_out(items, self.limits, Arc::new(work), pass))
    }
}

async fn fan_out<T, F>(
    items: Vec<(Node, T)>,
    limits: Limits,
    work: Arc<F>,
    pass: PassCounter,
) -> Vec<(Node, T)>
where
    T: Send + 'static,
    F: Fn(&mut Node, &mut T) + Send + Sync + 'static,
{
    let forks = Arc::new(Semaphore::new(limits.forks));
    let gates = Arc::new(limits::HandshakeGates::new(limits.max_handshakes));
    let mut tasks = Vec::with_capacity(items.len());
    for (node, value) in items {
        let (forks, work) = (forks.clone(), work.clone());
        let gate = gates.gate(&node.host);
        let pass = pass.clone();
        tasks.push(tokio::spawn(async move {
            if !node.alive() {
                return (node, value);
            }
            // Counted on the overall line however the host ends (done, failed, unreachable).
            struct Done(PassCounter);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.host_done();
                }
            }
            let _done = Done(pass);
            let Ok(_slot) = forks.acquire_owned().await else {
                return (node, value);
            };
            let mut node = node;
            if !node.connected() {
                let Ok(_hs) = gate.acquire_owned().await else {
                    return (node, value);
                };
                node = match tokio::task::spawn_blocking(move || {
                    node.connect();
                    node
                })
                .await
                {
                    Ok(n) => n,
                    Err(e) => rethrow(e),
                };
                if !node.alive() {
                    return (node, value);
                }
            }
            match tokio::task::spawn_blocking(move || {
                let (mut node, mut value) = (node, value);
                work(&mut node, &mut value);
                if !limits.keep_sessions {
                    node.disconnect();
                }
                (node, value)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => rethrow(e),
            }
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(r) => out.push(r),
            Err(e) => rethrow(e),
        }
    }
    out
}

/// A host task can only fail by panicking (a bug): let the panic continue with its own message
/// rather than lose it behind a second one.
fn rethrow(e: tokio::task::JoinError) -> ! {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic())
    }
    unreachable!("host tasks are never cancelled: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Host, NodeRole};

    fn cluster(workers: usize) -> Inventory {
        let host = |name: String, address: String, role| {
            Host::new(
                name,
                address,
                22,
                "root".into(),
                None,
                None,
                role,
                Default::default(),
            )
            .expect("host")
        };
        let master = host("m".into(), "192.0.2.1".into(), NodeRole::Master);
        let workers = (0..workers)
            .map(|i| {
                host(
                    format!("w{i}"),
                    format!("192.0.2.{}", i + 2),
                    NodeRole::Worker,
                )
            })
            .collect();
        Inventory::new("test".into(), master, workers).expect("inventory")
    }

    #[test]
    fn a_growing_inventory_gets_the_forks_it_needs() {
        // Regression: a watcher sized for its first two hosts worked on a burst of ten new
        // workers two at a time.
        let config = Config::parse(std::path::Path::new("sparkboot.toml"), "").expect("config");
        let known = KnownHosts::new(std::env::temp_dir().join("sparkboot-unused-known"), true);
        let mut engine = Engine::new(config, cluster(1), known, 2, false).expect("engine");
        assert_eq!(engine.limits.forks, 2);
        engine.set_inventory(Arc::new(cluster(11)));
        assert_eq!(engine.limits.forks, 12);
        assert!(engine.limits.keep_sessions);
        engine.set_inventory(Arc::new(cluster(0)));
        assert_eq!(engine.limits.forks, 1);
    }
}
