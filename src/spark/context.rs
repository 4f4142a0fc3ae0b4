//! The values the Spark roles and templates render with (`spark.*`, `secrets.*`), as one typed
//! value: the settings from `[spark]`, the layout from the spark role, and what sparkboot
//! computed (the checksum, the URL nodes fetch, the cluster secret).

use std::collections::BTreeMap;

use serde::Serialize;

use super::layout::{DaemonPaths, Layout, Modes};
use super::settings::SparkSettings;

/// Everything sparkboot adds to a host's template context for roles with `context = ["spark"]`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateValues {
    pub spark: SparkContext,
    pub secrets: Secrets,
}

#[derive(Debug, Clone, Serialize)]
pub struct Secrets {
    /// The cluster's Spark authentication secret (empty when authentication is off).
    pub spark_auth: String,
    /// The Spark Connect server's pre-shared token (empty when the server is off).
    pub connect_token: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SparkContext {
    pub version: String,
    pub package: String,
    /// What nodes fetch: the source URL, or a presigned S3 URL (a secret).
    pub url: String,
    pub sha512: String,
    /// `url` (nodes download) or `push` (streamed over SSH).
    pub source: String,
    pub install_dir: String,
    pub home: String,
    pub conf_dir: String,
    pub user: String,
    pub group: String,
    pub user_home: String,
    pub pid_dir: String,
    pub log_dir: String,
    pub work_dir: String,
    pub local_dir: String,
    pub cluster_key: String,
    /// The local event log directory (created on every node).
    pub event_log_dir_path: String,
    /// `spark.eventLog.dir` and `spark.history.fs.logDirectory`: `file:<event_log_dir_path>`,
    /// or the cluster bucket's `s3a://` prefix.
    pub event_log_dir: String,
    pub modes: Modes,
    pub daemon_script: String,
    pub master: DaemonPaths,
    pub worker: DaemonPaths,
    pub history: DaemonPaths,
    pub history_server: bool,
    pub history_port: u16,
    pub connect: DaemonPaths,
    pub connect_server: bool,
    pub connect_port: u16,
    pub connect_max_cores: u32,
    pub authenticate: bool,
    pub rpc_cipher: String,
    pub master_port: u16,
    pub master_webui_port: u16,
    pub worker_webui_port: u16,
    pub worker_cores: u32,
    pub worker_memory: String,
    pub worker_daemon_java_opts: String,
    pub defaults_master: BTreeMap<String, String>,
    pub defaults_worker: BTreeMap<String, String>,
    /// The S3A connector: its jars and settings (`spark.s3a.enabled` false: not installed).
    pub s3a: super::s3a::S3aContext,
}

impl SparkContext {
    pub fn new(
        s: &SparkSettings,
        layout: &Layout,
        url: String,
        sha512: String,
        source: &str,
    ) -> SparkContext {
        SparkContext {
            version: s.version.clone(),
            package: s.package.clone(),
            url,
            sha512,
            source: source.to_string(),
            install_dir: layout.install_dir(&s.version, &s.package),
            home: layout.home.clone(),
            conf_dir: layout.conf_dir(),
            user: layout.user.clone(),
            group: layout.group.clone(),
            user_home: layout.user_home.clone(),
            pid_dir: layout.pid_dir.clone(),
            log_dir: layout.log_dir.clone(),
            work_dir: layout.work_dir.clone(),
            local_dir: layout.local_dir.clone(),
            cluster_key: layout.cluster_key.clone(),
            event_log_dir_path: layout.event_log_dir.clone(),
            event_log_dir: format!("file:{}", layout.event_log_dir),
            modes: layout.modes.clone(),
            daemon_script: layout.daemon_script(),
            master: layout.daemon(&layout.master),
            worker: layout.daemon(&layout.worker),
            history: layout.daemon(&layout.history),
            history_server: s.history_server,
            history_port: s.history_port,
            connect: layout.daemon(&layout.connect),
            connect_server: s.connect_server,
            connect_port: s.connect_port,
            connect_max_cores: s.connect_max_cores,
            authenticate: s.authenticate,
            rpc_cipher: s.rpc_cipher.clone(),
            master_port: s.master_port,
            master_webui_port: s.master_webui_port,
            worker_webui_port: s.worker_webui_port,
            worker_cores: s.worker_cores,
            worker_memory: s.worker_memory.clone(),
            worker_daemon_java_opts: s.worker_daemon_java_opts.clone(),
            defaults_master: s.defaults_for("master"),
            defaults_worker: s.defaults_for("worker"),
            s3a: super::s3a::S3aContext::default(),
        }
    }
}
