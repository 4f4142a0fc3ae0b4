//! `sparkboot status`: for each node, reachable, installed Spark and daemon running; then the
//! master's ALIVE workers against the inventory, with any drift spelled out.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde::Serialize;

use crate::apply::HostState;
use crate::cli::StatusArgs;
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::inventory::NodeRole;
use crate::shell::ops;
use crate::spark::registration::alive_workers;

use super::Target;

#[derive(Debug, Serialize)]
struct NodeStatus {
    name: String,
    address: String,
    role: String,
    reachable: bool,
    spark_version: Option<String>,
    daemon_running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Drift {
    alive_workers: Vec<String>,
    /// In the inventory but not ALIVE on the master.
    missing: Vec<String>,
    /// ALIVE on the master but not in the inventory (a scale-in not yet converged).
    unexpected: Vec<String>,
}

fn daemon(role: NodeRole) -> (&'static str, &'static str) {
    match role {
        NodeRole::Master => (
            "/var/lib/spark/run/spark-spark-org.apache.spark.deploy.master.Master-1.pid",
            "org.apache.spark.deploy.master.Master",
        ),
        NodeRole::Worker => (
            "/var/lib/spark/run/spark-spark-org.apache.spark.deploy.worker.Worker-1.pid",
            "org.apache.spark.deploy.worker.Worker",
        ),
    }
}

pub fn run(args: &StatusArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let webui = target.config.spark.master_webui_port;
    let workers: BTreeSet<String> = target
        .inventory
        .workers
        .iter()
        .map(|w| w.address.clone())
        .collect();
    let inventory_workers = target.inventory.workers.len();
    let (runs, _) = target.each_host(&selected, move |run, _| {
        let (pidfile, class) = daemon(run.host.role);
        if let Some(out) = run.run(&ops::spark_status(pidfile, class), None) {
            run.output = Some(out);
        }
        if run.host.role == NodeRole::Master && run.alive() {
            let script = crate::spark::cluster::status_script(&run.host.address, webui);
            if let Some(out) = run.run(&script, None) {
                run.registered = alive_workers(&out.stdout).ok();
            }
        }
    })?;
    let mut nodes = Vec::new();
    let mut registered = None;
    for r in &runs {
        let text = r
            .output
            .as_ref()
            .map(|o| o.stdout.clone())
            .unwrap_or_default();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        let error = match &r.state {
            HostState::Running => None,
            HostState::Failed(e) | HostState::Unreachable(e) => Some(e.clone()),
        };
        if r.host.role == NodeRole::Master {
            registered = r.registered.clone();
        }
        nodes.push(NodeStatus {
            name: r.host.name.clone(),
            address: r.host.address.clone(),
            role: r.host.role.as_str().into(),
            reachable: error.is_none(),
            spark_version: field("version").filter(|v| !v.is_empty()),
            daemon_running: field("running").as_deref() == Some("yes"),
            error,
        });
    }
    let drift = registered.map(|alive: BTreeSet<String>| Drift {
        missing: workers.difference(&alive).cloned().collect(),
        unexpected: alive.difference(&workers).cloned().collect(),
        alive_workers: alive.into_iter().collect(),
    });
    let healthy = nodes.iter().all(|n| n.reachable && n.daemon_running)
        && drift
            .as_ref()
            .is_some_and(|d| d.missing.is_empty() && d.unexpected.is_empty());
    if args.common.json {
        let doc =
            serde_json::json!({"schema": 1, "healthy": healthy, "nodes": nodes, "master": drift});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "{:<16} {:<7} {:<16} {:<10} {:<32} daemon",
            "node", "role", "address", "reachable", "spark"
        );
        for n in &nodes {
            println!(
                "{:<16} {:<7} {:<16} {:<10} {:<32} {}",
                n.name,
                n.role,
                n.address,
                if n.reachable { "yes" } else { "NO" },
                n.spark_version.as_deref().unwrap_or("-"),
                if n.daemon_running {
                    "running"
                } else {
                    "STOPPED"
                }
            );
        }
        match &drift {
            Some(d) => {
                println!(
                    "\nmaster: {} ALIVE worker(s) of {} in the inventory",
                    d.alive_workers.len(),
                    inventory_workers
                );
                for m in &d.missing {
                    println!("  DRIFT: {m} is in the inventory but not ALIVE on the master; run `sparkboot converge`");
                }
                for u in &d.unexpected {
                    println!("  DRIFT: {u} is ALIVE on the master but not in the inventory; run `sparkboot converge` to stop it");
                }
            }
            None => println!("\nmaster: status page not readable (is the master running?)"),
        }
    }
    Ok(ExitCode::from(if healthy { 0 } else { EXIT_HOST_FAILED }))
}
