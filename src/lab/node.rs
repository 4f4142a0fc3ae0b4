//! One lab node seen from the host: prepare its dir, start it under `unshare`, wait for its sshd,
//! stop or start that sshd, check its health, and end it.
//!
//! A node is started detached (own session, console to `nodes/NAME/console.log`) so that it
//! outlives the `lab up` that created it; it is found again later through the PIDs in state.json,
//! each checked against its command line before any signal is sent.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::init::{NodeConfig, CONFIG_FILE, FRESH, OVERLAYS, READY_FILE, SSHD_LOG};
use super::preflight::{Tools, SYSTEM_PATH};
use super::state::{NodeState, Role, SystemdImage};
use super::{boot, cgroup, procs};
use super::{LabError, LabPaths};

/// What to create: a name, an address and a role (the hostname is the name).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub address: Ipv4Addr,
    pub role: Role,
}

/// A node started by this process; `child` is the unshare process, ours to reap on failure.
pub struct Started {
    pub node: NodeState,
    pub child: Child,
}

pub fn console(paths: &LabPaths, name: &str) -> PathBuf {
    paths.node_dir(name).join("console.log")
}

/// sshd's log as the host sees it: the new file lands in the node's /var overlay upper dir.
pub fn sshd_log(paths: &LabPaths, name: &str) -> PathBuf {
    let relative = SSHD_LOG.trim_start_matches("/var/");
    paths.node_dir(name).join("fs/var.upper").join(relative)
}

/// Creates a fresh node dir: overlay upper/work dirs, fresh root/home/tmp (for the systemd
/// flavour: the root overlay's dirs), node.json, console.
fn prepare(
    paths: &LabPaths,
    spec: &NodeSpec,
    pubkey: &str,
    image: Option<&SystemdImage>,
) -> Result<PathBuf, LabError> {
    let dir = paths.node_dir(&spec.name);
    if dir.exists() {
        // Left by an interrupted command: end any stray process still using it first.
        teardown(paths, None, &spec.name)?;
    }
    let systemd_dirs = [boot::UPPER, boot::WORK, boot::ROOT_DIR].map(|d| (d, 0o755));
    let (overlays, fresh): (&[&str], &[(&str, u32)]) = if image.is_some() {
        (&[], &systemd_dirs)
    } else {
        (&OVERLAYS, &FRESH)
    };
    for name in overlays {
        for suffix in ["upper", "work"] {
            let sub = dir.join("fs").join(format!("{name}.{suffix}"));
            std::fs::create_dir_all(&sub).map_err(|e| LabError::io("create", &sub, e))?;
        }
    }
    for &(name, mode) in fresh {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| LabError::io("create", &sub, e))?;
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(mode))
            .map_err(|e| LabError::io("set the mode of", &sub, e))?;
    }
    let config = NodeConfig {
        name: spec.name.clone(),
        hostname: spec.name.clone(),
        address: spec.address,
        authorized_key: pubkey.to_string(),
        systemd: image.cloned(),
    };
    let text = serde_json::to_string_pretty(&config).map_err(|e| LabError::NodeStart {
        name: spec.name.clone(),
        message: e.to_string(),
    })?;
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, text).map_err(|e| LabError::io("write", &path, e))?;
    Ok(dir)
}

fn is_init_of(dir: &str) -> impl Fn(&[String]) -> bool + '_ {
    move |args| args.len() >= 3 && args[1] == "lab-init" && args[2] == dir
}

fn is_unshare_of(dir: &str) -> impl Fn(&[String]) -> bool + '_ {
    move |args| {
        args.first().is_some_and(|a| a.ends_with("unshare"))
            && args.last().is_some_and(|a| a == dir)
    }
}

/// Prepares the dir and starts `unshare ... sparkboot lab-init DIR`; returns once the init's
/// host PID is known (not yet ready: see [`wait_ready`]). A systemd-flavour node gets only a
/// private mount namespace: nspawn makes the rest.
pub fn spawn(
    paths: &LabPaths,
    tools: &Tools,
    spec: &NodeSpec,
    pubkey: &str,
    image: Option<&SystemdImage>,
) -> Result<Started, LabError> {
    let dir = prepare(paths, spec, pubkey, image)?;
    let exe = std::env::current_exe()
        .map_err(|e| LabError::io("find the sparkboot binary", Path::new("/proc/self/exe"), e))?;
    let console_path = console(paths, &spec.name);
    let console =
        File::create(&console_path).map_err(|e| LabError::io("create", &console_path, e))?;
    let console_err = console
        .try_clone()
        .map_err(|e| LabError::io("open", &console_path, e))?;
    let mut command = Command::new(&tools.unshare);
    if image.is_some() {
        command.args(["--mount", "--fork", "--propagation", "private", "--"]);
    } else {
        command.args([
            "--mount",
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--",
        ]);
    }
    command
        .arg(&exe)
        .arg("lab-init")
        .arg(&dir)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", "/root")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err);
    // SAFETY: setsid is async-signal-safe; it detaches the node from our terminal and session so
    // that a Ctrl-C on `lab up` does not end the nodes it created.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| LabError::io("start unshare for", &dir, e))?;
    let unshare_pid = child.id();
    let mut init_pid = None;
    procs::wait_until(Duration::from_secs(10), || {
        init_pid = procs::children(unshare_pid).first().copied();
        init_pid.is_some() || !procs::alive(unshare_pid)
    });
    let Some(init_pid) = init_pid else {
        procs::signal(unshare_pid, libc::SIGKILL);
        let _ = child.wait();
        let console_tail = tail(&console_path, 4);
        let _ = remove_node_dir(paths, &spec.name);
        return Err(LabError::NodeStart {
            name: spec.name.clone(),
            message: format!("its unshare/init exited at once, so it was removed again; its console log ended with: {console_tail}"),
        });
    };
    let node = NodeState {
        name: spec.name.clone(),
        address: spec.address,
        hostname: spec.name.clone(),
        role: spec.role,
        init_pid,
        unshare_pid,
        systemd: image.is_some(),
    };
    Ok(Started { node, child })
}

