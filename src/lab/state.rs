//! The files under the lab dir that describe the lab: state.json (what runs, by PID), the SSH
//! key, inventory.toml (read as is by `sparkboot converge --inventory`) and a sample config.
//!
//! Every file is written to a temporary name and renamed, so an interrupted command never leaves
//! a half-written state or inventory behind.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::{LabError, LabPaths};
use crate::inventory::static_file::{HostDefaults, HostEntry, InventoryFile};

/// A node's role in the Spark cluster the lab stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Worker,
}

/// One node as recorded: enough to find, check and end it later from another process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub address: Ipv4Addr,
    pub hostname: String,
    pub role: Role,
    /// Host PID of the node's init (PID 1 inside its PID namespace).
    pub init_pid: u32,
    /// Host PID of the `unshare` process whose child the init is.
    pub unshare_pid: u32,
    /// A systemd-flavour node: its init runs systemd-nspawn, whose container runs systemd.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd: bool,
}

/// The systemd flavour's image (scripts/debian-rootfs builds both): the Debian tree every node
/// boots from, read-only, and the local apt repository its Java comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SystemdImage {
    pub rootfs: PathBuf,
    pub debs: PathBuf,
}

/// The lab's HTTP server for the Spark tarball.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SparkServer {
    pub address: Ipv4Addr,
    pub port: u16,
    pub pid: u32,
    pub directory: PathBuf,
    pub url: String,
}

/// Everything state.json holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabState {
    /// The master's address; workers and the Spark server are derived from it.
    pub first_address: Ipv4Addr,
    #[serde(default)]
    pub spark: Option<SparkServer>,
    #[serde(default)]
    pub nodes: Vec<NodeState>,
    /// Set when the lab's nodes boot systemd (`lab up --systemd`); every node of a lab is alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdImage>,
}

impl LabState {
    pub fn new(first_address: Ipv4Addr) -> Self {
        LabState {
            first_address,
            spark: None,
            nodes: Vec::new(),
            systemd: None,
        }
    }

    /// Reads state.json; `Ok(None)` when there is no lab in this dir.
    pub fn load(paths: &LabPaths) -> Result<Option<Self>, LabError> {
        let path = paths.state();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io("read", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::BadState {
                path: path.clone(),
                message: e.to_string(),
            })
    }

    pub fn save(&self, paths: &LabPaths) -> Result<(), LabError> {
        let path = paths.state();
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::BadState {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, text.as_bytes(), 0o644)
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn master(&self) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.role == Role::Master)
    }

    /// Replaces the node of the same name, or appends it.
    pub fn upsert(&mut self, node: NodeState) {
        match self.nodes.iter_mut().find(|n| n.name == node.name) {
            Some(slot) => *slot = node,
            None => self.nodes.push(node),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.nodes.retain(|n| n.name != name);
    }

    /// Writes inventory.toml for the nodes in the state (master first), or removes it when the
    /// lab has no master (an inventory without one would not load).
    pub fn write_inventory(&self, paths: &LabPaths) -> Result<(), LabError> {
        let path = paths.inventory();
        let entry = |n: &NodeState| HostEntry {
            name: n.name.clone(),
            address: n.address.to_string(),
            port: None,
            user: None,
            identity_file: None,
            vars: Default::default(),
        };
        let Some(master) = self.master() else {
            return remove_if_present(&path);
        };
        let file = InventoryFile {
            defaults: HostDefaults {
                user: Some("root".into()),
                port: Some(22),
                identity_file: Some(paths.key()),
                jump_host: None,
            },
            master: entry(master),
            workers: self
                .nodes
                .iter()
                .filter(|n| n.role == Role::Worker)
                .map(entry)
                .collect(),
        };
        let header = format!(
            "# Written by `sparkboot lab`; rewritten by `lab up`, `lab add` and `lab remove`.\n\
             # Use it as is: sparkboot converge --inventory {}\n\
             # Nodes also accept user ec2-user (passwordless sudo) with the same key.\n\n",
            path.display()
        );
        write_atomic(&path, file.to_toml(&header).as_bytes(), 0o644)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| LabError::io("write", &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io("set the mode of", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io("rename into place", path, e))
}

pub fn remove_if_present(path: &Path) -> Result<(), LabError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::io("remove", path, e)),
    }
}

