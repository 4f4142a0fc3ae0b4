//! `sparkboot.toml` -> validated settings.
//!
//! The raw file structs reject unknown fields, so a misspelt key is an error that names the file
//! and the field instead of a setting silently ignored. Everything is checked here, before any
//! connection is made. A missing default file means built-in defaults, so the lab works with no
//! config at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::spark::settings::{self, RawSpark, SparkSettings};
use crate::transport::SshOptions;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}, field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    ssh: RawSsh,
    roles: Option<Vec<String>>,
    roles_dir: Option<PathBuf>,
    templates_dir: Option<PathBuf>,
    inventory: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    spark: RawSpark,
    /// `[aws]`: the `aws` inventory source, SSH login for cloud sources, the S3 bucket.
    #[serde(default)]
    aws: crate::inventory::aws::RawAws,
    /// `sparkboot harden` settings (opt-outs with reasons); validated by the harden module.
    harden: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Option<String>,
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    connect_timeout_secs: Option<u64>,
    command_timeout_secs: Option<u64>,
    keepalive_secs: Option<u64>,
    retry_deadline_secs: Option<u64>,
    forks: Option<usize>,
    max_handshakes: Option<usize>,
    use_agent: Option<bool>,
}

/// The resolved configuration the engine runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub cluster_name: String,
    /// Per-cluster state: known_hosts and caches live here.
    pub state_dir: PathBuf,
    pub ssh: SshOptions,
    pub forks: usize,
    pub max_handshakes: usize,
    pub roles: Vec<String>,
    pub roles_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    pub inventory: Option<String>,
    /// User variables, visible to roles and templates as `vars.*`.
    pub vars: BTreeMap<String, toml::Value>,
    pub spark: SparkSettings,
    /// `[aws]` settings (see src/inventory/aws/settings.rs).
    pub aws: crate::inventory::aws::AwsSettings,
    /// The `[harden]` table (opt-outs with reasons), validated by `harden::config`.
    pub harden: Option<toml::Value>,
}

/// The roles a plain `sparkboot converge` applies, in order.
pub const DEFAULT_ROLES: &[&str] = &[
    "base",
    "java",
    "spark",
    "spark-keygen",
    "spark-master",
    "spark-authorize",
    "spark-worker",
];

impl Config {
    /// Loads `path`. When `explicit` is false and the file does not exist, defaults are used.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let cluster_name = raw.cluster.name.unwrap_or_else(|| "sparkboot".into());
        let name_ok = !cluster_name.is_empty()
            && cluster_name.len() <= 40
            && cluster_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !cluster_name.starts_with('-');
        if !name_ok {
            return Err(invalid(
                "cluster.name",
                format!(
                    "{cluster_name:?} must be 1-40 letters, digits or '-', not starting with '-'"
                ),
            ));
        }
        let secs = |field: &str,
                    value: Option<u64>,
                    default: u64,
                    max: u64|
         -> Result<Duration, ConfigError> {
            let v = value.unwrap_or(default);
            if v == 0 || v > max {
                return Err(invalid(
                    field,
                    format!("{v} must be between 1 and {max} seconds"),
                ));
            }
            Ok(Duration::from_secs(v))
        };
        let defaults = SshOptions::default();
        let ssh = SshOptions {
            connect_timeout: secs(
                "ssh.connect_timeout_secs",
                raw.ssh.connect_timeout_secs,
                defaults.connect_timeout.as_secs(),
                300,
            )?,
            command_timeout: secs(
                "ssh.command_timeout_secs",
                raw.ssh.command_timeout_secs,
                defaults.command_timeout.as_secs(),
                86_400,
            )?,
            keepalive: secs(
                "ssh.keepalive_secs",
                raw.ssh.keepalive_secs,
                defaults.keepalive.as_secs(),
                3600,
            )?,
            retry_deadline: secs(
                "ssh.retry_deadline_secs",
                raw.ssh.retry_deadline_secs,
                defaults.retry_deadline.as_secs(),
                3600,
            )?,
            use_agent: raw.ssh.use_agent.unwrap_or(true),
        };
        let forks = raw.ssh.forks.unwrap_or(50);
        if forks == 0 {
            return Err(invalid(
                "ssh.forks",
                "0 would never contact a host; use 1 or more".into(),
            ));
        }
        let max_handshakes = raw.ssh.max_handshakes.unwrap_or(10);
        if max_handshakes == 0 {
            return Err(invalid(
                "ssh.max_handshakes",
                "must be 1 or more (sshd's MaxStartups default allows 10)".into(),
            ));
        }
        let roles = raw
            .roles
            .unwrap_or_else(|| DEFAULT_ROLES.iter().map(|s| s.to_string()).collect());
        if roles.is_empty() {
            return Err(invalid(
                "roles",
                "the list is empty; name at least one role under roles/".into(),
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            // Relative to the config file, like roles_dir: run from any directory, a config finds
            // the same known_hosts and Spark secret.
            state_dir: relative_to(
                path,
                raw.cluster
                    .state_dir
                    .unwrap_or_else(|| PathBuf::from(".sparkboot")),
            )
            .join(&cluster_name),
            cluster_name,
            ssh,
            forks,
            max_handshakes,
            roles,
            // Relative directories are relative to the config file, so a config works from any cwd.
            roles_dir: existing_dir(path, "roles_dir", raw.roles_dir)?,
            templates_dir: existing_dir(path, "templates_dir", raw.templates_dir)?,
            inventory: raw.inventory,
            vars: raw.vars,
            harden: raw.harden,
            spark: settings::resolve(raw.spark)
                .map_err(|(field, message)| invalid(&field, message))?,
            aws: crate::inventory::aws::resolve(raw.aws, path)
                .map_err(|(field, message)| invalid(&field, message))?,
        })
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }
}

