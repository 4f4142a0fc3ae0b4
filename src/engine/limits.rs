//! Fitting `--forks` to the file-descriptor limit, so a large fan-out degrades instead of
//! crashing with "too many open files" (a common flintrock complaint on big launches).

/// File descriptors kept back for stdio, the known_hosts file, tokio and logs.
const RESERVED_FDS: u64 = 64;
/// Worst case per host: the TCP socket, plus a socket pair and the jump host's socket.
const FDS_PER_HOST: u64 = 4;

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

/// Pure part: given the fd limit, how many hosts may be worked on at once and whether every
/// host's session can stay open for the whole run. Returns (forks, keep_sessions, note).
pub fn fit(requested_forks: usize, hosts: usize, fd_limit: u64) -> (usize, bool, Option<String>) {
    let budget = (fd_limit.saturating_sub(RESERVED_FDS) / FDS_PER_HOST).max(1) as usize;
    let mut forks = requested_forks.min(hosts.max(1));
    let mut note = None;
    if forks > budget {
        note = Some(format!("--forks {requested_forks} exceeds what the open-file limit ({fd_limit}) allows; using {budget}. Raise `ulimit -n` for more"));
        forks = budget;
    }
    (forks, hosts <= budget, note)
}

pub fn plan_concurrency(requested_forks: usize, hosts: usize) -> (usize, bool, Option<String>) {
    fit(requested_forks, hosts, raise_nofile_limit())
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn forks_within_the_limit_are_kept() {
        assert_eq!(fit(50, 50, 1024), (50, true, None));
        assert_eq!(fit(500, 3, 1024).0, 3);
    }

    #[test]
    fn forks_above_the_limit_are_capped_with_a_note() {
        let (forks, keep, note) = fit(5000, 5000, 1024);
        assert_eq!(forks, 240);
        assert!(!keep, "5000 sessions cannot all stay open");
        assert!(note.expect("a note").contains("open-file limit"));
    }
}
