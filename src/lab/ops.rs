//! `lab remove`, `stop`, `start`, `status` and `down`: commands on nodes that already exist.
//!
//! `down` is the one that must leave nothing behind: it ends the recorded processes and any
//! stray lab process found by command line (both by PID), the Spark server, proves that nothing
//! is mounted under the lab dir, and only then deletes the files it created there.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::node;
use super::preflight;
use super::procs;
use super::state::{remove_if_present, LabState, NodeState, Role};
use super::{http, sshd};
use super::{LabError, LabLock, LabPaths};

/// Loads the state of an existing lab, holding the lock; `NoLab` when there is none.
fn open(paths: &LabPaths) -> Result<(LabLock, LabState), LabError> {
    if !paths.state().is_file() {
        return Err(LabError::NoLab {
            dir: paths.dir.clone(),
        });
    }
    let lock = LabLock::acquire(paths)?;
    let state = LabState::load(paths)?.ok_or_else(|| LabError::NoLab {
        dir: paths.dir.clone(),
    })?;
    Ok((lock, state))
}

fn find<'a>(paths: &LabPaths, state: &'a LabState, name: &str) -> Result<&'a NodeState, LabError> {
    state.node(name).ok_or_else(|| LabError::UnknownNode {
        name: name.to_string(),
        dir: paths.dir.clone(),
    })
}

