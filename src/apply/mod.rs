//! Executing a converge: every selected host is connected and planned in parallel, then the
//! roles' phases run one after another across hosts (so the master's daemon is up before any
//! worker's starts). A host that fails or cannot be reached stops only itself.

mod context;
mod host;
mod limits;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::inventory::{Inventory, NodeRole};
use crate::plan::PlanOptions;
use crate::report::{HostRecap, Progress};
use crate::roles::{EvalContext, Role};
use crate::transport::KnownHosts;

pub use host::{HostRun, HostState};
pub use limits::plan_concurrency;

/// Everything a run needs, loaded and validated before any connection.
pub struct Prepared {
    pub config: Config,
    pub inventory: Inventory,
    pub roles: Vec<Role>,
    pub eval: EvalContext,
    pub options: PlanOptions,
    /// Values sparkboot computed for the roles (merged into every host's template context).
    pub extra: Value,
    pub diff: bool,
}

pub struct Settings {
    pub check: bool,
    pub forks: usize,
    pub max_handshakes: usize,
    /// Sessions stay open across phases unless there are too many hosts for the fd limit.
    pub keep_sessions: bool,
}

/// Runs `work` on every live host, at most `forks` at once, connecting first when needed
/// (at most `max_handshakes` handshakes at once, because sshd's MaxStartups drops floods).
pub async fn for_each_host<F>(
    runs: Vec<HostRun>,
    prep: &Arc<Prepared>,
    known: &Arc<KnownHosts>,
    settings: &Settings,
    work: F,
) -> Vec<HostRun>
where
    F: Fn(&mut HostRun, &Prepared) + Send + Sync + 'static,
{
    let forks = Arc::new(Semaphore::new(settings.forks));
    let handshakes = Arc::new(Semaphore::new(settings.max_handshakes));
    let work = Arc::new(work);
    let keep = settings.keep_sessions;
    let mut tasks = Vec::with_capacity(runs.len());
    for run in runs {
        let (forks, handshakes, work, prep, known) = (
            forks.clone(),
            handshakes.clone(),
            work.clone(),
            prep.clone(),
            known.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if !run.alive() {
                return run;
            }
            let Ok(_slot) = forks.acquire_owned().await else {
                return run;
            };
            let mut run = run;
            if run.conn.is_none() {
                let Ok(_hs) = handshakes.acquire_owned().await else {
                    return run;
                };
                let (p, k) = (prep.clone(), known.clone());
                run = match tokio::task::spawn_blocking(move || {
                    run.connect(&p.config.ssh, &k);
                    run
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => rethrow(e),
                };
                if !run.alive() {
                    return run;
                }
            }
            match tokio::task::spawn_blocking(move || {
                work(&mut run, &prep);
                if !keep {
                    run.conn = None;
                }
                run
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

/// What a role exports, before its value has been read.
fn export_placeholders(roles: &[Role]) -> serde_json::Map<String, Value> {
    roles
        .iter()
        .flat_map(|r| r.data.exports.iter())
        .map(|e| {
            (
                e.name.clone(),
                Value::String(format!("(read from the master: {})", e.path)),
            )
        })
        .collect()
}

/// Reads the exports of roles in `phase` (all phases with `None`) on the master.
fn read_exports(run: &mut HostRun, roles: &[Role], phase: Option<u32>) {
    if run.host.role != NodeRole::Master || !run.alive() {
        return;
    }
    for export in roles
        .iter()
        .filter(|r| phase.is_none_or(|p| p == r.data.phase))
        .flat_map(|r| r.data.exports.iter())
    {
        // Read as whoever controls the file's directories (the key lives in spark's home).
        let script = crate::shell::ops::read_export(&export.path);
        if let Some(out) = run.run(&script, None) {
            match crate::facts::parse_content(&out.stdout) {
                Ok(Some(value)) if out.success() && !value.trim().is_empty() => {
                    run.exported
                        .insert(export.name.clone(), value.trim().to_string());
                }
                Ok(_) => {}
                Err(e) => {
                    run.state = HostState::Failed(format!(
                        "cannot read export {} from {}: {e}",
                        export.name, export.path
                    ))
                }
            }
        }
    }
}

/// Plans, then applies phase by phase. Returns every selected host's run.
pub async fn converge(
    prep: Arc<Prepared>,
    known: Arc<KnownHosts>,
    settings: Settings,
    selected: &BTreeSet<String>,
    progress: &Progress,
) -> Vec<HostRun> {
    let handlers = Arc::new(crate::roles::handler_map(&prep.roles));
    let runs: Vec<HostRun> = prep
        .inventory
        .hosts()
        .filter(|h| selected.contains(&h.name))
        .map(|h| HostRun::new(h.clone(), handlers.clone(), progress.host(&h.name)))
        .collect();
    let mut exports = export_placeholders(&prep.roles);
    if !exports.is_empty() && !selected.contains(&prep.inventory.master.name) {
        // Workers need values only the master has; read them without changing the master.
        let master = HostRun::new(
            prep.inventory.master.clone(),
            handlers.clone(),
            progress.host("(master, read only)"),
        );
        let roles = prep.roles.clone();
        for run in for_each_host(vec![master], &prep, &known, &settings, move |run, _| {
            read_exports(run, &roles, None)
        })
        .await
        {
            exports.extend(run.exported.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
    }
    let snapshot = Arc::new(Value::Object(exports.clone()));
    let mut runs = for_each_host(runs, &prep, &known, &settings, move |run, prep| {
        run.probe(prep, &snapshot)
    })
    .await;
    let phases: BTreeSet<u32> = prep.roles.iter().map(|r| r.data.phase).collect();
    for phase in phases {
        let check = settings.check;
        let snapshot = Arc::new(Value::Object(exports.clone()));
        let roles = prep.roles.clone();
        runs = for_each_host(runs, &prep, &known, &settings, move |run, prep| {
            run.run_phase(prep, phase, check, &snapshot);
            read_exports(run, &roles, Some(phase));
        })
        .await;
        for run in &runs {
            exports.extend(
                run.exported
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
            );
        }
    }
    runs
}

/// Marks each run's progress line finished.
pub fn finish_bars(runs: &[HostRun]) {
    for run in runs {
        run.bar.finish(match &run.state {
            HostState::Running => "done",
            HostState::Failed(_) => "FAILED",
            HostState::Unreachable(_) => "UNREACHABLE",
        });
    }
}

/// Turns finished runs into recap lines, keeping inventory order.
pub fn recap(runs: Vec<HostRun>) -> Vec<HostRecap> {
    let mut by_name: BTreeMap<String, HostRun> =
        runs.into_iter().map(|r| (r.host.name.clone(), r)).collect();
    let mut order: Vec<String> = by_name.keys().cloned().collect();
    order.sort_by_key(|n| (by_name[n].host.role, n.clone()));
    order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .map(|r| {
            let (failed, unreachable, error) = match r.state {
                HostState::Running => (0, 0, None),
                HostState::Failed(e) => (1, 0, Some(e)),
                HostState::Unreachable(e) => (0, 1, Some(e)),
            };
            HostRecap {
                name: r.host.name.clone(),
                address: r.host.address.clone(),
                role: r.host.role.as_str().to_string(),
                ok: r.ok,
                changed: r.changed,
                failed,
                unreachable,
                skipped: r.skipped,
                error,
                steps: r.steps,
            }
        })
        .collect()
}
