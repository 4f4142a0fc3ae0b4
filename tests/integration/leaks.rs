//! Secrets under faults: the checks every fault case runs on top of its own, so that no fault
//! makes a secret (the Spark auth secret, a role's secret variable, the cluster key) show up in
//! a process's argv, in sparkboot's output, or in a file a node kept with a wider mode than
//! the one the role asked for (a temporary file left by a killed run, say).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Collects the command line of every process on this machine (the lab nodes' too: their PID
/// namespaces are nested in ours) every 20 ms until finished, to show that no secret ever
/// travels in argv, where every user of a node can read it.
pub struct ArgvSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BTreeSet<String>>,
}

impl ArgvSampler {
    pub fn start() -> ArgvSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !flag.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
                        if !raw.is_empty() {
                            seen.insert(String::from_utf8_lossy(&raw).replace('\0', " "));
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        });
        ArgvSampler { stop, thread }
    }

    pub fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("sampler")
    }

    /// Stops sampling and asserts that no sampled command line held `secret`.
    pub fn assert_never_saw(self, secret: &str) {
        let seen = self.finish();
        assert!(
            seen.len() > 20,
            "the sampler saw only {} command lines",
            seen.len()
        );
        assert!(
            seen.iter().all(|a| !a.contains(secret)),
            "a process's argv held the secret"
        );
    }
}

/// Files below `dir` (followed on the host, where the nodes' upper layers and fresh dirs live)
/// that hold `secret`, with their permission bits. Archives and large files are skipped: the
/// secret is written only into small config files.
pub fn files_holding(dir: &Path, secret: &str) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && meta.len() <= 8 << 20 {
                let skip = path
                    .extension()
                    .is_some_and(|e| e == "jar" || e == "zip" || e == "tgz" || e == "gz");
                if skip {
                    continue;
                }
                let holds = std::fs::read(&path)
                    .is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
                if holds {
                    found.push((path, meta.permissions().mode() & 0o777));
                }
            }
        }
    }
    found.sort();
    found
}

/// Every file of the lab's nodes that holds `secret` is one the roles meant (its path ends with
/// one of `allowed`) and has exactly that file's mode; returns how many there were.
pub fn assert_only_meant_files(lab_dir: &Path, secret: &str, allowed: &[(&str, u32)]) -> usize {
    let files = files_holding(&lab_dir.join("nodes"), secret);
    for (path, mode) in &files {
        let text = path.to_string_lossy();
        let meant = allowed.iter().find(|(suffix, _)| text.ends_with(suffix));
        let Some((_, want)) = meant else {
            panic!("{} (mode {mode:o}) holds the secret", path.display());
        };
        assert_eq!(
            *mode,
            *want,
            "{} holds the secret with mode {mode:o}",
            path.display()
        );
    }
    files.len()
}

/// No captured sparkboot output holds `secret`.
pub fn assert_outputs_clean<'a>(outputs: impl IntoIterator<Item = &'a String>, secret: &str) {
    for out in outputs {
        assert!(
            !out.contains(secret),
            "sparkboot printed the secret:\n{out}"
        );
    }
}
