//! The roles pipeline that `converge`, `harden` and `watch` run: load and render the roles,
//! probe every host once, run the phases in order across hosts (the master's daemon is up
//! before any worker's starts), and for a Spark cluster check that every worker registered.
//!
//! When the master's plan neither (re)starts its daemon nor changes an export (a scale-out, a
//! re-run), hosts run their phases back to back instead of waiting at each phase for the
//! slowest host.
//!
//! A no-op costs each host one handshake and one round trip, the master included: the master's
//! probe also reads what later phases import from it (the cluster's public key) and its status
//! page, so nothing is read again unless this run changed it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::host::HostConverge;
use super::lock::{self, LockError, RunLock, Taken};
use super::node::Node;
use super::{context, Engine};
use crate::config::Config;
use crate::error::Error;
use crate::facts::SystemFacts;
use crate::inventory::{Inventory, NodeRole};
use crate::plan::{PlanOptions, Redactor};
use crate::roles::{EvalContext, Library, Role};
use crate::spark::layout::Layout;

/// What to converge and how.
pub struct ConvergeRequest<'a> {
    pub roles: &'a [String],
    pub check: bool,
    pub diff: bool,
    /// Take the cluster lock before changing anything, waiting up to this many seconds for
    /// another run to finish (`None`: never lock; `--check` changes nothing).
    pub lock_wait: Option<u64>,
    /// The command, named in the lock for whoever waits on this run.
    pub command: &'static str,
    /// Roll a Spark version change over running workers in batches (`converge`); `watch` and
    /// `harden` converge what they are given at once.
    pub rolling: bool,
}

/// Roles whose presence means "this is a Spark cluster": check registration at the end.
const DAEMON_ROLES: [&str; 2] = ["spark-master", "spark-worker"];

/// Everything a converge needs that does not depend on which hosts there are: loaded and
/// validated before any connection, and reused by `watch` across reconciles.
pub struct PlanBase {
    pub config: Arc<Config>,
    pub roles: Vec<Role>,
    pub eval: EvalContext,
    pub options: PlanOptions,
    /// The values sparkboot computed for the roles (`spark.*`, `secrets.*`), merged into every
    /// host's template context.
    pub values: Value,
    /// The Spark layout, when the roles use the Spark context.
    pub layout: Option<Layout>,
    /// Set when this run created the cluster's Spark secret.
    pub created_secret: Option<PathBuf>,
    /// The roles run Spark daemons: check registration at the end.
    pub spark_cluster: bool,
    /// See [`ConvergeRequest::lock_wait`].
    pub lock_wait: Option<u64>,
    pub command: &'static str,
    /// See [`ConvergeRequest::rolling`].
    pub rolling: bool,
}

/// A [`PlanBase`] bound to one inventory.
pub struct ConvergePlan {
    pub base: Arc<PlanBase>,
    pub inventory: Arc<Inventory>,
    /// (name, path on the master) of every export.
    pub export_paths: Vec<(String, String)>,
    /// The script that reads the master's status page, for a Spark cluster.
    pub status_probe: Option<String>,
}

/// One host's converge, finished.
pub struct HostResult {
    pub node: Node,
    pub converge: HostConverge,
}

pub struct ConvergeOutcome {
    pub hosts: Vec<HostResult>,
    /// Cluster-level actions (stopping a worker the inventory dropped).
    pub notes: Vec<String>,
    pub plan: Arc<ConvergePlan>,
    /// A rolling upgrade this run made (or, with `--check`, would make).
    pub upgrade: Option<crate::spark::upgrade::UpgradeReport>,
}

/// Values of config vars whose names mark them as secret; they are redacted from every diff and
/// error message.
pub fn secret_vars(config: &Config) -> Vec<String> {
    const MARKERS: [&str; 5] = ["secret", "password", "token", "private", "credential"];
    config
        .vars
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            MARKERS.iter().any(|m| k.contains(m))
        })
        .filter_map(|(_, v)| v.as_str().map(str::to_string))
        .collect()
}

