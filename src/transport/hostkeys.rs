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
//! unless one of its own keys is pinned. Writes are serialised across processes with `flock` on
//! `known_hosts.lock` and the file is created 0600.
//!
//! Cloud hosts are pinned by instance ID too (`192.0.2.5,i-0abc ssh-ed25519 ...`): a new
//! instance that reuses a private IP is a new host (its key is recorded, the old instance's line
//! dropped), while the same instance presenting another key is refused as a changed key.
//! `sparkboot known-hosts forget HOST` removes a host's lines once a rebuild is confirmed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HostKeyError {
    #[error("HOST KEY CHANGED for {host}: known_hosts {file} line {line} pins a different {key_type} key (pinned {pinned_fp}, offered {offered_fp}). This can mean a man-in-the-middle or a rebuilt node. Once you have confirmed the node was rebuilt, run `sparkboot known-hosts forget {host}` (with the same --config) and run again")]
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
    /// The address is pinned for another instance ID: the instance was replaced. These lines
    /// (1-based) are the old instance's.
    Replaced {
        stale: Vec<usize>,
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

/// The instance IDs (`i-...`) named in a plain hosts field.
fn instances(field: &str) -> impl Iterator<Item = &str> {
    field
        .split(',')
        .filter(|p| p.starts_with("i-") && !p.contains(['*', '?']))
}

/// Pure check of `key_type key_b64` for `host` (a [`host_pattern`]), and for the instance ID a
/// cloud inventory gave, against a known_hosts file's bytes. `Err((line, why))` names a line
/// that is not a known_hosts line.
pub fn check(
    known_hosts: &[u8],
    host: &str,
    instance: Option<&str>,
    key_type: &str,
    key_b64: &str,
) -> Result<KeyCheck, (usize, String)> {
    let entries = entries(known_hosts)?;
    let names =
        |e: &Entry| hosts_match(e.hosts, host) || instance.is_some_and(|i| hosts_match(e.hosts, i));
    let mut authority = None;
    for e in entries.iter().filter(|e| names(e)) {
        let same_key = e.key_type == key_type && e.key == key_b64;
        match e.marker {
            Marker::Revoked if same_key => return Ok(KeyCheck::Revoked { line: e.line }),
            Marker::CertAuthority => {
                authority.get_or_insert(e.line);
            }
            _ => {}
        }
    }
    let plain: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.marker == Marker::None && names(e))
        .collect();
    let changed = |e: &Entry| KeyCheck::Changed {
        line: e.line,
        key_type: e.key_type.to_string(),
        pinned: e.key.to_string(),
    };
    if let Some(id) = instance {
        // This instance's own lines decide: its key, or a changed key (never a replacement).
        let own: Vec<&&Entry> = plain
            .iter()
            .filter(|e| instances(e.hosts).any(|i| i == id))
            .collect();
        if let Some(first) = own.first() {
            let same = own
                .iter()
                .any(|e| e.key_type == key_type && e.key == key_b64);
            return Ok(if same {
                KeyCheck::Match
            } else {
                changed(first)
            });
        }
        // The address is pinned only for other instances: this one replaced them.
        let stale: Vec<usize> = plain
            .iter()
            .filter(|e| hosts_match(e.hosts, host) && instances(e.hosts).any(|i| i != id))
            .map(|e| e.line)
            .collect();
        if !stale.is_empty() && stale.len() == plain.len() {
            return Ok(KeyCheck::Replaced { stale });
        }
    }
    if plain
        .iter()
        .any(|e| e.key_type == key_type && e.key == key_b64)
    {
        return Ok(KeyCheck::Match);
    }
    if let Some(e) = plain.first() {
        return Ok(changed(e));
    }
    Ok(match authority {
        Some(line) => KeyCheck::CertAuthority { line },
        None => KeyCheck::NotFound,
    })
}

