//! Host-key pinning: the per-cluster known_hosts file, read the way OpenSSH reads it and closed
//! wherever OpenSSH is closed.
//!
//! sparkboot keeps its own OpenSSH-format known_hosts under its state directory, so that
//! `sparkboot ssh` (which runs the system `ssh` with `UserKnownHostsFile` pointing here) and the
//! converge engine trust exactly the same keys. A new key is recorded (accept-new) unless
//! `--strict`; a changed key is never accepted: the host fails with both fingerprints and the
//! file and line to remove once the operator has confirmed the change is legitimate.
//!
//! Fail closed: a file that cannot be read, a line that is not UTF-8 or not a known_hosts line,
//! is an error naming the file and line, never "no keys known" (which would accept any key).
//! Hashed host names (`|1|salt|hash`), patterns (`*`, `?`, `!negated`) and `@revoked` are
//! honoured; `@cert-authority` cannot be checked through libssh2, so a host it covers is refused
//! unless one of its own keys is pinned. Appends are serialised across processes with `flock`
//! and the file is created 0600.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
    #[error("host key of {host} ({fingerprint}) is REVOKED by known_hosts {file} line {line}; refusing to connect")]
    Revoked {
        host: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    #[error("known_hosts {file} line {line} names a certificate authority for {host}, and sparkboot cannot verify host certificates (libssh2 has no support); pin the host's own key instead (remove that line, or add the host's key above it)")]
    CertAuthority {
        host: String,
        file: PathBuf,
        line: usize,
    },
    #[error("host key of {host} ({key_type} {fingerprint}) is not in {file} and --strict refuses unknown keys; run once without --strict to record it, or add it to that file")]
    UnknownStrict {
        host: String,
        key_type: String,
        fingerprint: String,
        file: PathBuf,
    },
    #[error("known_hosts {file} line {line} cannot be read: {why}; fix or delete that line (sparkboot will not guess which keys it meant)")]
    Malformed {
        file: PathBuf,
        line: usize,
        why: String,
    },
    #[error("cannot use known_hosts {file}: {source}")]
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
    /// An `@revoked` line lists the offered key.
    Revoked {
        line: usize,
    },
    /// Only an `@cert-authority` line covers the host.
    CertAuthority {
        line: usize,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// One parsed line.
#[derive(Debug)]
struct Entry<'a> {
    line: usize,
    marker: Marker,
    hosts: &'a str,
    key_type: &'a str,
    key: &'a str,
}

/// Parses every line, failing on the first that is not a known_hosts line.
fn entries(text: &[u8]) -> Result<Vec<Entry<'_>>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| (line_no, "it is not UTF-8 text".to_string()))?
            .trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            m if m.starts_with('@') => {
                return Err((line_no, format!("unknown marker {m:?}")));
            }
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next().unwrap_or_default();
        }
        let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
            return Err((
                line_no,
                "expected `[marker] hosts key-type base64-key [comment]`".to_string(),
            ));
        };
        if first.is_empty() {
            return Err((line_no, "no host names".to_string()));
        }
        if decode(key).is_none() {
            return Err((line_no, "the key is not base64".to_string()));
        }
        if first.starts_with("|1|") && hashed_parts(first).is_none() {
            return Err((
                line_no,
                "a hashed host name must be |1|salt|hash".to_string(),
            ));
        }
        out.push(Entry {
            line: line_no,
            marker,
            hosts: first,
            key_type,
            key,
        });
    }
    Ok(out)
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    STANDARD.decode(b64).ok().filter(|b| !b.is_empty())
}

fn hashed_parts(field: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = field.strip_prefix("|1|")?;
    let (salt, hash) = rest.split_once('|')?;
    let (salt, hash) = (decode(salt)?, decode(hash)?);
    (salt.len() == 20 && hash.len() == 20).then_some((salt, hash))
}

/// OpenSSH's glob: `*` any run of characters, `?` one character.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, nrest)| n.eq_ignore_ascii_case(c) && glob(rest, nrest)),
    }
}