/// An override directory, relative to the config file, that must exist: a misspelt one would
/// otherwise silently run the built-in roles or templates instead of the user's.
fn existing_dir(
    config: &Path,
    field: &str,
    dir: Option<PathBuf>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(dir) = dir.map(|d| relative_to(config, d)) else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(ConfigError::Invalid {
            path: config.to_path_buf(),
            field: field.to_string(),
            message: format!(
                "{} is not a directory; create it, or remove `{field}` to use the built-in ones",
                dir.display()
            ),
        });
    }
    Ok(Some(dir))
}

fn relative_to(config: &Path, dir: PathBuf) -> PathBuf {
    match config.parent() {
        Some(base) if dir.is_relative() => base.join(dir),
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("sparkboot.toml"), text)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").expect("defaults");
        assert_eq!(c.cluster_name, "sparkboot");
        assert_eq!(c.forks, 50);
        assert_eq!(
            c.known_hosts_path(),
            PathBuf::from(".sparkboot/sparkboot/known_hosts")
        );
    }

    #[test]
    fn state_dir_is_relative_to_the_config_file() {
        let c = Config::parse(
            Path::new("/etc/spark/sparkboot.toml"),
            "[cluster]\nstate_dir = \"st\"\n",
        )
        .expect("parses");
        assert_eq!(
            c.known_hosts_path(),
            PathBuf::from("/etc/spark/st/sparkboot/known_hosts")
        );
        let c = Config::parse(
            Path::new("/etc/spark/sparkboot.toml"),
            "[cluster]\nstate_dir = \"/var/lib/sb\"\n",
        )
        .expect("parses");
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/sb/sparkboot"));
    }

    #[test]
    fn unknown_field_names_file_and_field() {
        let err = parse("[ssh]\nfork = 3\n").expect_err("typo");
        let msg = err.to_string();
        assert!(
            msg.contains("sparkboot.toml") && msg.contains("fork"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = parse("[ssh]\nforks = 0\n").expect_err("zero forks");
        assert!(err.to_string().contains("`ssh.forks`"), "{err}");
        let err = parse("[cluster]\nname = \"bad name\"\n").expect_err("bad name");
        assert!(err.to_string().contains("`cluster.name`"), "{err}");
        let err = parse("[ssh]\nconnect_timeout_secs = 0\n").expect_err("zero timeout");
        assert!(
            err.to_string().contains("ssh.connect_timeout_secs"),
            "{err}"
        );
        let err = parse("roles = []\n").expect_err("no roles");
        assert!(err.to_string().contains("`roles`"), "{err}");
    }

    #[test]
    fn an_override_dir_that_does_not_exist_is_an_error() {
        let err = parse("roles_dir = \"no-such-dir\"\n").expect_err("missing");
        assert!(
            err.to_string().contains("`roles_dir`") && err.to_string().contains("not a directory"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("sparkboot.toml");
        std::fs::create_dir(dir.path().join("tpl")).expect("mkdir");
        let c = Config::parse(&cfg, "templates_dir = \"tpl\"\n").expect("exists");
        assert_eq!(c.templates_dir, Some(dir.path().join("tpl")));
    }

    #[test]
    fn wrong_type_is_a_parse_error() {
        let err = parse("[ssh]\nforks = \"many\"\n").expect_err("type");
        assert!(err.to_string().contains("forks"), "{err}");
    }
}
