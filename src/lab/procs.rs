//! Process and mount bookkeeping through /proc, so the lab ends exactly its own processes.
//!
//! The lab never kills by name: it records PIDs, and before signalling one it checks that the PID
//! still runs the command line the lab started (PIDs are recycled). This module also reads the
//! mount table, because `lab down` must prove that nothing stays mounted under the lab dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::LabError;

/// The process's arguments, or `None` when it is gone (or a zombie, whose cmdline is empty).
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// The one-letter state from /proc/PID/stat (R, S, D, Z, ...), `None` when the PID is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may itself hold spaces or ')', so split at the last one.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// True while the PID exists and has not exited (a zombie counts as dead: it runs nothing).
pub fn alive(pid: u32) -> bool {
    pid > 1 && matches!(state(pid), Some(c) if c != 'Z' && c != 'X')
}

/// True when the PID exists at all, zombie or not.
pub fn exists(pid: u32) -> bool {
    pid > 1 && Path::new(&format!("/proc/{pid}")).exists()
}

/// True when `pid` is alive and its arguments satisfy `matches` (the guard against recycled PIDs).
pub fn runs(pid: u32, matches: impl Fn(&[String]) -> bool) -> bool {
    alive(pid) && cmdline(pid).is_some_and(|args| matches(&args))
}

/// Direct children of a process (needs CONFIG_PROC_CHILDREN, which Debian kernels have).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every live PID on the machine whose arguments satisfy `matches`.
pub fn find(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| runs(*pid, &matches))
        .collect();
    pids.sort_unstable();
    pids
}

/// Sends `signal` to one PID; a PID that is already gone is not an error.
pub fn signal(pid: u32, signal: i32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw > 1 {
        // SAFETY: kill(2) with a positive PID checked above; it only affects that one process.
        unsafe {
            libc::kill(raw, signal);
        }
    }
}

/// Polls until `done` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs a PID and waits until it has exited; then gives its parent a moment to reap it.
pub fn kill_and_wait(pid: u32, what: &str) -> Result<(), LabError> {
    const SECS: u64 = 10;
    signal(pid, libc::SIGKILL);
    if !wait_until(Duration::from_secs(SECS), || !alive(pid)) {
        return Err(LabError::ProcessStuck {
            pid,
            what: what.to_string(),
            secs: SECS,
        });
    }
    // A zombie is dead but still listed; its parent (the unshare process, or the machine's init
    // for orphans) reaps it within moments. Waiting keeps `lab down` honest about "no process".
    wait_until(Duration::from_secs(2), || !exists(pid));
    Ok(())
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .map(|field| PathBuf::from(unescape_mount_field(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Undoes the octal escapes (`\040` for a space) that /proc/self/mounts uses in paths.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts one path (MNT_DETACH), ignoring paths that are no longer mounted.
pub fn unmount_lazy(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: umount2 with a NUL-terminated path that lives for the duration of the call.
    unsafe {
        libc::umount2(c_path.as_ptr(), libc::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_are_unescaped() {
        assert_eq!(unescape_mount_field(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_field("/plain"), "/plain");
        assert_eq!(unescape_mount_field(r"/x\134y"), r"/x\y");
    }

    #[test]
    fn own_process_is_alive_and_found() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(cmdline(me).is_some());
        assert!(!alive(0));
    }
}
