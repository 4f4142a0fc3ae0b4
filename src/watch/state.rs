//! What the watcher must not forget when it is killed: lifecycle actions it still owes an
//! answer, workers told to leave, and the tokens it already answered. Written atomically
//! (temporary file, then rename, 0600) in the cluster's state dir after every change, before a
//! queue message is deleted, so a watcher killed at any moment resumes where it was and answers
//! no action twice.
//!
//! One watcher per cluster: [`Lock`] holds an exclusive `flock` on `watch.lock` beside it for
//! the watcher's life, and records who holds it, for the message a second one prints.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::events::Action;

/// How many answered tokens are remembered (far more than can be outstanding at once).
const ANSWERED_KEPT: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchState {
    /// Launch actions waiting for their instance to be configured, by instance ID.
    pub launching: BTreeMap<String, Pending>,
    /// Terminate actions waiting for the worker's decommission, by instance ID.
    pub terminating: BTreeMap<String, Pending>,
    /// Workers told to leave (spot interruption, rebalance, terminate hook), by host name.
    pub leaving: BTreeMap<String, Leaving>,
    /// Tokens of lifecycle actions answered, oldest first.
    pub answered: Vec<String>,
    /// The master the last converge ran with (`name address`): a new one means a full converge.
    pub master: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub action: Action,
    /// Unix seconds when the event arrived.
    pub since: u64,
    /// Converges that did not finish this instance yet.
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaving {
    /// `interruption`, `rebalance` or `terminating`.
    pub reason: String,
    pub since: u64,
    /// Set once the decommission ran (its outcome); the worker then stays out of converges.
    #[serde(default)]
    pub decommissioned: Option<String>,
}

impl WatchState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("watch-state.json")
    }

    /// Reads the state; a missing file is a fresh start, a broken one an error naming it.
    pub fn load(state_dir: &Path) -> Result<WatchState, String> {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not a watch state file ({e}); move it away to start afresh (actions it held are then answered by their hooks' default results)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WatchState::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the state atomically, 0600.
    pub fn save(&self, state_dir: &Path) -> Result<(), String> {
        let path = Self::path(state_dir);
        let tmp = state_dir.join(format!(".watch-state.json.{}", std::process::id()));
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        std::fs::create_dir_all(state_dir).map_err(fail)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }

    pub fn was_answered(&self, token: &str) -> bool {
        self.answered.iter().any(|t| t == token)
    }

    pub fn mark_answered(&mut self, token: &str) {
        if !self.was_answered(token) {
            self.answered.push(token.to_string());
        }
        let extra = self.answered.len().saturating_sub(ANSWERED_KEPT);
        self.answered.drain(..extra);
    }
}

/// The one-watcher-per-cluster lock, held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock or says who holds it.
    pub fn acquire(state_dir: &Path) -> Result<Lock, String> {
        let path = state_dir.join("watch.lock");
        let fail = |e: std::io::Error| format!("cannot use {}: {e}", path.display());
        std::fs::create_dir_all(state_dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(format!(
                "another sparkboot watch runs for this cluster ({}); one watcher per cluster: stop that one first (lock {})",
                holder.trim(),
                path.display()
            ));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let since = super::log::now_secs();
        let me = format!(
            "pid {} on {} since {}",
            std::process::id(),
            host.trim(),
            super::log::clock(since)
        );
        file.set_len(0).map_err(fail)?;
        file.rewind().map_err(fail)?;
        file.write_all(me.as_bytes()).map_err(fail)?;
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(token: &str) -> Action {
        Action {
            instance: "i-0abc".into(),
            group: "g".into(),
            hook: "h".into(),
            token: token.into(),
        }
    }

    #[test]
    fn state_round_trips_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            WatchState::load(dir.path()).expect("fresh"),
            WatchState::default()
        );
        let mut s = WatchState::default();
        s.launching.insert(
            "i-0abc".into(),
            Pending {
                action: action("t1"),
                since: 5,
                attempts: 1,
                last_error: None,
            },
        );
        s.mark_answered("t0");
        s.save(dir.path()).expect("save");
        assert_eq!(WatchState::load(dir.path()).expect("load"), s);
        let mode = std::fs::metadata(WatchState::path(dir.path()))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(WatchState::path(dir.path()), "{broken").expect("write");
        assert!(WatchState::load(dir.path())
            .expect_err("broken")
            .contains("move it away"));
    }

    #[test]
    fn answered_tokens_are_remembered_once_and_bounded() {
        let mut s = WatchState::default();
        s.mark_answered("a");
        s.mark_answered("a");
        assert_eq!(s.answered, vec!["a".to_string()]);
        for i in 0..(ANSWERED_KEPT + 10) {
            s.mark_answered(&format!("t{i}"));
        }
        assert_eq!(s.answered.len(), ANSWERED_KEPT);
        assert!(!s.was_answered("a") && s.was_answered(&format!("t{}", ANSWERED_KEPT + 9)));
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Lock::acquire(dir.path()).expect("first");
        let err = Lock::acquire(dir.path()).err().expect("second refused");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(Lock::acquire(dir.path()).is_ok(), "released with the first");
    }
}
