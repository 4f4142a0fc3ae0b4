//! A control group per systemd-flavour lab node.
//!
//! systemd-nspawn, told not to register with a host systemd (there is none here), builds the
//! container's cgroup tree below its own cgroup. Two nodes started from one cgroup would share
//! one tree and fight over it, so each node's lab-init first moves into
//! `sparkboot-lab/<address>` of every hierarchy systemd uses. The same group then names exactly
//! the node's processes for teardown (by PID, whatever they exec'd), and is removed afterwards
//! so no empty group is left behind.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "sparkboot-lab";

/// The hierarchies a container's systemd uses: the unified one alone on a cgroup v2 host, else
/// the named `systemd` v1 hierarchy plus the unified one where it is mounted (hybrid).
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").is_file() {
        return vec![root.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").is_file())
        .collect()
}

fn group(hierarchy: &Path, address: Ipv4Addr) -> PathBuf {
    hierarchy.join(PARENT).join(address.to_string())
}

/// True when this machine has a hierarchy the systemd flavour can use.
pub fn available() -> bool {
    !hierarchies().is_empty()
}

/// Moves the calling process into the node's group in every hierarchy (creating them).
pub fn enter(address: Ipv4Addr) -> std::io::Result<()> {
    let me = std::process::id().to_string();
    for hierarchy in hierarchies() {
        let dir = group(&hierarchy, address);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cgroup.procs"), &me)?;
    }
    Ok(())
}

/// Every directory of a group's tree, deepest first (the order rmdir needs).
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.extend(tree(&entry.path()));
            }
        }
    }
    found.push(dir.to_path_buf());
    found
}

/// Host PIDs of every process in the node's group, in any hierarchy.
pub fn pids(address: Ipv4Addr) -> Vec<u32> {
    let mut pids: Vec<u32> = hierarchies()
        .iter()
        .flat_map(|h| tree(&group(h, address)))
        .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Removes the node's (now empty) groups; waits briefly for the kernel to let go of exiting
/// tasks. Returns the groups that could not be removed.
pub fn remove(address: Ipv4Addr) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for hierarchy in hierarchies() {
        let top = group(&hierarchy, address);
        if !top.exists() {
            continue;
        }
        let removed = super::procs::wait_until(Duration::from_secs(3), || {
            for dir in tree(&top) {
                let _ = std::fs::remove_dir(&dir);
            }
            !top.exists()
        });
        if !removed {
            left.push(top);
        }
        // The shared parent goes with its last node; another lab's node keeps it.
        let _ = std::fs::remove_dir(hierarchy.join(PARENT));
    }
    left
}
