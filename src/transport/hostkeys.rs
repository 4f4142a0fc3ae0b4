//! Host-key pinning: the per-cluster known_hosts file.
//!
//! sparkboot keeps its own OpenSSH-format known_hosts under its state directory, so that
//! `sparkboot ssh` (which runs the system `ssh` with `UserKnownHostsFile` pointing here) and the
//! converge engine trust exactly the same keys. A new key is recorded (accept-new) unless
//! `--strict`; a changed key is never accepted: the host fails with a warning that says how to
//! remove the old entry once the operator has confirmed the change is legitimate.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HostKeyError {
    #[error("HOST KEY CHANGED for {host}: known_hosts {file} line {line} pins a different {key_type} key (pinned {pinned_fp}, offered {offered_fp}). This can mean a man-in-the-middle or a rebuilt node. If the node was rebuilt, remove that line and run again")]
    Changed {
        host: String,
        file: PathBuf,
        line: usize,
        key_type: String,
        pinned_fp: String,
        offered_fp: String,
    },
    #[error("host key of {host} ({key_type} {fingerprint}) is not in {file} and --strict refuses unknown keys; run once without --strict to record it, or add it to that file")]
    UnknownStrict {
        host: String,
        key_type: String,
        fingerprint: String,
        file: PathBuf,
    },
    #[error("cannot update known_hosts {file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// What checking a presented key against the file found.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    Match,
    NotFound,
    /// The host is pinned with other key material; `line` is 1-based.
    Changed {
        line: usize,
        key_type: String,
        pinned: String,
    },
}

/// The name a host has in known_hosts, as OpenSSH writes it.
pub fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// Pure check of `key_type key_b64` for `pattern` against the text of a known_hosts file.
pub fn check(known_hosts: &str, pattern: &str, key_type: &str, key_b64: &str) -> KeyCheck {
    let mut changed = None;
    for (i, line) in known_hosts.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(ktype), Some(key)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !hosts.split(',').any(|h| h == pattern) {
            continue;
        }
        if ktype == key_type && key == key_b64 {
            return KeyCheck::Match;
        }
        if changed.is_none() {
            changed = Some(KeyCheck::Changed {
                line: i + 1,
                key_type: ktype.to_string(),
                pinned: key.to_string(),
            });
        }
    }
    changed.unwrap_or(KeyCheck::NotFound)
}

/// OpenSSH-style SHA256 fingerprint of a base64 key blob.
pub fn fingerprint(key_b64: &str) -> String {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let blob = STANDARD.decode(key_b64).unwrap_or_default();
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)))
}

/// The shared file, with appends serialised so parallel first contacts do not interleave.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    strict: bool,
    append_lock: Mutex<()>,
}

impl KnownHosts {
    pub fn new(path: PathBuf, strict: bool) -> Self {
        KnownHosts {
            path,
            strict,
            append_lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Verifies (and on first sight records) a presented key.
    pub fn verify(
        &self,
        address: &str,
        port: u16,
        key_type: &str,
        key_b64: &str,
    ) -> Result<(), Box<HostKeyError>> {
        let pattern = host_pattern(address, port);
        // Hold the lock across read and append so two sessions to one host cannot both record.
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        match check(&text, &pattern, key_type, key_b64) {
            KeyCheck::Match => Ok(()),
            KeyCheck::Changed {
                line,
                key_type: pinned_type,
                pinned,
            } => Err(Box::new(HostKeyError::Changed {
                host: pattern,
                file: self.path.clone(),
                line,
                key_type: pinned_type,
                pinned_fp: fingerprint(&pinned),
                offered_fp: fingerprint(key_b64),
            })),
            KeyCheck::NotFound if self.strict => Err(Box::new(HostKeyError::UnknownStrict {
                host: pattern,
                key_type: key_type.to_string(),
                fingerprint: fingerprint(key_b64),
                file: self.path.clone(),
            })),
            KeyCheck::NotFound => self.append(&format!("{pattern} {key_type} {key_b64}\n")),
        }
    }

    fn append(&self, line: &str) -> Result<(), Box<HostKeyError>> {
        let io = |source| {
            Box::new(HostKeyError::Io {
                file: self.path.clone(),
                source,
            })
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "# comment\n127.100.0.2 ssh-ed25519 AAAAkeyA\n[127.100.0.3]:2222 ssh-ed25519 AAAAkeyB\n";

    #[test]
    fn matching_key_is_accepted() {
        assert_eq!(
            check(FILE, "127.100.0.2", "ssh-ed25519", "AAAAkeyA"),
            KeyCheck::Match
        );
        assert_eq!(
            check(
                FILE,
                &host_pattern("127.100.0.3", 2222),
                "ssh-ed25519",
                "AAAAkeyB"
            ),
            KeyCheck::Match
        );
    }

    #[test]
    fn unknown_host_is_not_found() {
        assert_eq!(
            check(FILE, "127.100.0.9", "ssh-ed25519", "AAAAkeyA"),
            KeyCheck::NotFound
        );
        // Same address on another port is another host.
        assert_eq!(
            check(FILE, "[127.100.0.2]:2222", "ssh-ed25519", "AAAAkeyA"),
            KeyCheck::NotFound
        );
    }

    #[test]
    fn different_key_is_changed_with_its_line() {
        assert_eq!(
            check(FILE, "127.100.0.2", "ssh-ed25519", "AAAAother"),
            KeyCheck::Changed {
                line: 2,
                key_type: "ssh-ed25519".into(),
                pinned: "AAAAkeyA".into()
            }
        );
    }

    #[test]
    fn fingerprint_matches_openssh_format() {
        // ssh-keygen -lf prints SHA256:<unpadded base64 of sha256(blob)>.
        let fp =
            fingerprint("AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl");
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 43);
    }

    #[test]
    fn store_records_then_refuses_a_changed_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KnownHosts::new(dir.path().join("known_hosts"), false);
        store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAone")
            .expect("first sight recorded");
        store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAone")
            .expect("same key matches");
        let err = store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAtwo")
            .expect_err("changed key refused");
        assert!(
            err.to_string().contains("HOST KEY CHANGED for 127.1.1.1"),
            "{err}"
        );
        let strict = KnownHosts::new(dir.path().join("known_hosts"), true);
        assert!(strict
            .verify("127.1.1.2", 22, "ssh-ed25519", "AAAAnew")
            .is_err());
    }
}
