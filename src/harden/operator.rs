//! The keys the operator logs in with, read on this machine, so harden never removes them from
//! a node: the public half of each inventory `identity_file` (derived with `ssh-keygen -y`, and
//! the `.pub` beside it), plus the agent's keys when sparkboot may use the agent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::keys::blob_of;
use crate::inventory::{Host, Inventory};

#[derive(Debug, Clone, Default)]
pub struct OperatorKeys {
    by_identity: BTreeMap<PathBuf, BTreeSet<String>>,
    agent: BTreeSet<String>,
}

fn blobs(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| blob_of(l.trim()))
        .map(str::to_string)
        .collect()
}

fn local(program: &str, args: &[&std::ffi::OsStr]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn identity_blobs(path: &Path) -> BTreeSet<String> {
    let derived = local(
        "ssh-keygen",
        &[
            "-y".as_ref(),
            "-P".as_ref(),
            "".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
        ],
    );
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let beside = std::fs::read_to_string(PathBuf::from(pub_path)).unwrap_or_default();
    let mut out = blobs(&derived);
    out.extend(blobs(&beside));
    out
}

impl OperatorKeys {
    pub fn load(inventory: &Inventory, use_agent: bool) -> Self {
        let mut by_identity = BTreeMap::new();
        for path in inventory.hosts().filter_map(|h| h.identity_file.clone()) {
            by_identity
                .entry(path)
                .or_insert_with_key(|p: &PathBuf| identity_blobs(p));
        }
        let agent = if use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
            blobs(&local("ssh-add", &["-L".as_ref()]))
        } else {
            BTreeSet::new()
        };
        OperatorKeys { by_identity, agent }
    }

    /// Every key that may be the one the operator logs in to `host` with; empty when none could
    /// be read (harden then refuses to remove any authorized key on that host).
    pub fn for_host(&self, host: &Host) -> BTreeSet<String> {
        let mut out = self.agent.clone();
        if let Some(keys) = host
            .identity_file
            .as_ref()
            .and_then(|p| self.by_identity.get(p))
        {
            out.extend(keys.iter().cloned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_public_half_beside_the_identity_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id_test");
        std::fs::write(&key, "not a key\n").expect("write");
        std::fs::write(
            dir.path().join("id_test.pub"),
            "ssh-ed25519 AAAAme me@laptop\n",
        )
        .expect("write");
        assert_eq!(identity_blobs(&key), ["AAAAme".to_string()].into());
        assert!(identity_blobs(&dir.path().join("missing")).is_empty());
    }
}
