//! One lab node seen from the host: prepare its dir, start it under `unshare`, wait for its sshd,
//! stop or start that sshd, check its health, and end it.
//!
//! A node is started detached (own session, console to `nodes/NAME/console.log`) so that it
//! outlives the `lab up` that created it; it is found again later through the PIDs in state.json,
//! each checked against its command line before any signal is sent.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::init::{NodeConfig, CONFIG_FILE, FRESH, OVERLAYS, SSHD_LOG};
use super::preflight::{Tools, SYSTEM_PATH};
use super::procs;
use super::state::{NodeState, Role};
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

/// Creates a fresh node dir: overlay upper/work dirs, fresh root/home/tmp, node.json, console.
fn prepare(paths: &LabPaths, spec: &NodeSpec, pubkey: &str) -> Result<PathBuf, LabError> {
    let dir = paths.node_dir(&spec.name);
    if dir.exists() {
        remove_node_dir(paths, &spec.name)?;
    }
    for name in OVERLAYS {
        for suffix in ["upper", "work"] {
            let sub = dir.join("fs").join(format!("{name}.{suffix}"));
            std::fs::create_dir_all(&sub).map_err(|e| LabError::io("create", &sub, e))?;
        }
    }
    for (name, mode) in FRESH {
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
/// host PID is known (not yet ready: see [`wait_ready`]).
pub fn spawn(
    paths: &LabPaths,
    tools: &Tools,
    spec: &NodeSpec,
    pubkey: &str,
) -> Result<Started, LabError> {
    let dir = prepare(paths, spec, pubkey)?;
    let exe = std::env::current_exe()
        .map_err(|e| LabError::io("find the sparkboot binary", Path::new("/proc/self/exe"), e))?;
    let console_path = console(paths, &spec.name);
    let console =
        File::create(&console_path).map_err(|e| LabError::io("create", &console_path, e))?;
    let console_err = console
        .try_clone()
        .map_err(|e| LabError::io("open", &console_path, e))?;
    let mut command = Command::new(&tools.unshare);
    command
        .args([
            "--mount",
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--",
        ])
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
        let _ = remove_node_dir(paths, &spec.name);
        return Err(LabError::NodeStart {
            name: spec.name.clone(),
            message: "unshare exited before starting the node's init; check that this kernel allows mount, UTS and PID namespaces".into(),
        });
    };
    let node = NodeState {
        name: spec.name.clone(),
        address: spec.address,
        hostname: spec.name.clone(),
        role: spec.role,
        init_pid,
        unshare_pid,
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
pub fn sshd_listening(address: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((address, 22)), Duration::from_millis(300)).is_ok()
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
    loop {
        if sshd_listening(node.address) {
            return Ok(());
        }
        // Right after the fork the init has not exec'd lab-init yet and still shows unshare's
        // command line, so accept either while the node is starting.
        let dir = paths.node_dir(&node.name);
        let dir = dir.to_string_lossy();
        let starting = procs::runs(node.init_pid, |a| {
            is_init_of(&dir)(a) || is_unshare_of(&dir)(a)
        });
        if !starting || Instant::now() >= deadline {
            let console = console(paths, &node.name);
            let mut tail = tail(&console, 6);
            let log = sshd_log(paths, &node.name);
            if log.exists() {
                tail = format!("{tail} (sshd log: {})", self::tail(&log, 2));
            }
            return Err(LabError::NodeNotReady {
                name: node.name.clone(),
                address: node.address.to_string(),
                secs,
                console,
                tail,
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
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
    found
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
    end_processes(&processes(paths, node, name))?;
    remove_node_dir(paths, name)
}

/// Ends a node started by this process, reaping its unshare so no zombie is left.
pub fn teardown_started(paths: &LabPaths, started: &mut Started) -> Result<(), LabError> {
    procs::signal(started.node.init_pid, libc::SIGKILL);
    procs::signal(started.node.unshare_pid, libc::SIGKILL);
    let _ = started.child.wait();
    teardown(paths, Some(&started.node), &started.node.name)
}

/// Runs a program inside the node's mount, UTS and PID namespaces.
fn nsenter(nsenter: &Path, node: &NodeState, program: &[&str]) -> Result<(), LabError> {
    let output = Command::new(nsenter)
        .arg("--target")
        .arg(node.init_pid.to_string())
        .args(["--mount", "--uts", "--pid", "--"])
        .args(program)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", "/root")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io("run", nsenter, e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(LabError::CommandFailed {
        command: format!("nsenter ... {}", program.join(" ")),
        what: format!("node {}", node.name),
        detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

fn wait_sshd(paths: &LabPaths, node: &NodeState, listening: bool) -> Result<(), LabError> {
    const SECS: u64 = 10;
    if procs::wait_until(Duration::from_secs(SECS), || {
        sshd_listening(node.address) == listening
    }) {
        return Ok(());
    }
    Err(LabError::SshdTimeout {
        name: node.name.clone(),
        what: if listening {
            "accept connections"
        } else {
            "stop listening"
        },
        address: node.address.to_string(),
        secs: SECS,
        log: sshd_log(paths, &node.name),
    })
}

/// Stops the node's sshd by the PID in its pidfile; returns false when it was not running.
pub fn stop_sshd(
    paths: &LabPaths,
    nsenter_path: &Path,
    node: &NodeState,
) -> Result<bool, LabError> {
    if !init_alive(paths, node) {
        return Err(LabError::NodeNotRunning {
            name: node.name.clone(),
        });
    }
    let pidfile = PathBuf::from(format!("/proc/{}/root/run/sshd.pid", node.init_pid));
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    let Some(pid) = pid else {
        if !sshd_listening(node.address) {
            return Ok(false);
        }
        return Err(LabError::io(
            "read sshd's pidfile",
            &pidfile,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "missing, yet port 22 accepts connections",
            ),
        ));
    };
    nsenter(nsenter_path, node, &["kill", "-TERM", &pid.to_string()])?;
    wait_sshd(paths, node, false)?;
    Ok(true)
}

/// Starts the node's sshd again (it daemonises and is reparented to the node's init); returns
/// false when it was already listening.
pub fn start_sshd(
    paths: &LabPaths,
    nsenter_path: &Path,
    node: &NodeState,
) -> Result<bool, LabError> {
    if !init_alive(paths, node) {
        return Err(LabError::NodeNotRunning {
            name: node.name.clone(),
        });
    }
    if sshd_listening(node.address) {
        return Ok(false);
    }
    nsenter(nsenter_path, node, &["/usr/sbin/sshd", "-E", SSHD_LOG])?;
    wait_sshd(paths, node, true)?;
    Ok(true)
}