/// The lines `forget` removes for `name` (an address as known_hosts writes it, or an instance
/// ID): plain lines that name it exactly or by hash. Wildcard and `@` lines are never removed:
/// they may cover other hosts.
pub fn lines_naming(known_hosts: &[u8], name: &str) -> Result<Vec<usize>, (usize, String)> {
    Ok(entries(known_hosts)?
        .iter()
        .filter(|e| e.marker == Marker::None)
        .filter(|e| {
            if e.hosts.starts_with("|1|") {
                hosts_match(e.hosts, name)
            } else {
                e.hosts.split(',').any(|p| p == name)
            }
        })
        .map(|e| e.line)
        .collect())
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

/// An exclusive `flock` on `<known_hosts>.lock`, held until dropped (a lock file of its own,
/// because a rewrite replaces the known_hosts file itself).
struct Locked {
    _file: File,
}

impl Locked {
    fn open(path: &Path) -> std::io::Result<Locked> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock)?;
        // SAFETY: flock on a descriptor we own; blocks until no other process holds it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Locked { _file: file })
    }
}

/// Replaces the file's content atomically (temporary file, then rename), 0600.
fn rewrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `bytes` without the 1-based `lines`.
fn without(bytes: &[u8], lines: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if !lines.contains(&(i + 1)) {
            out.extend_from_slice(line);
        }
    }
    out
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

    /// Verifies (and on first sight, unless strict, records) a presented key. `instance` is the
    /// cloud instance ID behind the address, when the inventory knows it.
    pub fn verify(
        &self,
        address: &str,
        port: u16,
        instance: Option<&str>,
        key_type: &str,
        key_b64: &str,
    ) -> Result<(), Box<HostKeyError>> {
        let host = host_pattern(address, port);
        // Check against what is on disk first, without creating anything.
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let text = self.read()?;
        match check(&text, &host, instance, key_type, key_b64).map_err(|e| self.malformed(e))? {
            KeyCheck::Match => Ok(()),
            KeyCheck::NotFound | KeyCheck::Replaced { .. } if self.strict => {
                Err(Box::new(HostKeyError::UnknownStrict {
                    host,
                    key_type: key_type.to_string(),
                    fingerprint: fingerprint(key_b64),
                    file: self.path.clone(),
                }))
            }
            KeyCheck::NotFound | KeyCheck::Replaced { .. } => {
                self.record(&host, instance, key_type, key_b64)
            }
            other => Err(self.refusal(other, host, key_b64)),
        }
    }

    /// Removes every plain line naming `name` (an address, `[address]:port`, or an instance
    /// ID). Returns the 1-based numbers of the lines removed.
    pub fn forget(&self, name: &str) -> Result<Vec<usize>, Box<HostKeyError>> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _locked = Locked::open(&self.path).map_err(|e| self.io(e))?;
        let text = self.read()?;
        let lines = lines_naming(&text, name).map_err(|e| self.malformed(e))?;
        if !lines.is_empty() {
            rewrite(&self.path, &without(&text, &lines)).map_err(|e| self.io(e))?;
        }
        Ok(lines)
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
            KeyCheck::Match | KeyCheck::NotFound | KeyCheck::Replaced { .. } => HostKeyError::Io {
                file,
                source: std::io::Error::other("internal: no refusal to report"),
            },
        })
    }

    /// Records the key under the cross-process lock, re-checking first: another run may have
    /// recorded this host (possibly with another key) since the file was read. A replaced
    /// instance's old lines go in the same write.
    fn record(
        &self,
        host: &str,
        instance: Option<&str>,
        key_type: &str,
        key_b64: &str,
    ) -> Result<(), Box<HostKeyError>> {
        let _locked = Locked::open(&self.path).map_err(|e| self.io(e))?;
        let text = self.read()?;
        let stale =
            match check(&text, host, instance, key_type, key_b64).map_err(|e| self.malformed(e))? {
                KeyCheck::Match => return Ok(()),
                KeyCheck::NotFound => Vec::new(),
                KeyCheck::Replaced { stale } => stale,
                other => return Err(self.refusal(other, host.to_string(), key_b64)),
            };
        let mut bytes = without(&text, &stale);
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        let names = match instance {
            Some(id) => format!("{host},{id}"),
            None => host.to_string(),
        };
        bytes.extend_from_slice(format!("{names} {key_type} {key_b64}\n").as_bytes());
        rewrite(&self.path, &bytes).map_err(|e| self.io(e))?;
        self.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FILE: &str =
        "# comment\n127.100.0.2 ssh-ed25519 AAAAkeyA\n[127.100.0.3]:2222 ssh-ed25519 AAAAkeyB\n";

    fn chk(file: &str, host: &str, key: &str) -> KeyCheck {
        check(file.as_bytes(), host, None, "ssh-ed25519", key).expect("parses")
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
            check(&bytes, "127.100.0.9", None, "ssh-ed25519", "AAAAx")
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
                check(bad.as_bytes(), "h", None, "ssh-ed25519", "AAAAx")
                    .expect_err(bad)
                    .0,
                1
            );
        }
    }

    #[test]
    fn instance_ids_tell_a_replaced_instance_from_a_tampered_one() {
        let pinned = "127.100.0.5,i-0aaa ssh-ed25519 AAAAkeyA\n";
        let ask = |id: &str, key: &str| {
            check(
                pinned.as_bytes(),
                "127.100.0.5",
                Some(id),
                "ssh-ed25519",
                key,
            )
            .expect("parses")
        };
        assert_eq!(ask("i-0aaa", "AAAAkeyA"), KeyCheck::Match);
        assert!(matches!(
            ask("i-0aaa", "AAAAkeyB"),
            KeyCheck::Changed { line: 1, .. }
        ));
        assert_eq!(
            ask("i-0bbb", "AAAAkeyB"),
            KeyCheck::Replaced { stale: vec![1] }
        );
        // Without an instance ID to go by (a static inventory), another key is a changed key.
        assert!(matches!(
            check(
                pinned.as_bytes(),
                "127.100.0.5",
                None,
                "ssh-ed25519",
                "AAAAkeyB"
            ),
            Ok(KeyCheck::Changed { .. })
        ));
        // An address pinned without an instance ID cannot be told apart either.
        let bare = "127.100.0.5 ssh-ed25519 AAAAkeyA\n";
        assert!(matches!(
            check(
                bare.as_bytes(),
                "127.100.0.5",
                Some("i-0bbb"),
                "ssh-ed25519",
                "AAAAkeyB"
            ),
            Ok(KeyCheck::Changed { .. })
        ));
    }

    #[test]
    fn a_replacement_is_recorded_in_place_and_forget_removes_only_that_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            "127.1.1.1,i-0aaa ssh-ed25519 AAAAold1\n127.1.1.2 ssh-ed25519 AAAAkeep\n10.9.9.* ssh-ed25519 AAAAwild\n",
        )
        .expect("write");
        let store = KnownHosts::new(path.clone(), false);
        store
            .verify("127.1.1.1", 22, Some("i-0bbb"), "ssh-ed25519", "AAAAnew1")
            .expect("a new instance at a reused address is recorded");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("AAAAold1") && text.contains("127.1.1.1,i-0bbb ssh-ed25519 AAAAnew1"),
            "{text}"
        );
        // Lines are numbered as the file stands: the replaced line went, the new one is last.
        assert_eq!(store.forget("127.1.1.2").expect("forget"), vec![1]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("AAAAkeep") && text.contains("AAAAwild") && text.contains("AAAAnew1"),
            "{text}"
        );
        assert_eq!(store.forget("i-0bbb").expect("forget by id").len(), 1);
        assert!(store.forget("127.9.9.9").expect("nothing").is_empty());
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
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
            .verify("127.1.1.1", 22, None, "ssh-ed25519", "AAAAone1")
            .expect("first sight recorded");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        store
            .verify("127.1.1.1", 22, None, "ssh-ed25519", "AAAAone1")
            .expect("same key matches");
        assert!(store.knows("127.1.1.1", 22).expect("reads"));
        assert!(!store.knows("127.1.1.2", 22).expect("reads"));
        let err = store
            .verify("127.1.1.1", 22, None, "ssh-ed25519", "AAAAtwo2")
            .expect_err("changed key refused");
        assert!(
            err.to_string().contains("HOST KEY CHANGED for 127.1.1.1"),
            "{err}"
        );
        let strict = KnownHosts::new(path.clone(), true);
        assert!(!strict.is_new());
        assert!(strict
            .verify("127.1.1.2", 22, None, "ssh-ed25519", "AAAAnew1")
            .is_err());
        std::fs::write(&path, b"\xff\n").expect("write");
        let err = store
            .verify("127.1.1.1", 22, None, "ssh-ed25519", "AAAAone1")
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
                        let _ = store.verify(
                            &format!("127.9.0.{h}"),
                            22,
                            None,
                            "ssh-ed25519",
                            "AAAAkkkk",
                        );
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
