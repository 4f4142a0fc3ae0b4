//! One SSH session per jump host, shared by every target behind it, for a whole run.
//!
//! Without it, each target behind a jump host opened its own session to the jump host: a
//! thousand workers behind the master meant a thousand handshakes against one sshd's
//! MaxStartups, and a thousand sessions it had to keep. The pool keys sessions by the jump host
//! as the client logs in to it (user, address, port), opens and verifies the first one exactly
//! as any host (known_hosts pinning through [`Connection::try_open`]), and hands each target a
//! `direct-tcpip` channel on it (see [`super::jump`] for the pump that carries them).
//!
//! It belongs to whatever is shared by every node of a run (the engine's `Link`), so `watch`
//! keeps the jump session across reconciles, as it keeps the targets' own sessions. A jump
//! session that died (the jump host rebooted, its sshd restarted) is replaced on the next
//! connect through it; the targets' own retry loop drives that, so a jump host that is down
//! costs each target no more than it would cost a direct one.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::jump::{JumpSession, JumpSpec};
use super::session::{Attempt, Connection};
use super::{KnownHosts, SshOptions};
use crate::inventory::Host;

/// How long a failed attempt to reach a jump host is reused for the targets waiting on it, so
/// that a jump host that is down is tried about once a second, not once per target.
const FAILURE_REUSE: Duration = Duration::from_secs(1);

/// Which session a target's tunnel rides on: the jump host as the client logs in to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JumpKey {
    pub user: String,
    pub address: String,
    pub port: u16,
}

impl JumpKey {
    /// The key of `target`'s jump host, if it has one (`None` also for a spec that does not
    /// parse: connecting reports that error, naming the host).
    pub fn of(target: &Host) -> Option<JumpKey> {
        let spec = JumpSpec::parse(target.jump_host.as_deref()?, target).ok()?;
        Some(JumpKey::from_spec(&spec, target))
    }

    fn from_spec(spec: &JumpSpec, target: &Host) -> JumpKey {
        JumpKey {
            user: spec.user.clone().unwrap_or_else(|| target.user.clone()),
            address: spec.address.clone(),
            port: spec.port,
        }
    }
}

/// How many jump sessions a set of hosts needs (one per distinct jump host).
pub fn jump_sessions<'a>(hosts: impl IntoIterator<Item = &'a Host>) -> usize {
    hosts
        .into_iter()
        .filter_map(JumpKey::of)
        .collect::<BTreeSet<_>>()
        .len()
}

#[derive(Default)]
struct Slot {
    session: Option<Arc<JumpSession>>,
    failed: Option<(Instant, String)>,
}

/// The jump sessions of one run. Cheap to create; opens nothing until a target needs it.
#[derive(Default)]
pub struct JumpPool {
    slots: Mutex<HashMap<JumpKey, Arc<Mutex<Slot>>>>,
    opened: Mutex<u32>,
}

impl std::fmt::Debug for JumpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JumpPool")
            .field("sessions_opened", &self.sessions_opened())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a slot leaves plain data behind; carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JumpPool {
    pub fn new() -> JumpPool {
        JumpPool::default()
    }

    /// Jump sessions opened so far (handshakes with jump hosts).
    pub fn sessions_opened(&self) -> u32 {
        *lock(&self.opened)
    }

    /// A stream to `target` through its jump host `spec`, opening (or replacing a dead) jump
    /// session first. One attempt: the caller's retry loop decides whether to try again.
    pub(super) fn tunnel(
        &self,
        target: &Host,
        spec: &JumpSpec,
        opts: &SshOptions,
        known: &KnownHosts,
    ) -> Result<UnixStream, Attempt> {
        let key = JumpKey::from_spec(spec, target);
        let slot = lock(&self.slots).entry(key).or_default().clone();
        let session = {
            // Held while opening, so the targets that arrive meanwhile wait for this one
            // handshake instead of making their own.
            let mut slot = lock(&slot);
            match &slot.session {
                Some(s) if s.alive() => s.clone(),
                _ => {
                    slot.session = None;
                    if let Some((at, why)) = &slot.failed {
                        if at.elapsed() < FAILURE_REUSE {
                            return Err(Attempt::Retry(why.clone()));
                        }
                    }
                    let jump_host = spec.as_host(target);
                    let conn = match Connection::try_open(&jump_host, opts, known, self) {
                        Ok(c) => c,
                        Err(Attempt::Retry(why)) => {
                            let why = format!("jump host {}: {why}", spec.address);
                            slot.failed = Some((Instant::now(), why.clone()));
                            return Err(Attempt::Retry(why));
                        }
                        Err(fatal) => return Err(fatal),
                    };
                    *lock(&self.opened) += 1;
                    let label = format!("{}:{}", spec.address, spec.port);
                    let session = JumpSession::start(
                        conn.into_session(),
                        &label,
                        opts.keepalive,
                        opts.connect_timeout,
                    )
                    .map_err(|e| Attempt::Retry(format!("jump host {label}: {e}")))?;
                    let session = Arc::new(session);
                    slot.failed = None;
                    slot.session = Some(session.clone());
                    session
                }
            }
        };
        session
            .tunnel(&target.address, target.port)
            .map_err(|e| Attempt::Retry(format!("through jump host {}: {e}", spec.address)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NodeRole;

    fn host(name: &str, address: &str, user: &str, jump: Option<&str>) -> Host {
        Host::new(
            name.into(),
            address.into(),
            22,
            user.into(),
            None,
            jump.map(str::to_string),
            NodeRole::Worker,
            Default::default(),
        )
        .expect("valid host")
    }

    #[test]
    fn targets_behind_one_jump_host_share_one_key() {
        let a = host("w1", "192.0.2.5", "ec2-user", Some("127.1.0.2"));
        let b = host("w2", "192.0.2.6", "ec2-user", Some("ec2-user@127.1.0.2:22"));
        assert_eq!(JumpKey::of(&a), JumpKey::of(&b));
        assert_eq!(
            JumpKey::of(&a),
            Some(JumpKey {
                user: "ec2-user".into(),
                address: "127.1.0.2".into(),
                port: 22
            })
        );
        assert_eq!(jump_sessions([&a, &b]), 1);
    }

    #[test]
    fn user_port_or_address_make_another_session() {
        let base = host("w1", "192.0.2.5", "ec2-user", Some("127.1.0.2"));
        let other_user = host("w2", "192.0.2.6", "admin", Some("127.1.0.2"));
        let other_port = host("w3", "192.0.2.7", "ec2-user", Some("127.1.0.2:2222"));
        let other_addr = host("w4", "192.0.2.8", "ec2-user", Some("127.1.0.3"));
        let direct = host("m", "127.1.0.2", "ec2-user", None);
        assert_eq!(JumpKey::of(&direct), None);
        assert_eq!(
            jump_sessions([&base, &other_user, &other_port, &other_addr, &direct]),
            4
        );
    }
}
