//! `sparkboot status`: for each node, reachable, installed Spark and daemon running; then the
//! master's ALIVE workers against the inventory, with any drift spelled out.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::inventory::NodeRole;
use crate::roles::Library;
use crate::shell;
use crate::spark::layout::Layout;
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
    /// The master only, with `[spark] history_server` on: whether the history server runs
    /// (reported, not counted in `healthy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    history_running: Option<bool>,
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

/// What the probe of one node found.
#[derive(Debug, Default)]
struct Probe {
    version: Option<String>,
    running: bool,
    /// On the master, when the history server is configured: whether it runs.
    history: Option<bool>,
    /// On the master: the workers its status page lists as ALIVE.
    alive: Option<BTreeSet<String>>,
}

pub fn run(args: &StatusArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let webui = target.config.spark.master_webui_port;
    let history = target.config.spark.history_server;
    // The daemons, paths and names come from the roles' layout, as converge used them.
    let layout = Layout::load(&Library {
        roles_dir: target.config.roles_dir.clone(),
        templates_dir: target.config.templates_dir.clone(),
    })?;
    let workers: BTreeSet<String> = target
        .inventory
        .workers
        .iter()
        .map(|w| w.address.clone())
        .collect();
    let inventory_workers = target.inventory.workers.len();
    let engine = target.engine(&selected, false)?;
    let items = engine
        .nodes(&selected)
        .into_iter()
        .map(|n| (n, Probe::default()))
        .collect();
    let runs = engine.each(items, move |node, probe| {
        let daemon = match node.host.role {
            NodeRole::Master => layout.daemon(&layout.master),
            NodeRole::Worker => layout.daemon(&layout.worker),
        };
        let mut script = shell::spark::node_status(&layout, &daemon);
        let with_history = history && node.host.role == NodeRole::Master;
        if with_history {
            script.push_str(&shell::spark::history_status(&layout));
        }
        let Some(out) = node.run(&script, None) else {
            return;
        };
        let field = |k: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        probe.version = field("version").filter(|v| !v.is_empty());
        probe.running = field("running").as_deref() == Some("yes");
        if with_history {
            probe.history = Some(field("history").as_deref() == Some("yes"));
        }
        if node.host.role == NodeRole::Master {
            let script = shell::spark::status_page(&node.host.address, webui);
            if let Some(out) = node.run(&script, None) {
                probe.alive = alive_workers(&out.stdout).ok();
            }
        }
    });
    let mut nodes = Vec::new();
    let mut registered = None;
    for (node, probe) in runs {
        let error = node.error().map(str::to_string);
        if node.host.role == NodeRole::Master {
            registered = probe.alive.clone();
        }
        nodes.push(NodeStatus {
            name: node.host.name.clone(),
            address: node.host.address.clone(),
            role: node.host.role.as_str().into(),
            reachable: error.is_none(),
            spark_version: probe.version,
            daemon_running: probe.running,
            history_running: probe.history,
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
        for n in &nodes {
            if let Some(h) = n.history_running {
                println!(
                    "\nhistory server on {}: {}",
                    n.name,
                    if h { "running" } else { "STOPPED" }
                );
            }
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
