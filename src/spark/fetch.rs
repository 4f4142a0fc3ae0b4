//! Controller-side downloads: the published checksum (always, unless pinned) and, in push mode,
//! the archive itself into a local cache keyed by its checksum, verified before use; and the
//! same for single files (the S3A connector's jars), verified against the strongest checksum
//! their Maven repository publishes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha512};

use super::checksum::parse_sha512;
use super::s3a::{parse_checksum, Algorithm, STRONGEST_FIRST};

/// An https URL may only be redirected to https: ureq follows a redirect to plain http unless
/// the agent is https-only.
fn agent(url: &str) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(120))
        .https_only(url.starts_with("https://"))
        .build()
}

fn open(url: &str) -> Result<Box<dyn Read + Send>, String> {
    open_sized(url).map(|(r, _)| r)
}

/// The body and, when the source says it, its length (a file's size, a Content-Length).
fn open_sized(url: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), String> {
    if let Some(path) = url.strip_prefix("file://") {
        let f = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        let len = f.metadata().ok().map(|m| m.len());
        return Ok((Box::new(f), len));
    }
    let resp = agent(url)
        .get(url)
        .call()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    let len = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    Ok((Box::new(resp.into_reader()), len))
}

/// Reads `<url>.sha512` and returns the archive's SHA-512.
pub fn published_sha512(url: &str) -> Result<String, String> {
    let sum_url = format!("{url}.sha512");
    let mut text = String::new();
    open(&sum_url)?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {sum_url}: {e}"))?;
    let file_name = url.rsplit('/').next().unwrap_or(url);
    parse_sha512(&text, file_name).map_err(|e| format!("{sum_url}: {e}"))
}