/// Creates the lab's ed25519 key pair once; returns the public key line.
pub fn ensure_key(paths: &LabPaths) -> Result<String, LabError> {
    let (key, pubkey) = (paths.key(), paths.pubkey());
    if !key.is_file() || !pubkey.is_file() {
        remove_if_present(&key)?;
        remove_if_present(&pubkey)?;
        let output = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "sparkboot-lab", "-f"])
            .arg(&key)
            .output()
            .map_err(|e| LabError::io("run ssh-keygen for", &key, e))?;
        if !output.status.success() {
            return Err(LabError::CommandFailed {
                command: "ssh-keygen -t ed25519".into(),
                what: key.display().to_string(),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
    }
    let line = std::fs::read_to_string(&pubkey).map_err(|e| LabError::io("read", &pubkey, e))?;
    Ok(line.trim().to_string())
}

/// Writes the lab's sparkboot.toml: the inventory beside it, Spark from the lab's server (so
/// converge runs the real download-and-verify path), and state kept inside the lab dir so
/// `lab down` removes it with everything else.
pub fn write_sample_config(
    paths: &LabPaths,
    url_template: &str,
    url: &str,
    version: &str,
    sha512: &str,
) -> Result<(), LabError> {
    let text = format!(
        "# sparkboot configuration for this lab, written by `sparkboot lab up`.\n\
         # The lab serves a Spark-shaped tarball built from PyPI pyspark=={version}, with its .sha512\n\
         # (`sparkboot lab up --spark-version V` builds and names another):\n\
         #   {url}\n\
         #   {url}.sha512\n\
         # Use: sparkboot converge --config {config}\n\
         inventory = \"inventory.toml\"\n\
         \n\
         [cluster]\n\
         name = \"lab\"\n\
         state_dir = \"state\"               # relative to this file\n\
         \n\
         [spark]\n\
         version = \"{version}\"\n\
         package = \"bin-hadoop3\"\n\
         source = \"{url_template}\"\n\
         # Pinned: the lab serves plain HTTP, and a checksum from the same plain-HTTP origin\n\
         # proves nothing.\n\
         sha512 = \"{sha512}\"\n",
        config = paths.sample_config().display(),
    );
    write_atomic(&paths.sample_config(), text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, last: u8, role: Role) -> NodeState {
        NodeState {
            name: name.into(),
            address: Ipv4Addr::new(127, 100, 0, last),
            hostname: name.into(),
            role,
            init_pid: 10,
            unshare_pid: 9,
            systemd: false,
        }
    }

    #[test]
    fn inventory_round_trips_through_the_static_file_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = LabPaths {
            dir: dir.path().to_path_buf(),
        };
        let mut state = LabState::new(Ipv4Addr::new(127, 100, 0, 2));
        state.upsert(node("lab-master", 2, Role::Master));
        state.upsert(node("lab-worker-1", 3, Role::Worker));
        state.write_inventory(&paths).expect("write");
        let file = InventoryFile::load(&paths.inventory()).expect("load");
        assert_eq!(file.defaults.identity_file, Some(paths.key()));
        assert_eq!(file.defaults.user.as_deref(), Some("root"));
        let inv = file.into_inventory(&paths.inventory()).expect("valid");
        assert_eq!(inv.master.address, "127.100.0.2");
        assert_eq!(inv.workers.len(), 1);
        state.remove("lab-worker-1");
        state.save(&paths).expect("save");
        assert_eq!(LabState::load(&paths).expect("load"), Some(state));
    }
}
