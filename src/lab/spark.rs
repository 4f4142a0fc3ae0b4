//! Spark for the lab: a Spark-shaped release tarball built from the PyPI `pyspark` sdist and
//! served over HTTP from a lab (loopback) address, so that `converge` runs its real download and
//! checksum path without the internet.
//!
//! The sdist carries a Spark distribution under `pyspark-X/deps/`; we copy its `bin/`, `sbin/`
//! and `jars/` into `spark-X-bin-hadoop3/`, its `lib/*.zip` (pyspark and py4j) into
//! `python/lib/` where spark-submit looks for them, add an empty `conf/` and a `RELEASE` file, and write
//! the `.sha512` beside it in the one-line format of recent Apache releases. The result is built
//! once per version (`lab up --spark-version`, default the built-in `[spark] version`) and
//! cached outside the lab dir (`$SPARKBOOT_CACHE/lab-spark`, default /var/cache/sparkboot), so
//! `lab down` leaves nothing behind yet the next `lab up` is fast; every version built there is
//! served, so a lab can converge one release and then upgrade to another. Output is written
//! under a temporary name and renamed, checksum last, so an interrupted build never looks
//! finished. pyspark 3.5.7 and 4.3.0 both carry `deps/{bin,sbin,jars}` (4.3.0's jars name
//! Hadoop 3.5.0, hadoop-client-api-3.5.0.jar; 3.5.7's Hadoop 3.3.4).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha512};

use super::LabError;

pub const PACKAGE: &str = "bin-hadoop3";
/// Fixed mtime for the entries we add, so that two builds give byte-identical tarballs.
const MTIME: u64 = 1_758_142_800;

pub fn tarball_name(version: &str) -> String {
    format!("spark-{version}-{PACKAGE}.tgz")
}

/// A version the lab can build: digits and dots only, since it names files and a pip
/// requirement.
pub fn check_version(version: &str) -> Result<(), LabError> {
    let ok = !version.is_empty()
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(LabError::SparkBuild {
            sdist: cache_dir().join("pypi"),
            message: format!(
                "--spark-version {version:?} must be a release number such as {}",
                crate::spark::release::DEFAULT_VERSION
            ),
        })
    }
}

/// `$SPARKBOOT_CACHE`, or /var/cache/sparkboot.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SPARKBOOT_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sparkboot"))
}

/// Makes sure the tarball and its .sha512 exist in the cache; returns the directory to serve.
/// A lock serialises concurrent builders (parallel tests); the loser finds the work done.
pub fn ensure_tarball(python: &Path, version: &str) -> Result<PathBuf, LabError> {
    check_version(version)?;
    let cache = cache_dir();
    let out_dir = cache.join("lab-spark");
    let name = tarball_name(version);
    let tarball = out_dir.join(&name);
    let checksum = out_dir.join(format!("{name}.sha512"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| LabError::io("create the Spark cache dir", &out_dir, e))?;
    let lock_path = out_dir.join(".build.lock");
    let lock = File::create(&lock_path).map_err(|e| LabError::io("create", &lock_path, e))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(LabError::io("lock", &lock_path, io::Error::last_os_error()));
    }
    let stamp = out_dir.join(format!("{name}.build"));
    let current = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == BUILD);
    if tarball.is_file() && checksum.is_file() && current {
        return Ok(out_dir);
    }
    let sdist = ensure_sdist(python, &cache, version)?;
    eprintln!(
        "lab: building {name} from {} (once; cached in {})",
        sdist.display(),
        out_dir.display()
    );
    let build_err = |message: String| LabError::SparkBuild {
        sdist: sdist.clone(),
        message,
    };
    let tmp = out_dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> io::Result<String> {
        let input = BufReader::with_capacity(1 << 20, File::open(&sdist)?);
        let output = HashingWriter::new(BufWriter::with_capacity(1 << 20, File::create(&tmp)?));
        let output = build(input, output, version)?;
        let (file, digest) = output.finish()?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(digest)
    })();
    let digest = result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        build_err(e.to_string())
    })?;
    std::fs::rename(&tmp, &tarball).map_err(|e| LabError::io("rename into place", &tarball, e))?;
    let line = format!("{digest}  {name}\n");
    super::state::write_atomic(&checksum, line.as_bytes(), 0o644)?;
    super::state::write_atomic(&stamp, format!("{BUILD}\n").as_bytes(), 0o644)?;
    Ok(out_dir)
}