/// Copies what `source` serves into a new file `tmp`, handing each chunk to `each` (the
/// hashers) and telling `progress` the bytes so far and the total (when known). Errors name
/// `url`, the address the operator configured.
fn download_into(
    source: &str,
    url: &str,
    tmp: &Path,
    each: &mut dyn FnMut(&[u8]),
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(), String> {
    let (mut reader, total) = open_sized(source)?;
    let mut file =
        std::fs::File::create(tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done: u64 = 0;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("download of {url} broke off: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        done += n as u64;
        progress(done, total);
    }
}

/// Ensures `cache/<sha512>.tgz` holds the verified archive, downloading it once if needed.
/// A partial or corrupt download is never left under the final name. `progress` is told the
/// bytes so far and the total (when known) as the download goes (nothing when the archive is
/// already cached).
pub fn cached_archive_with(
    url: &str,
    sha512: &str,
    cache: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, String> {
    let dest = cache.join(format!("{sha512}.tgz"));
    if dest.exists() {
        return Ok(dest);
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let tmp = cache.join(format!(".{sha512}.partial.{}", std::process::id()));
    let result = (|| {
        let mut hasher = Sha512::new();
        download_into(url, url, &tmp, &mut |chunk| hasher.update(chunk), progress)?;
        let actual = hex::encode(hasher.finalize());
        if actual != sha512 {
            return Err(format!("checksum mismatch for {url}: expected {sha512}, got {actual}; nothing was cached or installed"));
        }
        std::fs::rename(&tmp, &dest)
            .map_err(|e| format!("cannot move the archive into {}: {e}", dest.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| dest)
}

/// A text file's content, `None` when the source says it does not exist (HTTP 404, a missing
/// local file), so a caller can try the next name; any other failure is an error.
fn fetch_optional_text(url: &str) -> Result<Option<String>, String> {
    let reader: Box<dyn Read + Send> = if let Some(path) = url.strip_prefix("file://") {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open {path}: {e}")),
        }
    } else {
        match agent(url).get(url).call() {
            Ok(resp) => Box::new(resp.into_reader()),
            Err(ureq::Error::Status(404, _)) => return Ok(None),
            Err(e) => return Err(format!("cannot download {url}: {e}")),
        }
    };
    let mut text = String::new();
    reader
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {url}: {e}"))?;
    Ok(Some(text))
}

/// The strongest checksum a Maven repository publishes beside `url` (`.sha512`, else
/// `.sha256`, else `.sha1`): the algorithm and the lower-case hex digest.
pub fn published_checksum(url: &str) -> Result<(Algorithm, String), String> {
    let file_name = url.rsplit('/').next().unwrap_or(url);
    for algorithm in STRONGEST_FIRST {
        let sum_url = format!("{url}.{}", algorithm.extension());
        if let Some(text) = fetch_optional_text(&sum_url)? {
            let hex = parse_checksum(&text, algorithm, file_name)
                .map_err(|e| format!("{sum_url} {e}"))?;
            return Ok((algorithm, hex));
        }
    }
    Err(format!(
        "{url} has no published checksum (.sha512, .sha256 or .sha1 beside it); is it in the repository?"
    ))
}

/// Hashes with the algorithm a checksum file named.
enum Hasher {
    Sha512(Sha512),
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha1 => Hasher::Sha1(<sha1::Sha1 as sha1::Digest>::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha1(h) => sha1::Digest::update(h, data),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(sha1::Digest::finalize(h)),
        }
    }
}

/// A verified file in the controller's cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedFile {
    pub path: PathBuf,
    /// Its SHA-256, which nodes compare with what they hold (their probe reports SHA-256).
    pub sha256: String,
}

/// Ensures `cache/<algorithm>-<hex>-<name>` holds the file at `url` whose `algorithm` digest is
/// `hex`, downloading it once: a later call (another converge of the same cluster) finds it and
/// reads nothing from `url`. A download that does not match is refused and nothing is cached.
/// `progress` is told the bytes so far and the total (when known) as the download goes.
pub fn cached_verified_with(
    url: &str,
    algorithm: Algorithm,
    hex: &str,
    cache: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<CachedFile, String> {
    let name = url.rsplit('/').next().unwrap_or("file");
    let key = format!("{}-{hex}-{name}", algorithm.extension());
    let dest = cache.join(&key);
    let sidecar = cache.join(format!("{key}.sha256"));
    if dest.is_file() {
        if let Ok(sum) = std::fs::read_to_string(&sidecar) {
            let sum = sum.trim();
            if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(CachedFile {
                    path: dest,
                    sha256: sum.to_string(),
                });
            }
        }
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let tmp = cache.join(format!(".{key}.partial.{}", std::process::id()));
    let result = (|| {
        // A cached file whose SHA-256 note is missing is checked again, not trusted blindly.
        let source = if dest.is_file() {
            format!("file://{}", dest.display())
        } else {
            url.to_string()
        };
        let mut published = Hasher::new(algorithm);
        let mut sha256 = sha2::Sha256::new();
        download_into(
            &source,
            url,
            &tmp,
            &mut |chunk| {
                published.update(chunk);
                sha256.update(chunk);
            },
            progress,
        )?;
        let actual = published.hex();
        if actual != hex {
            return Err(format!(
                "checksum mismatch for {url}: the repository publishes {} {hex}, the download has {actual}; nothing was cached or installed",
                algorithm.extension()
            ));
        }
        let sum = hex::encode(sha256.finalize());
        std::fs::write(&sidecar, format!("{sum}\n"))
            .map_err(|e| format!("cannot write {}: {e}", sidecar.display()))?;
        std::fs::rename(&tmp, &dest)
            .map_err(|e| format!("cannot move the file into {}: {e}", dest.display()))?;
        Ok(sum)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|sha256| CachedFile { path: dest, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_verifies_and_refuses_a_wrong_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("a.tgz");
        std::fs::write(&src, b"archive bytes").expect("write");
        let url = format!("file://{}", src.display());
        let good = hex::encode(Sha512::digest(b"archive bytes"));
        let cache = dir.path().join("cache");
        let mut seen = Vec::new();
        let path = cached_archive_with(&url, &good, &cache, &mut |d, t| seen.push((d, t)))
            .expect("cached");
        assert_eq!(std::fs::read(&path).expect("read"), b"archive bytes");
        assert_eq!(
            seen,
            vec![(13, Some(13))],
            "progress: bytes so far of the file's size"
        );
        seen.clear();
        cached_archive_with(&url, &good, &cache, &mut |d, t| seen.push((d, t))).expect("hit");
        assert!(seen.is_empty(), "a cached archive is not downloaded again");
        let wrong = "0".repeat(128);
        let err = cached_archive_with(&url, &wrong, &cache, &mut |_, _| {}).expect_err("mismatch");
        assert!(err.contains("expected") && err.contains(&good), "{err}");
        assert_eq!(
            std::fs::read_dir(&cache).expect("ls").count(),
            1,
            "no partial file is left behind"
        );
    }

    #[test]
    fn single_files_are_verified_against_the_strongest_published_checksum_and_cached_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        let jar = repo.join("x-1.0.jar");
        std::fs::write(&jar, b"jar bytes").expect("write");
        let sha1 = hex::encode(sha1::Digest::finalize(
            <sha1::Sha1 as sha1::Digest>::new_with_prefix(b"jar bytes"),
        ));
        std::fs::write(repo.join("x-1.0.jar.sha1"), format!("{sha1}\n")).expect("sha1");
        let url = format!("file://{}", jar.display());
        // Only .sha1 published: that one.
        assert_eq!(
            published_checksum(&url),
            Ok((Algorithm::Sha1, sha1.clone()))
        );
        let sha512 = hex::encode(Sha512::digest(b"jar bytes"));
        std::fs::write(
            repo.join("x-1.0.jar.sha512"),
            format!("{sha512}  x-1.0.jar\n"),
        )
        .expect("sha512");
        // The strongest wins.
        assert_eq!(
            published_checksum(&url),
            Ok((Algorithm::Sha512, sha512.clone()))
        );
        let cache = dir.path().join("cache");
        let got = cached_verified_with(&url, Algorithm::Sha512, &sha512, &cache, &mut |_, _| {})
            .expect("cached");
        assert_eq!(std::fs::read(&got.path).expect("read"), b"jar bytes");
        assert_eq!(got.sha256, hex::encode(sha2::Sha256::digest(b"jar bytes")));
        // Cached: the source is not read again.
        std::fs::remove_file(&jar).expect("rm");
        assert_eq!(
            cached_verified_with(&url, Algorithm::Sha512, &sha512, &cache, &mut |_, _| {}),
            Ok(got.clone())
        );
        std::fs::write(&jar, b"tampered").expect("write");
        let wrong = cached_verified_with(&url, Algorithm::Sha1, &sha1, &cache, &mut |_, _| {})
            .expect_err("mismatch");
        assert!(
            wrong.contains("checksum mismatch") && wrong.contains(&sha1),
            "{wrong}"
        );
        let names: Vec<String> = std::fs::read_dir(&cache)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "the jar and its SHA-256 note only: {names:?}"
        );
        std::fs::remove_file(repo.join("x-1.0.jar.sha1")).expect("rm");
        std::fs::remove_file(repo.join("x-1.0.jar.sha512")).expect("rm");
        let none = published_checksum(&url).expect_err("none");
        assert!(none.contains("no published checksum"), "{none}");
    }
}