/// Whether the hosts field of a line names `host` (as known_hosts writes it). A negated pattern
/// that matches wins over every other pattern on the line, as in OpenSSH.
fn hosts_match(field: &str, host: &str) -> bool {
    if field.starts_with("|1|") {
        use hmac::{KeyInit, Mac};
        let Some((salt, hash)) = hashed_parts(field) else {
            return false;
        };
        let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(host.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob(pattern.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// Pure check of `key_type key_b64` for `host` (a [`host_pattern`]) against a known_hosts
/// file's bytes. `Err((line, why))` names a line that is not a known_hosts line.
pub fn check(
    known_hosts: &[u8],
    host: &str,
    key_type: &str,
    key_b64: &str,
) -> Result<KeyCheck, (usize, String)> {
    let mut changed = None;
    let mut authority = None;
    let mut matched = false;
    for e in entries(known_hosts)? {
        if !hosts_match(e.hosts, host) {
            continue;
        }
        let same_key = e.key_type == key_type && e.key == key_b64;
        match e.marker {
            Marker::Revoked if same_key => return Ok(KeyCheck::Revoked { line: e.line }),
            Marker::Revoked => {}
            Marker::CertAuthority => {
                authority.get_or_insert(e.line);
            }
            Marker::None if same_key => matched = true,
            Marker::None => {
                changed.get_or_insert(KeyCheck::Changed {
                    line: e.line,
                    key_type: e.key_type.to_string(),
                    pinned: e.key.to_string(),
                });
            }
        }
    }
    if matched {
        return Ok(KeyCheck::Match);
    }
    if let Some(c) = changed {
        return Ok(c);
    }
    Ok(match authority {
        Some(line) => KeyCheck::CertAuthority { line },
        None => KeyCheck::NotFound,
    })
}

/// Whether `host` has any plain key pinned (the file is read as [`check`] reads it).
pub fn is_pinned(known_hosts: &[u8], host: &str) -> Result<bool, (usize, String)> {
    Ok(entries(known_hosts)?
        .iter()
        .any(|e| e.marker == Marker::None && hosts_match(e.hosts, host)))
}

/// OpenSSH-style SHA256 fingerprint of a base64 key blob.
pub fn fingerprint(key_b64: &str) -> String {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let blob = decode(key_b64).unwrap_or_default();
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)))
}

/// The shared file, with appends serialised within this process (a mutex) and across processes
/// (`flock` on the file itself).
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    strict: bool,
    lock: Mutex<()>,
    /// Whether the file existed when this run started (a new file for a cluster that was
    /// converged before means the state dir is not the one that was used then).
    existed_at_start: bool,
    /// Keys this run recorded on first sight.
    recorded: AtomicUsize,
}

/// An exclusive `flock` held until dropped.
struct Locked(File);

impl Locked {
    fn open(path: &Path) -> std::io::Result<Locked> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        // SAFETY: flock on a descriptor we own; blocks until no other process holds it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Locked(file))
    }
}

use std::os::unix::fs::DirBuilderExt;