/// The SHA-512 of the cached tarball, from the `.sha512` written beside it. The lab's config pins
/// it: its server speaks plain HTTP, and a checksum fetched over plain HTTP from the archive's
/// own origin proves nothing.
pub fn cached_sha512(version: &str) -> Result<String, LabError> {
    let path = cache_dir()
        .join("lab-spark")
        .join(format!("{}.sha512", tarball_name(version)));
    let text = std::fs::read_to_string(&path).map_err(|e| LabError::io("read", &path, e))?;
    crate::spark::checksum::parse_sha512(&text, &tarball_name(version)).map_err(|message| {
        LabError::SparkBuild {
            sdist: path.clone(),
            message,
        }
    })
}

/// Finds the sdist in `<cache>/pypi/`, downloading it with pip when it is missing.
fn ensure_sdist(python: &Path, cache: &Path, version: &str) -> Result<PathBuf, LabError> {
    let pypi = cache.join("pypi");
    let sdist = pypi.join(format!("pyspark-{version}.tar.gz"));
    if sdist.is_file() {
        return Ok(sdist);
    }
    eprintln!(
        "lab: downloading pyspark=={version} from PyPI into {}",
        pypi.display()
    );
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
        ])
        .arg(&pypi)
        .arg(format!("pyspark=={version}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io("run pip download into", &pypi, e))?;
    if output.status.success() && sdist.is_file() {
        return Ok(sdist);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(LabError::CommandFailed {
        command: format!("python3 -m pip download pyspark=={version}"),
        what: sdist.display().to_string(),
        detail: format!(
            "{}; install pip (apt-get install python3-pip) or place the sdist there by hand",
            stderr.lines().last().unwrap_or("no output").trim()
        ),
    })
}

/// A writer that hashes what passes through it (the .sha512 is computed while writing).
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha512,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha512::new(),
        }
    }
    pub fn finish(mut self) -> io::Result<(W, String)> {
        self.inner.flush()?;
        Ok((self.inner, hex::encode(self.hasher.finalize())))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn dir_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Streams the sdist (gzip tar) into a Spark-shaped gzip tar; returns the output writer.
/// What a cached tarball holds; a tarball built to an older layout is built again. 2: Python's
/// `python/lib/{pyspark,py4j-*-src}.zip` too, where spark-submit finds them for Python apps as
/// in a real release.
const BUILD: &str = "2 bin sbin jars python/lib";

pub fn build<R: Read, W: Write>(sdist: R, out: W, version: &str) -> io::Result<W> {
    let top = format!("spark-{version}-{PACKAGE}");
    let deps = PathBuf::from(format!("pyspark-{version}")).join("deps");
    let mut builder = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
    let python_lib = PathBuf::from(format!("pyspark-{version}")).join("lib");
    for dir in ["", "bin", "sbin", "jars", "conf", "python", "python/lib"] {
        builder.append_data(&mut dir_header(), Path::new(&top).join(dir), io::empty())?;
    }
    let release = format!(
        "Spark {version} built for Hadoop 3\n\
         Repackaged by `sparkboot lab` from PyPI pyspark-{version}.tar.gz (bin, sbin, jars and python/lib only).\n"
    );
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(release.len() as u64);
    header.set_mtime(MTIME);
    builder.append_data(
        &mut header,
        Path::new(&top).join("RELEASE"),
        release.as_bytes(),
    )?;

    let mut archive = tar::Archive::new(GzDecoder::new(sdist));
    let mut copied = 0usize;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // pyspark.zip and py4j's zip: what a release has in python/lib.
        if let Ok(zip) = path.strip_prefix(&python_lib) {
            let is_zip = zip.components().count() == 1
                && zip.extension().is_some_and(|e| e == "zip")
                && entry.header().entry_type().is_file();
            if is_zip {
                let mut header = tar::Header::new_gnu();
                header.set_mtime(entry_mtime(&mut entry));
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(entry.size());
                let target = Path::new(&top).join("python/lib").join(zip);
                builder.append_data(&mut header, &target, &mut entry)?;
            }
            continue;
        }
        let Ok(rest) = path.strip_prefix(&deps) else {
            continue;
        };
        let kind = rest
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let Some(kind) = kind.filter(|k| matches!(k.as_str(), "bin" | "sbin" | "jars")) else {
            continue;
        };
        let target = Path::new(&top).join(rest);
        let executable = kind != "jars";
        let mtime = entry_mtime(&mut entry);
        let source = entry.header();
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        match source.entry_type() {
            tar::EntryType::Directory if rest.components().count() > 1 => {
                builder.append_data(&mut dir_header(), &target, io::empty())?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(entry.size());
                builder.append_data(&mut header, &target, &mut entry)?;
                copied += 1;
            }
            tar::EntryType::Symlink => {
                if let Some(link) = entry.link_name()? {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, &target, link)?;
                }
            }
            _ => {}
        }
    }
    if copied == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no files under {}/{{bin,sbin,jars}}", deps.display()),
        ));
    }
    builder.into_inner()?.finish()
}

