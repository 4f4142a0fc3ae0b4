//! `lab up` and `lab add`: the commands that create nodes.
//!
//! Both follow one rule: whatever fails, the lab afterwards is exactly what state.json says. New
//! nodes are recorded as soon as their PIDs are known (so even an interrupted command leaves
//! something `lab down` can find), and if any node of this call does not come up, every node
//! this call created is ended and dropped from the state before the error is returned.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::names::{allocate, check_name, worker_number, DEFAULT_FIRST, MASTER, WORKER_PREFIX};
use super::node::{self, NodeSpec, Started};
use super::preflight::{self, Tools};
use super::state::{self, LabState, NodeState, Role};
use super::{http, spark, sshd};
use super::{LabError, LabLock, LabPaths};

/// Starts every node in `specs` in parallel and waits until each accepts SSH. On any failure all
/// of them are ended, removed from `state`, and the first error is returned. On success the
/// started nodes are returned so that a later failure in the same command can still undo them.
fn create_nodes(
    paths: &LabPaths,
    tools: &Tools,
    pubkey: &str,
    specs: &[NodeSpec],
    state: &mut LabState,
) -> Result<Vec<Started>, LabError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let image = state.systemd.clone();
    let image = image.as_ref();
    if image.is_some() {
        let nodes = state.nodes.len() + specs.len();
        if let Some((old, new)) = preflight::ensure_inotify_instances(nodes)? {
            eprintln!(
                "lab: raised fs.inotify.max_user_instances from {old} to {new} for {nodes} systemd nodes (each booted systemd holds 7)"
            );
        }
    }
    let results: Vec<Result<Started, LabError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || node::spawn(paths, tools, spec, pubkey, image)))
            .collect();
        handles.into_iter().map(join).collect()
    });
    let mut started: Vec<Started> = Vec::new();
    let mut failure = None;
    for (spec, result) in specs.iter().zip(results) {
        match result {
            Ok(s) => started.push(s),
            Err(e) => {
                let _ = node::teardown(paths, None, &spec.name);
                failure.get_or_insert(e);
            }
        }
    }
    for s in &started {
        state.upsert(s.node.clone());
    }
    state.save(paths)?;
    if failure.is_none() {
        // A systemd node boots a whole init (journald, tmpfiles, sshd) before it answers: many
        // booting at once on two cores share them, so each one adds more to the wait.
        let per_node = if image.is_some() { 3 } else { 1 };
        let secs = 30 + per_node * specs.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let ready: Vec<Result<(), LabError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = started
                .iter()
                .map(|s| scope.spawn(move || node::wait_ready(paths, &s.node, deadline, secs)))
                .collect();
            handles.into_iter().map(join).collect()
        });
        failure = ready.into_iter().find_map(Result::err);
    }
    match failure {
        None => Ok(started),
        Some(error) => {
            rollback(paths, state, &mut started);
            Err(error)
        }
    }
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, LabError>>) -> Result<T, LabError> {
    handle.join().unwrap_or_else(|_| {
        Err(LabError::NodeStart {
            name: "(unknown)".into(),
            message: "a node-starting thread panicked; this is a sparkboot bug".into(),
        })
    })
}

/// Ends the nodes this call started and forgets them, leaving the lab as it was before.
fn rollback(paths: &LabPaths, state: &mut LabState, started: &mut [Started]) {
    if let Err(e) = node::teardown_started(paths, started) {
        eprintln!("lab: while undoing the nodes of this command: {e}");
    }
    for s in started.iter() {
        state.remove(&s.node.name);
    }
    if let Err(e) = state.save(paths) {
        eprintln!("lab: while undoing: {e}");
    }
}

/// Ensures the Spark tarball is built and served, returning the server record.
fn ensure_spark(
    paths: &LabPaths,
    state: &LabState,
    built: Result<PathBuf, LabError>,
    python: &std::path::Path,
    version: &str,
) -> Result<state::SparkServer, LabError> {
    let directory = built?;
    if let Some(server) = state
        .spark
        .as_ref()
        .filter(|s| http::server_alive(s) && s.directory == directory)
    {
        // The server serves the whole cache dir: another version needs no restart.
        let mut server = server.clone();
        server.url = http::tarball_url(server.address, server.port, version);
        return Ok(server);
    }
    if let Some(old) = &state.spark {
        http::stop_server(old)?;
    }
    http::start_server(paths, python, state.first_address, &directory, version)
}

