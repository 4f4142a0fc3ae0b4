//! Stopping and starting one node's sshd while the node stays up: the fault `lab stop` injects
//! and `lab start` repairs. Both run inside the node through `nsenter`, and wait until port 22
//! really refuses or accepts, so a test can rely on the state right after the command returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::init::SSHD_LOG;
use super::node::{container_init, init_alive, port_open, sshd_listening, sshd_log};
use super::preflight::SYSTEM_PATH;
use super::procs;
use super::state::NodeState;
use super::{LabError, LabPaths};

/// Runs a program inside the node's mount, UTS and PID namespaces (for a systemd-flavour node,
/// those of its container, whose PID 1 is systemd).
fn nsenter(nsenter: &Path, node: &NodeState, program: &[&str]) -> Result<(), LabError> {
    let target = if node.systemd {
        container_init(node).ok_or_else(|| LabError::NodeNotRunning {
            name: node.name.clone(),
        })?
    } else {
        node.init_pid
    };
    let output = Command::new(nsenter)
        .arg("--target")
        .arg(target.to_string())
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
        if listening {
            sshd_listening(node.address)
        } else {
            !port_open(node.address)
        }
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
    if node.systemd {
        // systemd owns sshd there: stop the unit, as an operator would.
        let was_listening = port_open(node.address);
        nsenter(nsenter_path, node, &["systemctl", "stop", "ssh.service"])?;
        wait_sshd(paths, node, false)?;
        return Ok(was_listening);
    }
    let pidfile = PathBuf::from(format!("/proc/{}/root/run/sshd.pid", node.init_pid));
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    let Some(pid) = pid else {
        if !port_open(node.address) {
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
    if node.systemd {
        nsenter(nsenter_path, node, &["systemctl", "start", "ssh.service"])?;
    } else {
        nsenter(nsenter_path, node, &["/usr/sbin/sshd", "-E", SSHD_LOG])?;
    }
    wait_sshd(paths, node, true)?;
    Ok(true)
}
