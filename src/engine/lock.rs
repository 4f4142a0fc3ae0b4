//! The cluster lock, as a run uses it: observed read-only by the master's probe (so a no-op
//! stays one round trip and never locks), and taken on the master only once the plan shows a
//! change. If anyone acquired it between our probe and our acquisition, what we probed may be
//! stale, and the run probes again before changing anything. The scripts are in
//! [`crate::shell::lock`].

use std::time::{SystemTime, UNIX_EPOCH};

use super::node::Node;
use crate::shell::lock::{self, Acquired, Holder, Observed};

/// The name under which the master's probe reports the lock (`ProbeRequest::observe`).
pub const OBSERVE_KEY: &str = "lock";

/// This run's identity on the lock: a random token (so `release` touches only our holder) and
/// who we are, for the sentence another run prints while we hold it.
pub struct RunLock {
    pub holder: Holder,
}

/// After an acquisition: can the run go on with what it probed?
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// Nobody held or took the lock since our probe: the probe's facts hold.
    Fresh,
    /// Someone else acquired it in between (or held it while we probed): probe again.
    Stale,
}

impl RunLock {
    pub fn new(command: &str) -> RunLock {
        let token: u128 = rand::random();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RunLock {
            holder: Holder {
                token: format!("{token:032x}"),
                command: command.to_string(),
                host: hostname(),
                pid: std::process::id().to_string(),
                since: crate::watch::log::clock(now),
            },
        }
    }

    /// Takes the lock on the master, waiting up to `wait_secs`. `observed` is what the probe
    /// saw. Errors are the sentence to show: who holds it, or why it cannot be taken.
    pub fn take(
        &self,
        master: &mut Node,
        wait_secs: u64,
        observed: Option<&str>,
    ) -> Result<Taken, LockError> {
        let script = lock::acquire(wait_secs, &self.holder.lines());
        let Some(out) = master.run(&script, None) else {
            return Err(LockError::Failed(format!(
                "cannot take the cluster lock on the master {}: {}",
                master.host.name,
                master.error().unwrap_or("unreachable")
            )));
        };
        match lock::parse_acquired(&out.stdout) {
            Acquired::Ok { generation } => Ok(judge(observed, generation)),
            Acquired::Busy(holder) => Err(LockError::Busy(format!(
                "the cluster is locked by {} on the master {}; wait for that run to finish, or pass --wait SECONDS to wait for it",
                holder.describe(),
                master.host.name
            ))),
            Acquired::Error(e) => Err(LockError::Failed(format!(
                "cannot take the cluster lock on the master {}: {e}",
                master.host.name
            ))),
        }
    }

    /// Stops our holder; best effort (the holder also ends with the session).
    pub fn release(&self, master: &mut Node) {
        if master.alive() {
            let _ = master.run(&lock::release(&self.holder.token), None);
        }
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Another run holds the lock.
    Busy(String),
    /// The lock could not be taken (no flock, a bad lock directory, the master unreachable).
    Failed(String),
}

/// Whether the probe's facts still hold after acquiring generation `acquired`.
fn judge(observed: Option<&str>, acquired: u64) -> Taken {
    match observed.map(lock::parse_observed) {
        Some(Ok(Observed::Free { generation })) if generation + 1 == acquired => Taken::Fresh,
        _ => Taken::Stale,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_untouched_free_lock_keeps_the_probe() {
        assert_eq!(judge(Some("free 4\n"), 5), Taken::Fresh);
        // Someone took and released it between our probe and our acquisition.
        assert_eq!(judge(Some("free 4\n"), 6), Taken::Stale);
        // Held while we probed: we waited for it; what we saw may be half-done.
        assert_eq!(judge(Some("held 4\ntoken=x\n"), 6), Taken::Stale);
        assert_eq!(judge(None, 1), Taken::Stale);
        assert_eq!(judge(Some("garbage"), 1), Taken::Stale);
    }

    #[test]
    fn a_run_lock_names_its_command_and_has_a_fresh_token() {
        let (a, b) = (RunLock::new("converge"), RunLock::new("converge"));
        assert_ne!(a.holder.token, b.holder.token);
        assert_eq!(a.holder.token.len(), 32);
        assert!(a.holder.describe().starts_with("sparkboot converge (pid "));
    }
}