/// Loads the roles and computes sparkboot's values for them (fetching the Spark checksum and,
/// for the s3 distribution, staging the archive). Nothing is contacted but the Spark source.
pub fn prepare(engine: &Engine, req: &ConvergeRequest) -> Result<PlanBase, Error> {
    let config = engine.config.clone();
    let library = Library {
        roles_dir: config.roles_dir.clone(),
        templates_dir: config.templates_dir.clone(),
    };
    let roles = library.load_roles(req.roles)?;
    let eval = EvalContext::new(&library, &roles)?;
    let mut secrets = secret_vars(&config);
    let mut values = serde_json::json!({});
    let mut layout = None;
    let mut created_secret = None;
    let mut pushed = BTreeMap::new();
    if roles
        .iter()
        .any(|r| r.data.context.iter().any(|c| c == "spark"))
    {
        let l = Layout::load(&library)?;
        let spark = crate::spark::prepare_for(
            &config,
            &l,
            engine.inventory.cloud.as_ref(),
            req.check,
            &engine.progress,
        )?;
        secrets.extend(spark.secrets);
        values = serde_json::to_value(&spark.context)
            .map_err(|e| Error::Usage(format!("internal: the Spark context: {e}")))?;
        created_secret = spark.created_secret;
        pushed = spark.pushed;
        layout = Some(l);
    }
    let options = PlanOptions {
        diff: req.diff,
        check: req.check,
        redactor: Redactor::new(secrets),
        pushed,
    };
    let spark_cluster = roles
        .iter()
        .any(|r| DAEMON_ROLES.contains(&r.name.as_str()));
    Ok(PlanBase {
        config,
        roles,
        eval,
        options,
        values,
        layout,
        created_secret,
        spark_cluster,
        lock_wait: if req.check { None } else { req.lock_wait },
        command: req.command,
        rolling: req.rolling,
    })
}

impl PlanBase {
    /// Binds the plan to an inventory: the master's export paths and its status page.
    pub fn bind(self: &Arc<Self>, inventory: Arc<Inventory>) -> Result<ConvergePlan, Error> {
        let master_ctx = context::build(
            &self.config,
            &inventory,
            &inventory.master,
            &SystemFacts::default(),
            &self.values,
        );
        let export_paths = crate::roles::exports(&self.roles, None, &master_ctx)?;
        let status_probe = self.spark_cluster.then(|| {
            crate::shell::spark::status_page(
                &inventory.master.address,
                self.config.spark.master_webui_port,
            )
        });
        Ok(ConvergePlan {
            base: self.clone(),
            inventory,
            export_paths,
            status_probe,
        })
    }
}

/// Placeholders for exports not known yet (check mode on a fresh cluster).
fn placeholders(plan: &ConvergePlan) -> serde_json::Map<String, Value> {
    plan.export_paths
        .iter()
        .map(|(name, path)| {
            (
                name.clone(),
                Value::String(format!("(read from the master: {path})")),
            )
        })
        .collect()
}

/// Reads exports on the master through its session, as whoever controls the file.
fn read_exports(node: &mut Node, paths: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, path) in paths {
        let Some(o) = node.run(&crate::shell::ops::read_export(path), None) else {
            return out;
        };
        match crate::facts::parse_content(&o.stdout) {
            Ok(Some(v)) if o.success() && !v.trim().is_empty() => {
                out.insert(name.clone(), v.trim().to_string());
            }
            Ok(_) => {}
            Err(e) => {
                node.fail(format!("cannot read export {name} from {path}: {e}"));
                return out;
            }
        }
    }
    out
}