/// What kind of nodes `lab up` makes: plain (lab-init as PID 1, the host's /usr) or systemd.
pub struct Flavour {
    pub systemd: bool,
    pub rootfs: Option<PathBuf>,
}

fn flavour_name(systemd: bool) -> &'static str {
    if systemd {
        "with --systemd"
    } else {
        "without --systemd"
    }
}

/// `lab up --workers N`: a master and workers 1..=N; healthy nodes are kept, dead ones recreated.
pub fn up(
    paths: &LabPaths,
    workers: usize,
    with_spark: bool,
    first: Option<&str>,
    flavour: &Flavour,
    spark_version: &str,
) -> Result<ExitCode, LabError> {
    let started_at = Instant::now();
    if with_spark {
        spark::check_version(spark_version)?;
    }
    let requested = first.map(preflight::parse_loopback).transpose()?;
    let tools = preflight::require_node_tools()?;
    let image = if flavour.systemd {
        Some(preflight::require_systemd_image(flavour.rootfs.as_deref())?)
    } else {
        None
    };
    preflight::check_dir_location(&paths.dir)?;
    let python = if with_spark {
        Some(preflight::require_python()?)
    } else {
        None
    };
    let _lock = LabLock::acquire(paths)?;
    let paths = &LabPaths::new(&paths.dir)?;
    preflight::check_dir_location(&paths.dir)?;
    let mut state = match LabState::load(paths)? {
        Some(state) => state,
        None => LabState::new(requested.unwrap_or(DEFAULT_FIRST)),
    };
    if state.nodes.is_empty() {
        state.first_address = requested.unwrap_or(state.first_address);
        state.systemd = image;
    } else if let Some(r) = requested.filter(|r| *r != state.first_address) {
        return Err(LabError::FirstAddressMismatch {
            existing: state.first_address.to_string(),
            requested: r.to_string(),
        });
    } else if state.systemd.is_some() != flavour.systemd {
        return Err(LabError::FlavourMismatch {
            existing: flavour_name(state.systemd.is_some()),
            requested: flavour_name(flavour.systemd),
        });
    }

    let mut desired = vec![(MASTER.to_string(), Role::Master, 0u32)];
    desired.extend((1..=workers as u32).map(|k| (format!("{WORKER_PREFIX}{k}"), Role::Worker, k)));
    let (mut to_create, mut kept, mut revived) = (Vec::new(), 0usize, Vec::new());
    let mut stale: Vec<(Option<NodeState>, String)> = Vec::new();
    for (name, role, offset) in desired {
        match state.node(&name).cloned() {
            Some(existing) if node::init_alive(paths, &existing) => {
                kept += 1;
                if !node::sshd_listening(existing.address) {
                    revived.push(existing);
                }
            }
            Some(existing) => {
                stale.push((Some(existing.clone()), name.clone()));
                to_create.push(NodeSpec {
                    name,
                    address: existing.address,
                    role,
                });
            }
            None => {
                let address = allocate(&state, &to_create, offset)?;
                to_create.push(NodeSpec {
                    name,
                    address,
                    role,
                });
            }
        }
    }
    // Dead nodes are recreated; a dir without a state entry is left by an interrupted command
    // and its processes may still hold the address: both are this lab's to end first.
    for spec in &to_create {
        if paths.node_dir(&spec.name).exists() && state.node(&spec.name).is_none() {
            stale.push((None, spec.name.clone()));
        }
    }
    node::teardown_many(paths, &stale)?;
    for spec in &to_create {
        preflight::check_port_free(spec.address, 22)?;
    }
    let pubkey = state::ensure_key(paths)?;

    // Build the Spark tarball (slow the first time) while the nodes come up.
    let (created, built) = std::thread::scope(|scope| {
        let build = python
            .as_ref()
            .map(|py| scope.spawn(move || spark::ensure_tarball(py, spark_version)));
        let created = create_nodes(paths, &tools, &pubkey, &to_create, &mut state);
        let built = build.map(join);
        (created, built)
    });
    let mut started = created?;
    if let (Some(built), Some(python)) = (built, python.as_ref()) {
        match ensure_spark(paths, &state, built, python, spark_version) {
            Ok(server) => state.spark = Some(server),
            Err(e) => {
                rollback(paths, &mut state, &mut started);
                return Err(e);
            }
        }
    }
    for node in &revived {
        sshd::start_sshd(paths, &tools.nsenter, node)?;
        println!(
            "lab: {} was up but its sshd was stopped; started it again",
            node.name
        );
    }
    state.save(paths)?;
    state.write_inventory(paths)?;
    if let Some(server) = &state.spark {
        let sha512 = super::spark::cached_sha512(spark_version)?;
        state::write_sample_config(
            paths,
            &http::url_template(server),
            &server.url,
            spark_version,
            &sha512,
        )?;
    }
    for extra in state
        .nodes
        .iter()
        .filter(|n| worker_number(&n.name).is_some_and(|k| k as usize > workers))
    {
        println!(
            "lab: kept {} (beyond --workers {workers}); remove it with `sparkboot lab remove {}`",
            extra.name, extra.name
        );
    }
    summary(paths, &state, to_create.len(), kept, started_at);
    Ok(ExitCode::SUCCESS)
}