/// The last lines of a log file, joined into one line for an error sentence.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = all[all.len().saturating_sub(lines)..].join(" | ");
    if tail.is_empty() {
        "(nothing)".into()
    } else {
        tail
    }
}

/// True when something accepts TCP on the node's address, port 22 (loopback only).
pub fn port_open(address: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((address, 22)), Duration::from_millis(300)).is_ok()
}

/// True when an SSH server answers on the node's address, port 22: it must send its `SSH-`
/// banner, so another program that grabbed the port in a race is not taken for the node's sshd.
pub fn sshd_listening(address: Ipv4Addr) -> bool {
    let addr = SocketAddr::from((address, 22));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

/// True when the node's init still runs (and is still our init, not a recycled PID).
pub fn init_alive(paths: &LabPaths, node: &NodeState) -> bool {
    let dir = paths.node_dir(&node.name);
    let dir = dir.to_string_lossy();
    procs::runs(node.init_pid, is_init_of(&dir))
}

/// Waits until the node's sshd accepts TCP, failing early if its init dies.
pub fn wait_ready(
    paths: &LabPaths,
    node: &NodeState,
    deadline: Instant,
    secs: u64,
) -> Result<(), LabError> {
    let dir = paths.node_dir(&node.name);
    let dir_text = dir.to_string_lossy();
    let marker = dir.join(READY_FILE);
    // A failure must be seen on several polls in a row: /proc reads can race with the init's
    // exec (its cmdline is briefly unreadable) and must not fail a healthy node.
    let mut strikes = 0;
    loop {
        if sshd_listening(node.address) {
            return Ok(());
        }
        // Right after the fork the init has not exec'd lab-init yet and still shows unshare's
        // command line, so accept either while the node is starting.
        let init_gone = !procs::alive(node.init_pid)
            || procs::cmdline(node.init_pid)
                .is_some_and(|a| !is_init_of(&dir_text)(&a) && !is_unshare_of(&dir_text)(&a));
        // Once lab-init has started sshd, the daemon is the init's only child; if it is gone
        // (it could not bind, say), waiting longer cannot help.
        let sshd_gone = marker.exists() && procs::children(node.init_pid).is_empty();
        strikes = if init_gone || sshd_gone {
            strikes + 1
        } else {
            0
        };
        let reason = if strikes >= 4 && init_gone {
            Some("its init exited".to_string())
        } else if strikes >= 4 {
            Some("its sshd exited".to_string())
        } else if Instant::now() >= deadline {
            Some(format!("nothing answered within {secs} s"))
        } else {
            None
        };
        if let Some(reason) = reason {
            let mut tail = tail(&console(paths, &node.name), 6);
            let log = sshd_log(paths, &node.name);
            if log.exists() {
                tail = format!("{tail} (sshd log: {})", self::tail(&log, 2));
            }
            return Err(LabError::NodeNotReady {
                name: node.name.clone(),
                address: node.address.to_string(),
                reason,
                tail,
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Host PID of a systemd-flavour node's systemd (PID 1 of its container): the child of
/// systemd-nspawn, itself the only child of the node's lab-init.
pub fn container_init(node: &NodeState) -> Option<u32> {
    let nspawn = procs::children(node.init_pid).first().copied()?;
    procs::children(nspawn).first().copied()
}

/// The address a node dir was made for (its node.json), for a node no longer in state.json.
fn recorded_address(paths: &LabPaths, name: &str) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(paths.node_dir(name).join(CONFIG_FILE)).ok()?;
    serde_json::from_str::<NodeConfig>(&text)
        .ok()
        .map(|c| c.address)
}

/// Host PIDs of a recorded node's init and unshare, if they still run what the lab started.
pub fn processes_recorded(paths: &LabPaths, node: &NodeState) -> Vec<(u32, String)> {
    let dir = paths.node_dir(&node.name);
    let dir = dir.to_string_lossy();
    let mut found = Vec::new();
    if procs::runs(node.init_pid, |a| {
        is_init_of(&dir)(a) || is_unshare_of(&dir)(a)
    }) {
        found.push((node.init_pid, format!("init of lab node {}", node.name)));
    }
    if procs::runs(node.unshare_pid, is_unshare_of(&dir)) {
        found.push((
            node.unshare_pid,
            format!("unshare of lab node {}", node.name),
        ));
    }
    push_container(&mut found, Some(node.address), &node.name);
    found
}

/// The recorded processes plus any stray lab-init or unshare whose command line names this
/// node dir, e.g. left by an interrupted `lab up`.
pub fn processes(paths: &LabPaths, node: Option<&NodeState>, name: &str) -> Vec<(u32, String)> {
    let dir = paths.node_dir(name);
    let dir = dir.to_string_lossy();
    let mut found = node
        .map(|n| processes_recorded(paths, n))
        .unwrap_or_default();
    for pid in procs::find(|args| is_init_of(&dir)(args) || is_unshare_of(&dir)(args)) {
        if !found.iter().any(|(p, _)| *p == pid) {
            found.push((pid, format!("stray process of lab node {name}")));
        }
    }
    if node.is_none() {
        push_container(&mut found, recorded_address(paths, name), name);
    }
    found
}

/// Adds the processes of a systemd-flavour node's container (nspawn, systemd and everything it
/// started): exactly the node's cgroup. A plain node has none.
fn push_container(found: &mut Vec<(u32, String)>, address: Option<Ipv4Addr>, name: &str) {
    for pid in address.map(cgroup::pids).unwrap_or_default() {
        if !found.iter().any(|(p, _)| *p == pid) {
            found.push((pid, format!("process of lab node {name}'s container")));
        }
    }
}

/// Removes a systemd-flavour node's cgroup once its processes have ended (no-op otherwise).
pub fn remove_cgroup(
    paths: &LabPaths,
    node: Option<&NodeState>,
    name: &str,
) -> Result<(), LabError> {
    let address = node
        .map(|n| n.address)
        .or_else(|| recorded_address(paths, name));
    match address.map(cgroup::remove).unwrap_or_default().first() {
        Some(group) => Err(LabError::CgroupLeft {
            name: name.to_string(),
            group: group.clone(),
        }),
        None => Ok(()),
    }
}

/// SIGKILLs all the given processes at once (ending a node's init ends its whole PID namespace,
/// and with it the node's private mounts), then waits for each.
pub fn end_processes(targets: &[(u32, String)]) -> Result<(), LabError> {
    for (pid, _) in targets {
        procs::signal(*pid, libc::SIGKILL);
    }
    for (pid, what) in targets {
        procs::kill_and_wait(*pid, what)?;
    }
    Ok(())
}

/// Removes a node dir after making sure nothing is mounted below it (removing through a live
/// bind mount would delete the host's files).
pub fn remove_node_dir(paths: &LabPaths, name: &str) -> Result<(), LabError> {
    let dir = paths.node_dir(name);
    for mount in procs::mounts_under(&dir) {
        procs::unmount_lazy(&mount);
    }
    let left = procs::mounts_under(&dir);
    if !left.is_empty() {
        return Err(LabError::MountsLeft {
            dir,
            mounts: left
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::io("remove", &dir, e)),
    }
}

/// Ends a node (recorded or stray processes) and removes its dir.
pub fn teardown(paths: &LabPaths, node: Option<&NodeState>, name: &str) -> Result<(), LabError> {
    teardown_many(paths, &[(node.cloned(), name.to_string())])
}

/// Ends several nodes at once: one SIGKILL round for all of them, so the waits overlap.
pub fn teardown_many(
    paths: &LabPaths,
    nodes: &[(Option<NodeState>, String)],
) -> Result<(), LabError> {
    let mut targets: Vec<(u32, String)> = Vec::new();
    for (node, name) in nodes {
        for target in processes(paths, node.as_ref(), name) {
            if !targets.iter().any(|(p, _)| *p == target.0) {
                targets.push(target);
            }
        }
    }
    end_processes(&targets)?;
    for (node, name) in nodes {
        remove_cgroup(paths, node.as_ref(), name)?;
    }
    nodes
        .iter()
        .try_for_each(|(_, name)| remove_node_dir(paths, name))
}

/// Ends nodes started by this process, reaping their unshare processes so no zombie is left.
pub fn teardown_started(paths: &LabPaths, started: &mut [Started]) -> Result<(), LabError> {
    for s in started.iter() {
        procs::signal(s.node.init_pid, libc::SIGKILL);
        procs::signal(s.node.unshare_pid, libc::SIGKILL);
    }
    for s in started.iter_mut() {
        let _ = s.child.wait();
    }
    let nodes: Vec<_> = started
        .iter()
        .map(|s| (Some(s.node.clone()), s.node.name.clone()))
        .collect();
    teardown_many(paths, &nodes)
}