/// The entry's modification time: PAX `mtime` when present (the sdist is a PAX archive whose
/// ustar fields hold 0), else the header's, else our fixed time.
fn entry_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> u64 {
    let pax = entry.pax_extensions().ok().flatten().and_then(|exts| {
        exts.filter_map(Result::ok)
            .find(|e| e.key() == Ok("mtime"))
            .and_then(|e| e.value().ok()?.split('.').next()?.parse::<u64>().ok())
    });
    pax.or_else(|| entry.header().mtime().ok().filter(|m| *m > 0))
        .unwrap_or(MTIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sdist(version: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let files = [
            (format!("pyspark-{version}/deps/bin/spark-submit"), 0o644),
            (
                format!("pyspark-{version}/deps/sbin/spark-daemon.sh"),
                0o644,
            ),
            (format!("pyspark-{version}/deps/jars/spark-core.jar"), 0o644),
            (format!("pyspark-{version}/deps/examples/skip.py"), 0o644),
            (format!("pyspark-{version}/setup.py"), 0o644),
            (format!("pyspark-{version}/lib/pyspark.zip"), 0o644),
            (
                format!("pyspark-{version}/lib/py4j-0.10.9.9-src.zip"),
                0o644,
            ),
            (format!("pyspark-{version}/lib/README.txt"), 0o644),
        ];
        for (path, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(3);
            header.set_mode(mode);
            builder
                .append_data(&mut header, &path, &b"abc"[..])
                .expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gz")
    }

    #[test]
    fn builds_a_spark_shaped_tarball_for_each_version_with_run_bits_and_checksum() {
        for version in ["3.5.7", "4.3.0"] {
            let sdist = fake_sdist(version);
            let out = build(&sdist[..], HashingWriter::new(Vec::new()), version).expect("build");
            let (bytes, digest) = out.finish().expect("finish");
            assert_eq!(digest, hex::encode(Sha512::digest(&bytes)));
            let mut archive = tar::Archive::new(GzDecoder::new(&bytes[..]));
            let mut seen = Vec::new();
            for entry in archive.entries().expect("entries") {
                let entry = entry.expect("entry");
                let mode = entry.header().mode().expect("mode");
                seen.push((entry.path().expect("path").display().to_string(), mode));
            }
            let find = |p: &str| {
                let p = format!("spark-{version}-bin-hadoop3/{p}");
                seen.iter()
                    .find(|(path, _)| path.trim_end_matches('/') == p)
                    .map(|(_, m)| *m)
            };
            assert_eq!(find("bin/spark-submit"), Some(0o755), "{version}");
            assert_eq!(find("sbin/spark-daemon.sh"), Some(0o755), "{version}");
            assert_eq!(find("jars/spark-core.jar"), Some(0o644), "{version}");
            assert!(find("conf").is_some());
            assert!(find("RELEASE").is_some());
            // Python apps: spark-submit puts these on the driver's PYTHONPATH.
            assert_eq!(find("python/lib/pyspark.zip"), Some(0o644), "{version}");
            assert_eq!(find("python/lib/py4j-0.10.9.9-src.zip"), Some(0o644));
            assert!(find("python/lib/README.txt").is_none());
            assert!(!seen
                .iter()
                .any(|(p, _)| p.contains("examples") || p.contains("setup.py")));
            let again = build(&sdist[..], HashingWriter::new(Vec::new()), version)
                .expect("build")
                .finish()
                .expect("finish");
            assert_eq!(again.1, digest, "two builds must be byte-identical");
        }
        // The sdist of another version holds nothing under this version's deps/.
        let other = fake_sdist("3.5.7");
        assert!(build(&other[..], HashingWriter::new(Vec::new()), "4.3.0").is_err());
    }

    #[test]
    fn only_release_numbers_name_a_lab_build() {
        assert!(check_version("4.3.0").is_ok());
        for bad in ["", "4.3.0; rm -rf /", "../4", "4..0", "4.3.0rc1"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