/// `lab add [--address A] [--name N]`: one more worker.
pub fn add(
    paths: &LabPaths,
    address: Option<&str>,
    name: Option<&str>,
) -> Result<ExitCode, LabError> {
    let started_at = Instant::now();
    let address = address.map(preflight::parse_loopback).transpose()?;
    if let Some(name) = name {
        check_name(name)?;
    }
    let tools = preflight::require_node_tools()?;
    if !paths.state().is_file() {
        return Err(LabError::NoLab {
            dir: paths.dir.clone(),
        });
    }
    let _lock = LabLock::acquire(paths)?;
    let mut state = LabState::load(paths)?.ok_or_else(|| LabError::NoLab {
        dir: paths.dir.clone(),
    })?;
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            let next = state
                .nodes
                .iter()
                .filter_map(|n| worker_number(&n.name))
                .max()
                .unwrap_or(0)
                + 1;
            format!("{WORKER_PREFIX}{next}")
        }
    };
    if state.node(&name).is_some() {
        return Err(LabError::NameTaken { name });
    }
    let address = match address {
        Some(a) => {
            if let Some(other) = state.nodes.iter().find(|n| n.address == a) {
                return Err(LabError::AddressTaken {
                    address: a.to_string(),
                    node: other.name.clone(),
                });
            }
            a
        }
        None => allocate(&state, &[], worker_number(&name).unwrap_or(1))?,
    };
    preflight::check_port_free(address, 22)?;
    let pubkey = state::ensure_key(paths)?;
    let spec = NodeSpec {
        name: name.clone(),
        address,
        role: Role::Worker,
    };
    let _started = create_nodes(
        paths,
        &tools,
        &pubkey,
        std::slice::from_ref(&spec),
        &mut state,
    )?;
    state.write_inventory(paths)?;
    println!(
        "lab: added {name} at {address} in {:.1} s; inventory {} updated",
        started_at.elapsed().as_secs_f64(),
        paths.inventory().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn summary(paths: &LabPaths, state: &LabState, created: usize, kept: usize, started_at: Instant) {
    println!(
        "lab: {} nodes up in {:.1} s ({created} created, {kept} kept) in {}",
        state.nodes.len(),
        started_at.elapsed().as_secs_f64(),
        paths.dir.display()
    );
    let line = |n: &NodeState| {
        format!(
            "  {:<14} {:<15} {}",
            n.name,
            n.address,
            if n.role == Role::Master {
                "master"
            } else {
                "worker"
            }
        )
    };
    if state.nodes.len() <= 8 {
        state.nodes.iter().for_each(|n| println!("{}", line(n)));
    } else {
        state
            .nodes
            .iter()
            .take(3)
            .for_each(|n| println!("{}", line(n)));
        println!(
            "  ... {} more (`sparkboot lab status` lists all)",
            state.nodes.len() - 3
        );
    }
    println!("inventory: {}", paths.inventory().display());
    if let Some(server) = &state.spark {
        println!(
            "spark: {} (sample config {})",
            server.url,
            paths.sample_config().display()
        );
    }
    if let Some(master) = state.master() {
        println!(
            "log in: sparkboot ssh --inventory {} {}   (or: ssh -i {} root@{})",
            paths.inventory().display(),
            master.name,
            paths.key().display(),
            master.address
        );
    }
}