/// The exports before any probe: placeholders, or, when the master is not in this run, the
/// values read from it (workers need values only the master has; read without changing it).
fn initial_exports(
    engine: &Engine,
    plan: &ConvergePlan,
    master_selected: bool,
) -> serde_json::Map<String, Value> {
    let mut exports = placeholders(plan);
    if !plan.export_paths.is_empty() && !master_selected {
        let master = engine.node(plan.inventory.master.clone(), "(master, read only)");
        let paths = plan.export_paths.clone();
        for (_, read) in engine.each(vec![(master, BTreeMap::new())], move |node, out| {
            *out = read_exports(node, &paths)
        }) {
            exports.extend(read.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
    }
    exports
}

/// Probes every host once; the master's probe also carries the exports and the status page.
fn probe_all(
    engine: &Engine,
    items: Vec<(Node, HostConverge)>,
    plan: &Arc<ConvergePlan>,
    exports: &mut serde_json::Map<String, Value>,
) -> Vec<(Node, HostConverge)> {
    let (p, snapshot) = (plan.clone(), Arc::new(Value::Object(exports.clone())));
    engine.progress.stage("gathering facts");
    let items = engine.each(items, move |node, hc| hc.probe(node, &p, &snapshot));
    let master = &plan.inventory.master.name;
    if let Some((_, hc)) = items.iter().find(|(n, _)| &n.host.name == master) {
        for (name, path) in &plan.export_paths {
            if let Some(v) = hc.probed(path) {
                exports.insert(name.clone(), Value::String(v));
            }
        }
    }
    items
}

/// Whether this run would change anything: every phase planned in check mode from the probe
/// (controller CPU only, no round trip), plus a worker the master lists that the inventory
/// dropped (the scale-in stop).
fn changes_pending(
    items: &mut [(Node, HostConverge)],
    plan: &ConvergePlan,
    exports: &serde_json::Map<String, Value>,
) -> bool {
    let phases: BTreeSet<u32> = plan.base.roles.iter().map(|r| r.data.phase).collect();
    let snapshot = Value::Object(exports.clone());
    for (node, hc) in items.iter_mut() {
        if !node.alive() {
            continue;
        }
        let mut sim = hc.clone();
        for &phase in &phases {
            sim.run_phase(node, plan, phase, true, &snapshot);
        }
        if sim.changed > 0 {
            return true;
        }
    }
    let inventory: BTreeSet<&str> = plan
        .inventory
        .workers
        .iter()
        .map(|w| w.address.as_str())
        .collect();
    items
        .iter()
        .filter_map(|(_, hc)| hc.observed("status"))
        .filter_map(|json| crate::spark::registration::alive_workers(json).ok())
        .any(|alive| alive.iter().any(|a| !inventory.contains(a.as_str())))
}

/// Whether every host may run all its phases back to back, without waiting at each phase for
/// the slowest host: every export is known from the probe, and the master's plan starts or
/// restarts no daemon and changes no export (the barriers exist for exactly those two). A
/// scale-out is like this (the master only lists the new workers in conf/workers), and then each
/// new worker starts its daemon as soon as its own install is done.
fn settled(
    items: &mut [(Node, HostConverge)],
    plan: &ConvergePlan,
    exports: &serde_json::Map<String, Value>,
) -> bool {
    let unknown = placeholders(plan);
    if exports.iter().any(|(k, v)| unknown.get(k) == Some(v)) {
        return false;
    }
    let master = &plan.inventory.master.name;
    let Some((node, hc)) = items.iter_mut().find(|(n, _)| &n.host.name == master) else {
        // Not in this run: it changes nothing, and its exports were read above.
        return true;
    };
    if !node.alive() {
        return false;
    }
    let snapshot = Value::Object(exports.clone());
    let mut sim = hc.clone();
    for phase in plan
        .base
        .roles
        .iter()
        .map(|r| r.data.phase)
        .collect::<BTreeSet<u32>>()
    {
        sim.run_phase(node, plan, phase, true, &snapshot);
    }
    let paths: Vec<String> = plan.export_paths.iter().map(|(_, p)| p.clone()).collect();
    sim.keeps(&paths)
}

/// Plans, then applies phase by phase; for a Spark cluster (not `--check`), checks
/// registration and stops workers the inventory dropped.
pub fn run(
    engine: &Engine,
    nodes: Vec<Node>,
    plan: Arc<ConvergePlan>,
) -> Result<ConvergeOutcome, Error> {
    let handlers = Arc::new(crate::roles::handler_map(&plan.base.roles));
    let master_name = plan.inventory.master.name.clone();
    let master_selected = nodes.iter().any(|n| n.host.name == master_name);
    let mut exports = initial_exports(engine, &plan, master_selected);
    let fresh: Vec<(Node, HostConverge)> = nodes
        .into_iter()
        .map(|n| (n, HostConverge::new(handlers.clone())))
        .collect();
    let mut items = probe_all(engine, fresh, &plan, &mut exports);
    // Held until the end of the run when it was taken; dropping a node opened only for the lock
    // ends its session, which also releases the lock.
    let mut held: Option<(RunLock, Option<Node>)> = None;
    if let Some(wait) = plan.base.lock_wait {
        if changes_pending(&mut items, &plan, &exports) {
            let run_lock = RunLock::new(plan.base.command);
            let observed = items
                .iter()
                .find(|(n, _)| n.host.name == master_name)
                .and_then(|(_, hc)| hc.observed(lock::OBSERVE_KEY).map(str::to_string));
            let mut outside = None;
            let master = match items.iter_mut().find(|(n, _)| n.host.name == master_name) {
                Some((n, _)) => n,
                None => {
                    outside.insert(engine.node(plan.inventory.master.clone(), "(master, lock)"))
                }
            };
            match run_lock.take(master, wait, observed.as_deref()) {
                Ok(Taken::Fresh) => {}
                Ok(Taken::Stale) => {
                    // Another run changed the cluster since we looked: look again.
                    let again = items
                        .into_iter()
                        .map(|(n, _)| (n, HostConverge::new(handlers.clone())))
                        .collect();
                    exports = initial_exports(engine, &plan, master_selected);
                    items = probe_all(engine, again, &plan, &mut exports);
                }
                Err(LockError::Busy(m)) => return Err(Error::Locked(m)),
                Err(LockError::Failed(m)) => return Err(Error::Usage(m)),
            }
            held = Some((run_lock, outside));
        }
    }
    let check = plan.base.options.check;
    let rolling = if plan.base.rolling && plan.status_probe.is_some() {
        super::rolling::plan_for(&items, &plan)
    } else {
        None
    };
    let (mut items, notes, upgrade) = match rolling {
        Some(up) if !check => {
            let (items, notes, report) =
                super::rolling::run(engine, items, &plan, &mut exports, up)?;
            (items, notes, Some(report))
        }
        planned => {
            let items = run_phases(engine, items, &plan, &mut exports)?;
            let (items, mut notes) = verify(engine, items, &plan);
            if let Some(up) = &planned {
                // Check mode: the stages a real run would take.
                notes.extend(up.describe());
            }
            (
                items,
                notes,
                planned.map(crate::spark::upgrade::UpgradeReport::planned),
            )
        }
    };
    if let Some((run_lock, outside)) = held.as_mut() {
        match outside {
            Some(node) => run_lock.release(node),
            None => {
                if let Some((n, _)) = items.iter_mut().find(|(n, _)| n.host.name == master_name) {
                    run_lock.release(n);
                }
            }
        }
    }
    Ok(ConvergeOutcome {
        hosts: items
            .into_iter()
            .map(|(node, converge)| HostResult { node, converge })
            .collect(),
        notes,
        plan,
        upgrade,
    })
}

/// Applies (or, in check mode, plans) every phase on `items`, phase by phase across hosts, or
/// back to back per host when nothing a later phase waits for changes.
pub(super) fn run_phases(
    engine: &Engine,
    mut items: Vec<(Node, HostConverge)>,
    plan: &Arc<ConvergePlan>,
    exports: &mut serde_json::Map<String, Value>,
) -> Result<Vec<(Node, HostConverge)>, Error> {
    let phases: BTreeSet<u32> = plan.base.roles.iter().map(|r| r.data.phase).collect();
    let check = plan.base.options.check;
    let pipelined = !check && settled(&mut items, plan, exports);
    if pipelined {
        // Nothing a later phase waits for changes: each host runs its phases back to back.
        let (p, snapshot) = (plan.clone(), Arc::new(Value::Object(exports.clone())));
        let all: Vec<u32> = phases.iter().copied().collect();
        engine.progress.stage("converging");
        items = engine.each(items, move |node, hc| {
            for &phase in &all {
                hc.run_phase(node, &p, phase, false, &snapshot);
            }
        });
    }
    for phase in phases.into_iter().filter(|_| !pipelined) {
        let snapshot = Arc::new(Value::Object(exports.clone()));
        let p = plan.clone();
        let phase_exports = crate::roles::exports(
            &plan.base.roles,
            Some(phase),
            &context::build(
                &plan.base.config,
                &plan.inventory,
                &plan.inventory.master,
                &SystemFacts::default(),
                &plan.base.values,
            ),
        )?;
        engine.progress.stage(&format!("phase {phase}"));
        items = engine.each(items, move |node, hc| {
            let before = hc.changed;
            hc.run_phase(node, &p, phase, check, &snapshot);
            if node.host.role != NodeRole::Master || !node.alive() {
                return;
            }
            // Unchanged on the master this phase: the probe's values still hold.
            let stale: Vec<(String, String)> = phase_exports
                .iter()
                .filter(|(_, path)| hc.changed > before || hc.probed(path).is_none())
                .cloned()
                .collect();
            hc.exported = read_exports(node, &stale);
        });
        for (_, hc) in &items {
            exports.extend(
                hc.exported
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
            );
        }
    }
    Ok(items)
}

/// For a Spark cluster (not `--check`): the registration check, and the stop of workers the
/// inventory dropped.
pub(super) fn verify(
    engine: &Engine,
    items: Vec<(Node, HostConverge)>,
    plan: &ConvergePlan,
) -> (Vec<(Node, HostConverge)>, Vec<String>) {
    if plan.status_probe.is_some() && !plan.base.options.check {
        let (items, notes, _registered) = crate::spark::cluster::verify(engine, items, plan);
        (items, notes)
    } else {
        (items, Vec::new())
    }
}

impl ConvergeOutcome {
    /// Recap lines in inventory order (master first), for the report.
    pub fn recap(&self) -> Vec<crate::report::HostRecap> {
        let mut hosts: Vec<&HostResult> = self.hosts.iter().collect();
        hosts.sort_by_key(|h| (h.node.host.role, h.node.host.name.clone()));
        hosts
            .into_iter()
            .map(|h| {
                let (failed, unreachable) = match h.node.error() {
                    None => (0, 0),
                    Some(_) if h.node.unreachable() => (0, 1),
                    Some(_) => (1, 0),
                };
                crate::report::HostRecap {
                    name: h.node.host.name.clone(),
                    address: h.node.host.address.clone(),
                    role: h.node.host.role.as_str().to_string(),
                    ok: h.converge.ok,
                    changed: h.converge.changed,
                    failed,
                    unreachable,
                    skipped: h.converge.skipped,
                    handshakes: h.node.handshakes,
                    commands: h.node.commands,
                    error: h.node.error().map(str::to_string),
                    steps: h.converge.steps.clone(),
                }
            })
            .collect()
    }

    pub fn finish_bars(&self) {
        for h in &self.hosts {
            h.node.finish_bar();
        }
    }
}