impl KnownHosts {
    pub fn new(path: PathBuf, strict: bool) -> Self {
        let existed_at_start = path.exists();
        KnownHosts {
            path,
            strict,
            lock: Mutex::new(()),
            existed_at_start,
            recorded: AtomicUsize::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file did not exist when this run started.
    pub fn is_new(&self) -> bool {
        !self.existed_at_start
    }

    /// How many keys this run recorded on first sight.
    pub fn recorded(&self) -> usize {
        self.recorded.load(Ordering::Relaxed)
    }

    fn io(&self, source: std::io::Error) -> Box<HostKeyError> {
        Box::new(HostKeyError::Io {
            file: self.path.clone(),
            source,
        })
    }

    fn malformed(&self, (line, why): (usize, String)) -> Box<HostKeyError> {
        Box::new(HostKeyError::Malformed {
            file: self.path.clone(),
            line,
            why,
        })
    }

    /// Reads the whole file; a missing file is empty, anything else unreadable is an error.
    fn read(&self) -> Result<Vec<u8>, Box<HostKeyError>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Whether `address:port` has a key pinned: hosts sparkboot has configured before.
    pub fn knows(&self, address: &str, port: u16) -> Result<bool, Box<HostKeyError>> {
        let text = self.read()?;
        is_pinned(&text, &host_pattern(address, port)).map_err(|e| self.malformed(e))
    }

    /// Verifies (and on first sight, unless strict, records) a presented key.
    pub fn verify(
        &self,
        address: &str,
        port: u16,
        key_type: &str,
        key_b64: &str,
    ) -> Result<(), Box<HostKeyError>> {
        let host = host_pattern(address, port);
        // Check against what is on disk first, without creating anything.
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let text = self.read()?;
        match check(&text, &host, key_type, key_b64).map_err(|e| self.malformed(e))? {
            KeyCheck::Match => Ok(()),
            KeyCheck::NotFound if self.strict => Err(Box::new(HostKeyError::UnknownStrict {
                host,
                key_type: key_type.to_string(),
                fingerprint: fingerprint(key_b64),
                file: self.path.clone(),
            })),
            KeyCheck::NotFound => self.record(&host, key_type, key_b64),
            other => Err(self.refusal(other, host, key_b64)),
        }
    }

    fn refusal(&self, found: KeyCheck, host: String, key_b64: &str) -> Box<HostKeyError> {
        let file = self.path.clone();
        Box::new(match found {
            KeyCheck::Changed {
                line,
                key_type,
                pinned,
            } => HostKeyError::Changed {
                host,
                file,
                line,
                key_type,
                pinned_fp: fingerprint(&pinned),
                offered_fp: fingerprint(key_b64),
            },
            KeyCheck::Revoked { line } => HostKeyError::Revoked {
                host,
                fingerprint: fingerprint(key_b64),
                file,
                line,
            },
            KeyCheck::CertAuthority { line } => HostKeyError::CertAuthority { host, file, line },
            KeyCheck::Match | KeyCheck::NotFound => HostKeyError::Io {
                file,
                source: std::io::Error::other("internal: no refusal to report"),
            },
        })
    }

    /// Appends the key under the cross-process lock, re-checking first: another run may have
    /// recorded this host (possibly with another key) since the file was read.
    fn record(&self, host: &str, key_type: &str, key_b64: &str) -> Result<(), Box<HostKeyError>> {
        let mut locked = Locked::open(&self.path).map_err(|e| self.io(e))?;
        let mut text = Vec::new();
        locked.0.rewind().map_err(|e| self.io(e))?;
        locked.0.read_to_end(&mut text).map_err(|e| self.io(e))?;
        match check(&text, host, key_type, key_b64).map_err(|e| self.malformed(e))? {
            KeyCheck::Match => Ok(()),
            KeyCheck::NotFound => {
                let mut line = String::new();
                if !text.is_empty() && !text.ends_with(b"\n") {
                    line.push('\n');
                }
                line.push_str(&format!("{host} {key_type} {key_b64}\n"));
                locked
                    .0
                    .write_all(line.as_bytes())
                    .map_err(|e| self.io(e))?;
                self.recorded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            other => Err(self.refusal(other, host.to_string(), key_b64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FILE: &str =
        "# comment\n127.100.0.2 ssh-ed25519 AAAAkeyA\n[127.100.0.3]:2222 ssh-ed25519 AAAAkeyB\n";

    fn chk(file: &str, host: &str, key: &str) -> KeyCheck {
        check(file.as_bytes(), host, "ssh-ed25519", key).expect("parses")
    }

    #[test]
    fn matching_key_is_accepted() {
        assert_eq!(chk(FILE, "127.100.0.2", "AAAAkeyA"), KeyCheck::Match);
        assert_eq!(
            chk(FILE, &host_pattern("127.100.0.3", 2222), "AAAAkeyB"),
            KeyCheck::Match
        );
    }

    #[test]
    fn unknown_host_is_not_found() {
        assert_eq!(chk(FILE, "127.100.0.9", "AAAAkeyA"), KeyCheck::NotFound);
        // Same address on another port is another host.
        assert_eq!(
            chk(FILE, "[127.100.0.2]:2222", "AAAAkeyA"),
            KeyCheck::NotFound
        );
    }

    #[test]
    fn different_key_is_changed_with_its_line() {
        assert_eq!(
            chk(FILE, "127.100.0.2", "AAAAother"),
            KeyCheck::Changed {
                line: 2,
                key_type: "ssh-ed25519".into(),
                pinned: "AAAAkeyA".into()
            }
        );
    }

    #[test]
    fn hashed_names_match_like_openssh() {
        // Written by `ssh-keygen -H` for 127.100.0.2 (salt and HMAC-SHA1 of the name).
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).expect("key");
        mac.update(b"127.100.0.2");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} ssh-ed25519 AAAAkeyA\n",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        );
        assert_eq!(chk(&line, "127.100.0.2", "AAAAkeyA"), KeyCheck::Match);
        assert!(matches!(
            chk(&line, "127.100.0.2", "AAAAother"),
            KeyCheck::Changed { line: 1, .. }
        ));
        assert_eq!(chk(&line, "127.100.0.3", "AAAAkeyA"), KeyCheck::NotFound);
    }

    #[test]
    fn patterns_and_negation() {
        let file = "127.100.0.*,!127.100.0.9 ssh-ed25519 AAAAkeyA\n";
        assert_eq!(chk(file, "127.100.0.5", "AAAAkeyA"), KeyCheck::Match);
        assert!(matches!(
            chk(file, "127.100.0.5", "AAAAother"),
            KeyCheck::Changed { .. }
        ));
        assert_eq!(chk(file, "127.100.0.9", "AAAAother"), KeyCheck::NotFound);
        assert_eq!(
            chk(
                "127.100.0.? ssh-ed25519 AAAAkeyA\n",
                "127.100.0.7",
                "AAAAkeyA"
            ),
            KeyCheck::Match
        );
    }

    #[test]
    fn revoked_and_cert_authority_lines_are_never_ignored() {
        let file = "@revoked * ssh-ed25519 AAAAbadA\n127.100.0.2 ssh-ed25519 AAAAbadA\n";
        assert_eq!(
            chk(file, "127.100.0.2", "AAAAbadA"),
            KeyCheck::Revoked { line: 1 }
        );
        let ca = "@cert-authority *.example.com,127.100.* ssh-ed25519 AAAAcaAA\n";
        assert_eq!(
            chk(ca, "127.100.0.2", "AAAAkeyA"),
            KeyCheck::CertAuthority { line: 1 }
        );
        // A pinned key of the host itself still counts.
        let both = format!("{ca}127.100.0.2 ssh-ed25519 AAAAkeyA\n");
        assert_eq!(chk(&both, "127.100.0.2", "AAAAkeyA"), KeyCheck::Match);
    }

    #[test]
    fn unreadable_lines_are_errors_with_their_number() {
        let mut bytes = b"127.100.0.2 ssh-ed25519 AAAAkeyA\n".to_vec();
        bytes.extend_from_slice(b"127.100.0.3 ssh-ed25519 \xff\xfe\n");
        assert_eq!(
            check(&bytes, "127.100.0.9", "ssh-ed25519", "AAAAx")
                .expect_err("not utf-8")
                .0,
            2
        );
        for bad in [
            "127.100.0.2 ssh-ed25519\n",
            "@weird 127.100.0.2 ssh-ed25519 AAAAkeyA\n",
            "127.100.0.2 ssh-ed25519 not*base64\n",
            "|1|abc ssh-ed25519 AAAAkeyA\n",
        ] {
            assert_eq!(
                check(bad.as_bytes(), "h", "ssh-ed25519", "AAAAx")
                    .expect_err(bad)
                    .0,
                1
            );
        }
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
    fn store_records_0600_then_refuses_a_changed_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/known_hosts");
        let store = KnownHosts::new(path.clone(), false);
        assert!(store.is_new());
        store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAone1")
            .expect("first sight recorded");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAone1")
            .expect("same key matches");
        assert!(store.knows("127.1.1.1", 22).expect("reads"));
        assert!(!store.knows("127.1.1.2", 22).expect("reads"));
        let err = store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAtwo2")
            .expect_err("changed key refused");
        assert!(
            err.to_string().contains("HOST KEY CHANGED for 127.1.1.1"),
            "{err}"
        );
        let strict = KnownHosts::new(path.clone(), true);
        assert!(!strict.is_new());
        assert!(strict
            .verify("127.1.1.2", 22, "ssh-ed25519", "AAAAnew1")
            .is_err());
        std::fs::write(&path, b"\xff\n").expect("write");
        let err = store
            .verify("127.1.1.1", 22, "ssh-ed25519", "AAAAone1")
            .expect_err("garbage is not an empty file");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn parallel_recorders_in_separate_stores_write_each_host_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Separate stores, as two processes would have.
                    let store = KnownHosts::new(path, false);
                    for h in 0..20 {
                        let _ =
                            store.verify(&format!("127.9.0.{h}"), 22, "ssh-ed25519", "AAAAkkkk");
                    }
                    i
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 20, "{text}");
    }
}
