//! Fitting `--forks` to the file-descriptor limit, so a large fan-out degrades instead of
//! crashing with "too many open files" (a common flintrock complaint on big launches), and
//! capping concurrent handshakes per sshd, so no sshd's MaxStartups drops us.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::inventory::Host;

/// File descriptors kept back for stdio, the known_hosts file, tokio and logs.
const RESERVED_FDS: u64 = 64;
/// Worst case per host: its stream (a TCP socket for a direct host; for a host behind a jump
/// host, the socket pair between its session and the jump session's pump: 2), plus one held
/// only while it authenticates (the key file or the agent's socket).
const FDS_PER_HOST: u64 = 3;
/// Per jump host, whatever the number of targets behind it: the one session's TCP socket and
/// the eventfd that wakes its pump thread.
const FDS_PER_JUMP_SESSION: u64 = 2;

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limit now in force.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// Pure part: given the fd limit and the number of jump sessions the inventory needs, how many
/// hosts may be worked on at once and whether every host's session can stay open for the whole
/// run. Returns (forks, keep_sessions, note).
pub fn fit(
    requested_forks: usize,
    hosts: usize,
    jump_sessions: usize,
    fd_limit: u64,
) -> (usize, bool, Option<String>) {
    let fixed = RESERVED_FDS + FDS_PER_JUMP_SESSION * jump_sessions as u64;
    let budget = (fd_limit.saturating_sub(fixed) / FDS_PER_HOST).max(1) as usize;
    let mut forks = requested_forks.min(hosts.max(1));
    let mut note = None;
    if forks > budget {
        note = Some(format!("--forks {requested_forks} exceeds what the open-file limit ({fd_limit}) allows; using {budget}. Raise `ulimit -n` for more"));
        forks = budget;
    }
    (forks, hosts <= budget, note)
}

pub fn plan_concurrency(
    requested_forks: usize,
    hosts: usize,
    jump_sessions: usize,
) -> (usize, bool, Option<String>) {
    fit(requested_forks, hosts, jump_sessions, raise_nofile_limit())
}

/// The sshd that receives `host`'s handshake: its own address and port, as its jump host (if
/// any) reaches it. A jump host's sshd receives only the one handshake of the jump session,
/// which the pool makes once per run, so it needs no gate of its own.
pub fn sshd_of(host: &Host) -> String {
    match &host.jump_host {
        Some(jump) => format!("{}:{} via {jump}", host.address, host.port),
        None => format!("{}:{}", host.address, host.port),
    }
}

/// At most `cap` concurrent handshakes per sshd. MaxStartups is per sshd, so a global cap would
/// only slow a large fleet down without protecting anything more.
pub struct HandshakeGates {
    cap: usize,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HandshakeGates {
    pub fn new(cap: usize) -> HandshakeGates {
        HandshakeGates {
            cap: cap.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The semaphore guarding `host`'s sshd (shared with every host on the same sshd).
    pub fn gate(&self, host: &Host) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry(sshd_of(host))
            .or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NodeRole;

    fn host(name: &str, address: &str, port: u16, jump: Option<&str>) -> Host {
        Host::new(
            name.into(),
            address.into(),
            port,
            "root".into(),
            None,
            jump.map(str::to_string),
            NodeRole::Worker,
            Default::default(),
        )
        .expect("valid host")
    }

    #[test]
    fn forks_within_the_limit_are_kept() {
        assert_eq!(fit(50, 50, 0, 1024), (50, true, None));
        assert_eq!(fit(500, 3, 0, 1024).0, 3);
    }

    #[test]
    fn forks_above_the_limit_are_capped_with_a_note() {
        let (forks, keep, note) = fit(5000, 5000, 0, 1024);
        assert_eq!(forks, 320);
        assert!(!keep, "5000 sessions cannot all stay open");
        assert!(note.expect("a note").contains("open-file limit"));
    }

    #[test]
    fn jump_sessions_cost_a_fixed_two_fds_each_not_per_target() {
        // 1000 targets behind one jump host: (4096 - 64 - 2) / 3 = 1343 fit at once.
        assert_eq!(fit(1000, 1000, 1, 4096), (1000, true, None));
        assert_eq!(fit(5000, 5000, 1, 4096).0, 1343);
        // Ten jump hosts take 20 fds, not 4 per target as the per-target bridges did.
        assert_eq!(fit(5000, 5000, 10, 4096).0, 1337);
    }

    #[test]
    fn the_cap_is_per_sshd() {
        let gates = HandshakeGates::new(2);
        let a = host("a", "127.9.0.2", 22, None);
        let a_again = host("a2", "127.9.0.2", 22, None);
        let a_other_port = host("a3", "127.9.0.2", 2222, None);
        let b = host("b", "127.9.0.3", 22, None);
        let held: Vec<_> = [&a, &a_again]
            .iter()
            .map(|h| gates.gate(h).try_acquire_owned().expect("within the cap"))
            .collect();
        assert!(
            gates.gate(&a).try_acquire_owned().is_err(),
            "a third handshake to the same sshd waits"
        );
        assert!(gates.gate(&a_other_port).try_acquire_owned().is_ok());
        assert!(gates.gate(&b).try_acquire_owned().is_ok());
        drop(held);
        assert!(gates.gate(&a).try_acquire_owned().is_ok());
    }

    #[test]
    fn targets_behind_a_jump_host_each_have_their_own_sshd() {
        let gates = HandshakeGates::new(1);
        let workers: Vec<_> = (0..50)
            .map(|i| {
                host(
                    &format!("w{i}"),
                    &format!("192.0.2.{i}"),
                    22,
                    Some("root@127.9.0.2"),
                )
            })
            .collect();
        // All 50 can handshake at once with a cap of 1: none shares an sshd with another.
        let held: Vec<_> = workers
            .iter()
            .map(|w| gates.gate(w).try_acquire_owned().expect("own sshd"))
            .collect();
        assert_eq!(held.len(), 50);
        // The same private address behind another jump host is another machine.
        let elsewhere = host("x", "192.0.2.0", 22, Some("root@127.9.0.9"));
        assert!(gates.gate(&elsewhere).try_acquire_owned().is_ok());
        assert_ne!(sshd_of(&workers[0]), sshd_of(&elsewhere));
    }
}
