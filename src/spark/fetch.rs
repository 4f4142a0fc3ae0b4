//! Controller-side downloads: the published checksum (always, unless pinned) and, in push mode,
//! the archive itself into a local cache keyed by its checksum, verified before use.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha512};

use super::checksum::parse_sha512;

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

/// Ensures `cache/<sha512>.tgz` holds the verified archive, downloading it once if needed.
/// A partial or corrupt download is never left under the final name.
pub fn cached_archive(url: &str, sha512: &str, cache: &Path) -> Result<PathBuf, String> {
    cached_archive_with(url, sha512, cache, &mut |_, _| {})
}

/// [`cached_archive`], telling `progress` the bytes so far and the total (when known) as the
/// download goes (nothing when the archive is already cached).
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
        let (mut reader, total) = open_sized(url)?;
        let mut done: u64 = 0;
        let mut file = std::fs::File::create(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        let mut hasher = Sha512::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("download of {url} broke off: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            done += n as u64;
            progress(done, total);
        }
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
        let err = cached_archive(&url, &wrong, &cache).expect_err("mismatch");
        assert!(err.contains("expected") && err.contains(&good), "{err}");
        assert_eq!(
            std::fs::read_dir(&cache).expect("ls").count(),
            1,
            "no partial file is left behind"
        );
    }
}
