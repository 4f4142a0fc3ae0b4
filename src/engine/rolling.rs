//! Carries out a rolling upgrade ([`crate::spark::upgrade`] plans it) inside one converge run,
//! under its cluster lock: the first stage (the master and every host not in a batch) runs all
//! phases and its registration check like any converge; then each batch of workers runs all
//! phases, and the master checks that exactly those workers registered before the next batch
//! starts. A failed stage stops the upgrade: the later batches are not touched and keep running
//! the version they had, and the report says which they are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::converge::{run_phases, verify, ConvergePlan};
use super::host::HostConverge;
use super::node::Node;
use super::Engine;
use crate::error::Error;
use crate::facts::PathFact;
use crate::inventory::NodeRole;
use crate::spark::upgrade::{self, stages, HostVersion, UpgradePlan, UpgradeReport};

type Items = Vec<(Node, HostConverge)>;

/// The rolling plan from the probe, when running workers change version.
pub fn plan_for(items: &[(Node, HostConverge)], plan: &ConvergePlan) -> Option<UpgradePlan> {
    let spark = plan.base.values.get("spark")?;
    let home = spark.get("home")?.as_str()?;
    let target = spark.get("install_dir")?.as_str()?;
    let worker_service = spark.get("worker")?.get("service")?.as_str()?;
    let hosts: Vec<HostVersion> = items
        .iter()
        .map(|(node, hc)| {
            let facts = hc.facts.as_ref();
            HostVersion {
                name: node.host.name.clone(),
                master: node.host.role == NodeRole::Master,
                installed: facts.and_then(|f| match f.path(home) {
                    PathFact::Link { target } => Some(target.clone()),
                    _ => None,
                }),
                worker_running: facts
                    .and_then(|f| f.services.get(worker_service))
                    .is_some_and(|s| s.running),
            }
        })
        .collect();
    upgrade::plan(&hosts, target, plan.base.config.spark.upgrade_batch)
}

/// Runs the stages in order; see the module doc.
pub fn run(
    engine: &Engine,
    items: Items,
    plan: &Arc<ConvergePlan>,
    exports: &mut serde_json::Map<String, Value>,
    up: UpgradePlan,
) -> Result<(Items, Vec<String>, UpgradeReport), Error> {
    let mut report = UpgradeReport::planned(up.clone());
    report.applied = true;
    let master = plan.inventory.master.name.clone();
    let pause = Duration::from_secs(plan.base.config.spark.upgrade_pause_secs);
    let total = report.stages.len();
    let mut pending = items;
    let mut done: Items = Vec::new();
    let mut notes = up.describe();
    let mut stopped = false;
    for (i, (_, names)) in stages(&up).enumerate() {
        if stopped {
            report.stages[i].status = "not run";
            continue;
        }
        let (stage, rest): (Items, Items) = pending
            .into_iter()
            .partition(|(n, _)| names.contains(&n.host.name));
        pending = rest;
        let started = Instant::now();
        engine.progress.stage(&format!(
            "upgrade stage {}/{total}: {}",
            i + 1,
            names.join(", ")
        ));
        let mut stage = run_phases(engine, stage, plan, exports)?;
        // The registration check needs the master; after the first stage it waits for this
        // batch's workers (the master's own run is over, so it is not run again).
        let borrowed = (i > 0)
            .then(|| done.iter().position(|(n, _)| n.host.name == master))
            .flatten()
            .map(|at| done.remove(at));
        stage.extend(borrowed);
        let (stage, stage_notes) = verify(engine, stage, plan);
        notes.extend(stage_notes);
        let failed: Vec<String> = stage
            .iter()
            .filter(|(n, _)| !n.alive())
            .map(|(n, _)| n.host.name.clone())
            .collect();
        done.extend(stage);
        report.stages[i].seconds = started.elapsed().as_secs_f64();
        if failed.is_empty() {
            report.stages[i].status = "done";
            if pause > Duration::ZERO && i + 1 < total {
                engine.progress.stage(&format!(
                    "waiting {} s before the next batch ([spark] upgrade_pause_secs)",
                    pause.as_secs()
                ));
                std::thread::sleep(pause);
            }
            continue;
        }
        report.stages[i].status = "failed";
        stopped = true;
        let untouched: Vec<String> = stages(&up)
            .skip(i + 1)
            .flat_map(|(_, hosts)| hosts.clone())
            .collect();
        notes.push(format!(
            "rolling upgrade stopped at stage {} of {total}: {} failed{}; fix the cause and run converge again to go on",
            i + 1,
            failed.join(", "),
            if untouched.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} still run Spark {} and were not touched",
                    untouched.join(", "),
                    up.from.join(", ")
                )
            }
        ));
    }
    report.completed = !stopped;
    done.extend(pending);
    Ok((done, notes, report))
}
