//! What sparkboot knows about Spark itself: its settings, the published checksum, the push-mode
//! cache, staging in S3 (`s3.rs`), the S3A connector's jars (`s3a.rs`), the cluster's
//! authentication secret, and how to tell that workers registered.
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
pub mod s3a;
pub mod settings;
pub mod upgrade;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use crate::report::ControllerTransfer;
use settings::Distribution;

#[derive(Debug, Error)]
pub enum SparkError {
    #[error("cannot find the Spark checksum: {0}; pin it with spark.sha512 in the config, or check spark.source")]
    Checksum(String),
    #[error("push mode: {0}")]
    Push(String),
    #[error("s3 distribution: {0}")]
    S3(String),
    /// The S3A connector's jars could not be fetched or verified (exit 4, like the archive).
    #[error("S3A connector: {0}")]
    Connector(String),
    /// `[spark]` asks for S3A, but sparkboot cannot tell which connector matches (exit 1).
    #[error("spark.{field}: {message}")]
    Setting { field: String, message: String },
    #[error("cluster secret {path}: {message}")]
    Secret { path: PathBuf, message: String },
}

/// Everything the roles need that sparkboot computes.
pub struct Prepared {
    pub context: context::TemplateValues,
    /// Values to redact from every diff, error and report.
    pub secrets: Vec<String>,
    /// Verified local files the controller streams to nodes: push mode's archive by its
    /// SHA-512, the S3A connector's jars by their SHA-256.
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

/// The controller's own download of the archive into its cache (push and s3 modes), with a
/// `controller` progress line while it runs: from a slow mirror it is the longest wait of a
/// first converge.
fn cache_archive(
    url: &str,
    sha512: &str,
    cache: &Path,
    progress: &crate::report::Progress,
) -> Result<PathBuf, String> {
    let mut line = ControllerTransfer::new(
        progress,
        "Cache the Spark archive",
        ("downloading", "downloaded"),
    );
    fetch::cached_archive_with(url, sha512, cache, &mut |done, total| {
        line.update(done, total)
    })
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
        let path = cache_archive(&s.url, &sha512, &cache, progress).map_err(SparkError::Push)?;
        pushed.insert(sha512.clone(), path);
    }
    let mut secrets = Vec::new();
    let url = if s.distribution == Distribution::S3 {
        let presigned = s3::stage(config, cloud, &sha512, &cache, check, progress)?;
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
    spark.s3a = s3a_context(config, cloud, &cache, &mut pushed, progress)?;
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

/// Whether the S3A connector goes in: as `[spark] s3a` says, else on with a cloud inventory
/// that names the cluster bucket (`[aws] bucket` or Terraform's output), or when event logs or
/// the warehouse are in the bucket (they are written through S3A).
pub fn s3a_wanted(config: &Config, cloud: Option<&crate::inventory::aws::Cloud>) -> bool {
    let s = &config.spark;
    s.s3a.unwrap_or_else(|| {
        (cloud.is_some() && s3::bucket(config, cloud).is_some())
            || s.event_log == settings::EventLog::S3
            || s.warehouse == settings::Warehouse::S3
    })
}

/// The S3A values the roles render with, fetching and verifying the connector's jars into the
/// controller's cache (once per cluster: later runs find them there) and adding them to
/// `pushed`. Off: the empty context, and nothing is fetched.
fn s3a_context(
    config: &Config,
    cloud: Option<&crate::inventory::aws::Cloud>,
    cache: &Path,
    pushed: &mut BTreeMap<String, PathBuf>,
    progress: &crate::report::Progress,
) -> Result<s3a::S3aContext, SparkError> {
    let s = &config.spark;
    if !s3a_wanted(config, cloud) {
        return Ok(s3a::S3aContext::default());
    }
    let setting = |field: &str, message: String| SparkError::Setting {
        field: field.into(),
        message,
    };
    let hadoop = match &s.hadoop_version {
        Some(h) => h.clone(),
        None => s3a::hadoop_of_spark(&s.version)
            .ok_or_else(|| {
                setting(
                    "hadoop_version",
                    format!(
                        "S3A needs the Hadoop version of Spark {}, which sparkboot does not know: set hadoop_version to the version in the archive's jars/hadoop-client-api-<version>.jar, or s3a = false",
                        s.version
                    ),
                )
            })?
            .to_string(),
    };
    let connector = s3a::connector_for(&hadoop).map_err(|m| setting("hadoop_version", m))?;
    // Settings first: a missing bucket is not worth a download.
    let warehouse_dir = match s.warehouse {
        settings::Warehouse::Local => String::new(),
        settings::Warehouse::S3 => s3::warehouse_uri(config, cloud)?,
    };
    let jars_cache = cache.with_file_name("jars");
    let mut jar = |c: s3a::Coordinates| -> Result<s3a::JarContext, SparkError> {
        let url = c.url(&s.maven_repository);
        let (algorithm, hex) = fetch::published_checksum(&url).map_err(SparkError::Connector)?;
        // The SDK bundle is hundreds of MB: it gets a progress line like the archive.
        let mut line = ControllerTransfer::new(
            progress,
            &format!("Cache {}", c.file_name()),
            ("downloading", "downloaded"),
        );
        let got = fetch::cached_verified_with(&url, algorithm, &hex, &jars_cache, &mut |d, t| {
            line.update(d, t)
        })
        .map_err(SparkError::Connector)?;
        drop(line);
        pushed.insert(got.sha256.clone(), got.path);
        Ok(s3a::JarContext {
            coordinates: c.to_string(),
            file: c.file_name(),
            sha256: got.sha256,
            verified: format!("{}:{hex}", algorithm.extension()),
            checksum: algorithm.extension().to_string(),
        })
    };
    let connector_jar = jar(connector.hadoop_aws)?;
    let sdk_jar = jar(connector.sdk_bundle)?;
    let region = config
        .aws
        .region
        .clone()
        .or_else(|| cloud.map(|c| c.region.clone()))
        .unwrap_or_default();
    Ok(s3a::S3aContext {
        enabled: true,
        hadoop,
        connector: connector_jar,
        sdk: sdk_jar,
        credentials_provider: s3a::instance_profile_provider(connector.sdk).to_string(),
        region,
        warehouse_dir,
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

    fn config(dir: &Path, spark: &str) -> Config {
        let text = format!("[cluster]\nstate_dir = \"state\"\n[spark]\n{spark}\n");
        Config::parse(&dir.join("sparkboot.toml"), &text).expect("config")
    }

    fn cloud(bucket: Option<&str>) -> crate::inventory::aws::Cloud {
        crate::inventory::aws::Cloud {
            region: "eu-west-1".into(),
            profile: None,
            bucket: bucket.map(str::to_string),
            asg: "workers".into(),
            queue_url: None,
        }
    }

    #[test]
    fn s3a_is_on_with_a_cloud_bucket_or_s3_paths_unless_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = config(dir.path(), "");
        assert!(!s3a_wanted(&plain, None), "a static inventory: off");
        assert!(!s3a_wanted(&plain, Some(&cloud(None))), "no bucket: off");
        assert!(
            s3a_wanted(&plain, Some(&cloud(Some("b")))),
            "cloud + bucket: on"
        );
        assert!(!s3a_wanted(
            &config(dir.path(), "s3a = false"),
            Some(&cloud(Some("b")))
        ));
        assert!(s3a_wanted(&config(dir.path(), "s3a = true"), None));
        assert!(s3a_wanted(&config(dir.path(), "event_log = \"s3\""), None));
        assert!(s3a_wanted(&config(dir.path(), "warehouse = \"s3\""), None));
    }

    /// A Maven repository directory with both jars of Hadoop `hadoop`, each with a `.sha1` (and
    /// the connector with a `.sha512`).
    fn repository(dir: &Path, hadoop: &str) -> PathBuf {
        let repo = dir.join("m2");
        let c = s3a::connector_for(hadoop).expect("known");
        for (co, body) in [(c.hadoop_aws, "aws jar"), (c.sdk_bundle, "sdk jar")] {
            let url = co.url(&format!("file://{}", repo.display()));
            let path = PathBuf::from(url.trim_start_matches("file://"));
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, body).expect("jar");
            let sha1 = hex::encode(sha1::Digest::finalize(
                <sha1::Sha1 as sha1::Digest>::new_with_prefix(body.as_bytes()),
            ));
            std::fs::write(format!("{}.sha1", path.display()), sha1).expect("sha1");
            if co.artifact == "hadoop-aws" {
                use sha2::Digest;
                let sum = hex::encode(sha2::Sha512::digest(body.as_bytes()));
                std::fs::write(format!("{}.sha512", path.display()), sum).expect("sha512");
            }
        }
        repo
    }

    #[test]
    fn s3a_context_fetches_verifies_and_caches_both_jars() {
        use sha2::Digest;
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repository(dir.path(), "3.5.0");
        let cfg = config(
            dir.path(),
            &format!(
                "s3a = true\nmaven_repository = \"file://{}\"",
                repo.display()
            ),
        );
        let cache = dir.path().join("cache/spark");
        let mut pushed = BTreeMap::new();
        let ctx = s3a_context(
            &cfg,
            Some(&cloud(Some("b"))),
            &cache,
            &mut pushed,
            &crate::report::Progress::new(false),
        )
        .expect("s3a");
        assert!(ctx.enabled);
        assert_eq!(ctx.hadoop, "3.5.0");
        assert_eq!(ctx.region, "eu-west-1");
        assert_eq!(ctx.warehouse_dir, "");
        assert_eq!(ctx.connector.file, "hadoop-aws-3.5.0.jar");
        assert!(
            ctx.connector.verified.starts_with("sha512:"),
            "the strongest published"
        );
        assert!(
            ctx.sdk.verified.starts_with("sha1:"),
            "only .sha1 published"
        );
        assert_eq!(
            ctx.sdk.sha256,
            hex::encode(sha2::Sha256::digest(b"sdk jar"))
        );
        assert_eq!(pushed.len(), 2);
        assert_eq!(
            std::fs::read(&pushed[&ctx.sdk.sha256]).expect("cached"),
            b"sdk jar"
        );
        assert!(pushed[&ctx.sdk.sha256].starts_with(dir.path().join("cache/jars")));

        // A jar that does not match its published checksum: exit 4, nothing cached for it.
        let bad = s3a::connector_for("3.3.4").expect("known");
        let repo = repository(&dir.path().join("other"), "3.3.4");
        let jar = bad.sdk_bundle.url(&format!("file://{}", repo.display()));
        std::fs::write(jar.trim_start_matches("file://"), "tampered").expect("tamper");
        let cfg = config(
            dir.path(),
            &format!(
                "version = \"3.5.7\"\nwarehouse = \"s3\"\nmaven_repository = \"file://{}\"",
                repo.display()
            ),
        );
        let err = s3a_context(
            &cfg,
            Some(&cloud(Some("b"))),
            &cache,
            &mut BTreeMap::new(),
            &crate::report::Progress::new(false),
        )
        .expect_err("mismatch");
        assert!(
            matches!(err, SparkError::Connector(ref m) if m.contains("checksum mismatch")),
            "{err}"
        );

        // A Spark whose Hadoop is not known, with S3A on: a usage error naming the setting.
        let cfg = config(dir.path(), "version = \"3.4.1\"\ns3a = true");
        let err = s3a_context(
            &cfg,
            None,
            &cache,
            &mut BTreeMap::new(),
            &crate::report::Progress::new(false),
        )
        .expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("spark.hadoop_version: S3A needs the Hadoop version of Spark 3.4.1"),
            "{err}"
        );
        // Off: nothing is fetched and the Hadoop version is not needed.
        let cfg = config(dir.path(), "version = \"3.4.1\"");
        assert_eq!(
            s3a_context(
                &cfg,
                None,
                &cache,
                &mut BTreeMap::new(),
                &crate::report::Progress::new(false)
            )
            .expect("off"),
            s3a::S3aContext::default()
        );
    }
}
