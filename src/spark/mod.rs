//! What sparkboot knows about Spark itself: its settings, the published checksum, the push-mode
//! cache, staging in S3 (`s3.rs`), the cluster's authentication secret, and how to tell that
//! workers registered.
//!
//! [`prepare`] runs on the controller before any host is contacted and turns the `[spark]`
//! settings into the values the roles under roles/ render with (`spark.*`).

pub mod checksum;
pub mod cluster;
pub mod context;
pub mod fetch;
pub mod layout;
pub mod registration;
pub mod release;
pub mod s3;
pub mod settings;
pub mod upgrade;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use settings::Distribution;

#[derive(Debug, Error)]
pub enum SparkError {
    #[error("cannot find the Spark checksum: {0}; pin it with spark.sha512 in the config, or check spark.source")]
    Checksum(String),
    #[error("push mode: {0}")]
    Push(String),
    #[error("s3 distribution: {0}")]
    S3(String),
    #[error("cluster secret {path}: {message}")]
    Secret { path: PathBuf, message: String },
}

/// Everything the roles need that sparkboot computes.
pub struct Prepared {
    pub context: context::TemplateValues,
    /// Values to redact from every diff, error and report.
    pub secrets: Vec<String>,
    /// Verified local archives for push mode, by sha512.
    pub pushed: BTreeMap<String, PathBuf>,
    /// Set when this run created the cluster's Spark secret (its path).
    pub created_secret: Option<PathBuf>,
}

/// Reads the cluster's Spark authentication secret from the state dir, creating it (0600) on
/// first use. It stays the same across runs, so daemons are not restarted for a new secret.
/// The flag says whether this call created it.
pub fn cluster_secret(state_dir: &Path) -> Result<(String, bool), SparkError> {
    state_secret(state_dir, "spark-auth-secret")
}

/// The Spark Connect server's token, made and kept like the cluster secret.
pub const CONNECT_TOKEN_FILE: &str = "spark-connect-token";

/// A random secret kept in the state dir as `name` (0600), made on first use.
pub fn state_secret(state_dir: &Path, name: &str) -> Result<(String, bool), SparkError> {
    let path = state_dir.join(name);
    let err = |message: String| SparkError::Secret {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok((text.trim().to_string(), false)),
        Ok(_) => {
            return Err(err(
                "exists but is shorter than 32 characters; delete it to generate a new one".into(),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e.to_string())),
    }
    std::fs::create_dir_all(state_dir).map_err(|e| err(e.to_string()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| err(e.to_string()))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .map_err(|e| err(e.to_string()))?;
    Ok((secret, true))
}

/// `cloud` is where a cloud inventory found the cluster (the bucket for `distribution = "s3"`);
/// with `check`, nothing is uploaded.
pub fn prepare_for(
    config: &Config,
    layout: &layout::Layout,
    cloud: Option<&crate::inventory::aws::Cloud>,
    check: bool,
    progress: &crate::report::Progress,
) -> Result<Prepared, SparkError> {
    let s = &config.spark;
    let sha512 = match &s.sha512 {
        Some(pinned) => pinned.clone(),
        None => fetch::published_sha512(&s.url).map_err(SparkError::Checksum)?,
    };
    let mut pushed = BTreeMap::new();
    let cache = config
        .state_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join("cache/spark");
    if s.distribution == Distribution::Push {
        // The controller's own download (push mode) gets a progress line of its own while it
        // runs: from a slow mirror it is the longest wait of a first converge.
        let mut bar = None;
        let started = std::time::Instant::now();
        let mut drawn: Option<std::time::Instant> = None;
        let cached = fetch::cached_archive_with(&s.url, &sha512, &cache, &mut |done, total| {
            // Reads come in 8-64 KiB: redraw five times a second, and at the end.
            let now = std::time::Instant::now();
            let end = total.is_some_and(|t| done >= t);
            if !end && drawn.is_some_and(|t| now.duration_since(t).as_millis() < 200) {
                return;
            }
            drawn = Some(now);
            bar.get_or_insert_with(|| progress.host("controller"))
                .transfer(
                    "Cache the Spark archive",
                    ("downloading", "downloaded"),
                    done,
                    total,
                    started,
                )
        });
        if let Some(b) = bar {
            b.clear();
        }
        let path = cached.map_err(SparkError::Push)?;
        pushed.insert(sha512.clone(), path);
    }
    let mut secrets = Vec::new();
    let url = if s.distribution == Distribution::S3 {
        let presigned = s3::stage(config, cloud, &sha512, &cache, check)?;
        // A bearer credential for the archive until it expires: redacted everywhere.
        secrets.push(presigned.clone());
        presigned
    } else {
        s.url.clone()
    };
    let mut created_secret = None;
    let secret = if s.authenticate {
        let (v, created) = cluster_secret(&config.state_dir)?;
        if created {
            created_secret = Some(config.state_dir.join("spark-auth-secret"));
        }
        secrets.push(v.clone());
        v
    } else {
        String::new()
    };
    // The Connect server runs any code a client sends, as the spark user: clients present this
    // token (made once per cluster, kept in the state dir, never in argv), and reach the
    // server only through `sparkboot tunnel`.
    let connect_token = if s.connect_server {
        let (v, _) = state_secret(&config.state_dir, CONNECT_TOKEN_FILE)?;
        secrets.push(v.clone());
        v
    } else {
        String::new()
    };
    let source = if s.distribution == Distribution::Push {
        "push"
    } else {
        "url"
    };
    let mut spark = context::SparkContext::new(s, layout, url, sha512, source);
    if s.event_log == settings::EventLog::S3 {
        spark.event_log_dir = s3::event_log_uri(config, cloud)?;
    }
    let context = context::TemplateValues {
        spark,
        secrets: context::Secrets {
            spark_auth: secret,
            connect_token,
        },
    };
    Ok(Prepared {
        context,
        secrets,
        pushed,
        created_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, created) = cluster_secret(dir.path()).expect("created");
        let (b, again) = cluster_secret(dir.path()).expect("read back");
        assert!(created && !again);
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(dir.path().join("spark-auth-secret"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