/// `lab remove NAME`: ends one worker and drops it from the state and inventory.
pub fn remove(paths: &LabPaths, name: &str) -> Result<ExitCode, LabError> {
    preflight::require_root()?;
    let (_lock, mut state) = open(paths)?;
    let node = find(paths, &state, name)?.clone();
    if node.role == Role::Master {
        return Err(LabError::RemoveMaster { name: node.name });
    }
    node::teardown(paths, Some(&node), name)?;
    state.remove(name);
    state.save(paths)?;
    state.write_inventory(paths)?;
    println!(
        "lab: removed {name} ({}); inventory {} updated",
        node.address,
        paths.inventory().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `lab stop NAME`: stops that node's sshd only (a fault to test against).
pub fn stop(paths: &LabPaths, name: &str) -> Result<ExitCode, LabError> {
    let nsenter = preflight::require_nsenter()?;
    let (_lock, state) = open(paths)?;
    let node = find(paths, &state, name)?;
    if sshd::stop_sshd(paths, &nsenter, node)? {
        println!(
            "lab: stopped sshd of {name}; {}:22 now refuses connections",
            node.address
        );
    } else {
        println!("lab: sshd of {name} was not running");
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab start NAME`: starts that node's sshd again.
pub fn start(paths: &LabPaths, name: &str) -> Result<ExitCode, LabError> {
    let nsenter = preflight::require_nsenter()?;
    let (_lock, state) = open(paths)?;
    let node = find(paths, &state, name)?;
    if sshd::start_sshd(paths, &nsenter, node)? {
        println!("lab: started sshd of {name} on {}:22", node.address);
    } else {
        println!("lab: sshd of {name} was already running");
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab status [--json]`: each node's address, whether its init runs and its sshd listens.
/// Exits 0 when every node is healthy and 2 otherwise, so scripts can wait on it.
pub fn status(paths: &LabPaths, as_json: bool) -> Result<ExitCode, LabError> {
    let state = LabState::load(paths)?.ok_or_else(|| LabError::NoLab {
        dir: paths.dir.clone(),
    })?;
    let rows: Vec<(&NodeState, bool, bool)> = state
        .nodes
        .iter()
        .map(|n| {
            let running = node::init_alive(paths, n);
            (n, running, running && node::sshd_listening(n.address))
        })
        .collect();
    let spark_running = state.spark.as_ref().is_some_and(http::server_alive);
    let healthy = rows.iter().all(|(_, running, sshd)| *running && *sshd);
    if as_json {
        let nodes: Vec<_> = rows
            .iter()
            .map(|(n, running, sshd)| {
                json!({
                    "name": n.name, "address": n.address.to_string(), "hostname": n.hostname,
                    "role": n.role, "init_pid": n.init_pid, "unshare_pid": n.unshare_pid,
                    "running": running, "sshd_listening": sshd,
                })
            })
            .collect();
        let spark = state
            .spark
            .as_ref()
            .map(|s| json!({"url": s.url, "pid": s.pid, "running": spark_running}));
        let doc = json!({
            "dir": paths.dir, "inventory": paths.inventory(), "key": paths.key(),
            "spark": spark, "nodes": nodes,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "{:<14} {:<15} {:<7} {:<16} SSHD",
            "NAME", "ADDRESS", "ROLE", "INIT"
        );
        for (n, running, sshd) in &rows {
            let role = if n.role == Role::Master {
                "master"
            } else {
                "worker"
            };
            let init = format!(
                "{} {}",
                n.init_pid,
                if *running { "running" } else { "gone" }
            );
            println!(
                "{:<14} {:<15} {role:<7} {init:<16} {}",
                n.name,
                n.address,
                if *sshd { "listening" } else { "down" }
            );
        }
        if let Some(s) = &state.spark {
            println!(
                "spark: {} ({})",
                s.url,
                if spark_running {
                    "serving"
                } else {
                    "server gone"
                }
            );
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Every live lab-init or unshare whose node dir lies under this lab's nodes/ dir.
fn stray_processes(paths: &LabPaths) -> Vec<(u32, String)> {
    let nodes = paths.nodes();
    let under = |arg: Option<&String>| arg.is_some_and(|a| Path::new(a).starts_with(&nodes));
    procs::find(|args| {
        let init = args.len() >= 3 && args[1] == "lab-init" && under(args.get(2));
        let unshare = args.first().is_some_and(|a| a.ends_with("unshare"))
            && args.iter().any(|a| a == "lab-init")
            && under(args.last());
        init || unshare
    })
    .into_iter()
    .map(|pid| (pid, "stray process of this lab".to_string()))
    .collect()
}

/// `lab down`: ends everything the lab started and removes its files.
pub fn down(paths: &LabPaths) -> Result<ExitCode, LabError> {
    preflight::require_root()?;
    if !paths.dir.exists() {
        println!("lab: no lab in {}; nothing to do", paths.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = LabLock::acquire(paths)?;
    let state = match LabState::load(paths) {
        Ok(state) => state,
        Err(LabError::BadState { path, message }) => {
            eprintln!(
                "lab: ignoring unreadable {} ({message}); looking for lab processes instead",
                path.display()
            );
            None
        }
        Err(e) => return Err(e),
    };
    let nodes = state.as_ref().map(|s| s.nodes.clone()).unwrap_or_default();
    let mut targets: Vec<(u32, String)> = Vec::new();
    for n in &nodes {
        targets.extend(node::processes_recorded(paths, n));
    }
    // A node dir without a state entry (an interrupted `lab up`): its container's processes are
    // found through its node.json and cgroup, which stray_processes cannot see.
    let unrecorded: Vec<String> = std::fs::read_dir(paths.nodes())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !nodes.iter().any(|n| &n.name == name))
        .collect();
    let strays = stray_processes(paths).into_iter().chain(
        unrecorded
            .iter()
            .flat_map(|name| node::processes(paths, None, name)),
    );
    for stray in strays {
        if !targets.iter().any(|(p, _)| *p == stray.0) {
            targets.push(stray);
        }
    }
    node::end_processes(&targets)?;
    for n in &nodes {
        node::remove_cgroup(paths, Some(n), &n.name)?;
    }
    for name in &unrecorded {
        node::remove_cgroup(paths, None, name)?;
    }
    if let Some(server) = state.as_ref().and_then(|s| s.spark.as_ref()) {
        http::stop_server(server)?;
    }

    for mount in procs::mounts_under(&paths.dir) {
        procs::unmount_lazy(&mount);
    }
    let left = procs::mounts_under(&paths.dir);
    if !left.is_empty() {
        return Err(LabError::MountsLeft {
            dir: paths.dir.clone(),
            mounts: left
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // Nothing is mounted below the dir any more, so deleting cannot reach host files.
    let nodes_dir = paths.nodes();
    match std::fs::remove_dir_all(&nodes_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LabError::io("remove", &nodes_dir, e)),
    }
    // The lab's sparkboot.toml keeps converge's state (known_hosts, the cluster secret) here.
    let converge_state = paths.dir.join("state");
    match std::fs::remove_dir_all(&converge_state) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LabError::io("remove", &converge_state, e)),
    }
    for file in [
        paths.state(),
        paths.inventory(),
        paths.sample_config(),
        paths.key(),
        paths.pubkey(),
        paths.http_log(),
        paths.lock(),
    ] {
        remove_if_present(&file)?;
    }
    if let Ok(entries) = std::fs::read_dir(&paths.dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                remove_if_present(&entry.path())?;
            }
        }
    }
    let gone = std::fs::remove_dir(&paths.dir).is_ok();
    println!(
        "lab: down; ended {} process(es) of {} node(s){}",
        targets.len(),
        nodes.len(),
        if gone {
            format!(" and removed {}", paths.dir.display())
        } else {
            format!(
                "; left {} in place because it holds files the lab did not create",
                paths.dir.display()
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}
