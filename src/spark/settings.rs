//! The `[spark]` section of sparkboot.toml: which Spark, from where, how it is distributed, and
//! the user's own spark-defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const DEFAULT_SOURCE: &str =
    "https://archive.apache.org/dist/spark/spark-{version}/spark-{version}-{package}.tgz";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpark {
    version: Option<String>,
    package: Option<String>,
    source: Option<String>,
    sha512: Option<String>,
    distribution: Option<String>,
    authenticate: Option<bool>,
    master_port: Option<u16>,
    master_webui_port: Option<u16>,
    worker_webui_port: Option<u16>,
    worker_cores: Option<u32>,
    worker_memory: Option<String>,
    worker_daemon_java_opts: Option<String>,
    registration_timeout_secs: Option<u64>,
    upgrade_batch: Option<usize>,
    upgrade_pause_secs: Option<u64>,
    rpc_cipher: Option<String>,
    history_server: Option<bool>,
    history_port: Option<u16>,
    event_log: Option<String>,
    connect_server: Option<bool>,
    connect_port: Option<u16>,
    connect_max_cores: Option<u32>,
    s3a: Option<bool>,
    maven_repository: Option<String>,
    hadoop_version: Option<String>,
    warehouse: Option<String>,
    #[serde(default)]
    defaults: BTreeMap<String, toml::Value>,
}

/// Where the S3A connector's jars are downloaded from by default.
pub const MAVEN_CENTRAL: &str = "https://repo1.maven.org/maven2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Every node downloads from `source` and verifies.
    Direct,
    /// sparkboot downloads once, verifies, and streams to nodes over SSH (no egress needed).
    Push,
    /// sparkboot downloads once, verifies, uploads to the cluster bucket keyed by checksum, and
    /// nodes fetch it through a presigned URL (no AWS tools or credentials on the nodes).
    S3,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SparkSettings {
    pub version: String,
    pub package: String,
    /// `source` with `{version}` and `{package}` filled in.
    pub url: String,
    pub sha512: Option<String>,
    pub distribution: Distribution,
    pub authenticate: bool,
    pub master_port: u16,
    pub master_webui_port: u16,
    pub worker_webui_port: u16,
    /// 0 means "all the node's cores".
    pub worker_cores: u32,
    /// Empty means "the node's memory less 1 GiB for the OS".
    pub worker_memory: String,
    /// JVM options of the worker daemon alone (SPARK_DAEMON_JAVA_OPTS on worker hosts).
    pub worker_daemon_java_opts: String,
    pub registration_timeout_secs: u64,
    /// Workers per batch of a rolling upgrade; `None`: a quarter of the workers, at least one.
    pub upgrade_batch: Option<usize>,
    /// Seconds a rolling upgrade waits after each batch has registered, before the next.
    pub upgrade_pause_secs: u64,
    /// `spark.network.crypto.cipher` when authentication (and so RPC encryption) is on.
    pub rpc_cipher: String,
    /// Run the history server on the master (default on).
    pub history_server: bool,
    /// Its UI port (`spark.history.ui.port`).
    pub history_port: u16,
    /// Where applications write event logs: the layout's directory, or the cluster bucket.
    pub event_log: EventLog,
    /// Run the Spark Connect server on the master (Spark 4 and later; default off).
    pub connect_server: bool,
    /// Its gRPC port (`spark.connect.grpc.binding.port`), on the master's private address.
    pub connect_port: u16,
    /// `spark.cores.max` of the Connect server's application; 0: no cap (all free cores).
    pub connect_max_cores: u32,
    /// Install the S3A connector: `Some` when set; `None` decides from the inventory (on with a
    /// cloud inventory that names a bucket, or when event logs or the warehouse are in S3).
    pub s3a: Option<bool>,
    /// The Maven repository the controller fetches the connector's jars and checksums from.
    pub maven_repository: String,
    /// The Hadoop version of the Spark archive, when set; else looked up by Spark version.
    pub hadoop_version: Option<String>,
    /// `spark.sql.warehouse.dir`: Spark's default, or the cluster bucket.
    pub warehouse: Warehouse,
    pub defaults: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warehouse {
    /// Spark's own default (`spark-warehouse` in the driver's working directory).
    Local,
    /// `s3a://<bucket>/sparkboot/warehouse` (needs the S3A connector).
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLog {
    /// The layout's `event_log_dir` on the node where the driver runs.
    Local,
    /// `s3a://<bucket>/sparkboot/events` (needs the S3A connector on the classpath).
    S3,
}

use super::release::{default_cipher, Version};
pub use super::release::{CTR, DEFAULT_VERSION, GCM};

/// Turns the raw section into settings, or `(field, message)` naming what is wrong.
pub fn resolve(raw: RawSpark) -> Result<SparkSettings, (String, String)> {
    let bad = |field: &str, msg: String| (format!("spark.{field}"), msg);
    let version = raw.version.unwrap_or_else(|| DEFAULT_VERSION.into());
    let version_ok = !version.is_empty()
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let parsed = Version::parse(&version).filter(|_| version_ok);
    let Some(parsed) = parsed else {
        return Err(bad(
            "version",
            format!("{version:?} must look like {DEFAULT_VERSION}"),
        ));
    };
    let package = raw.package.unwrap_or_else(|| "bin-hadoop3".into());
    if package.is_empty()
        || !package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(bad(
            "package",
            format!("{package:?} must be like bin-hadoop3"),
        ));
    }
    let source = raw.source.unwrap_or_else(|| DEFAULT_SOURCE.into());
    if !(source.starts_with("https://")
        || source.starts_with("http://")
        || source.starts_with("file://"))
    {
        return Err(bad(
            "source",
            format!("{source:?} must be an http(s):// or file:// URL template"),
        ));
    }
    let url = source
        .replace("{version}", &version)
        .replace("{package}", &package);
    let sha512 = raw.sha512.map(|s| s.trim().to_ascii_lowercase());
    if let Some(s) = &sha512 {
        if s.len() != 128 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "sha512",
                "must be 128 hex digits (the archive's SHA-512)".into(),
            ));
        }
    }
    if url.starts_with("http://") && sha512.is_none() {
        return Err(bad(
            "sha512",
            format!("the source {url} is plain http, so a .sha512 read from the same origin proves nothing: pin the archive's SHA-512 here (from a release page you reached over https), or use an https:// source"),
        ));
    }
    let distribution = match raw.distribution.as_deref().unwrap_or("direct") {
        "direct" => Distribution::Direct,
        "push" => Distribution::Push,
        "s3" => Distribution::S3,
        other => {
            return Err(bad(
                "distribution",
                format!("{other:?} must be \"direct\", \"push\" or \"s3\""),
            ))
        }
    };
    if source.starts_with("file://") && distribution == Distribution::Direct {
        return Err(bad(
            "source",
            "a file:// source only works with distribution = \"push\" or \"s3\"".into(),
        ));
    }
    let worker_memory = raw.worker_memory.unwrap_or_default();
    if !worker_memory.is_empty() {
        // Not split_at: the last character may be several bytes long.
        let num = worker_memory
            .strip_suffix(['m', 'g', 'M', 'G'])
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if num.is_none_or(|n| n.parse::<u64>().is_err()) {
            return Err(bad(
                "worker_memory",
                format!("{worker_memory:?} must be like 4g or 512m"),
            ));
        }
    }
    let mut defaults = BTreeMap::new();
    for (k, v) in raw.defaults {
        let text = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(bad(
                    &format!("defaults.\"{k}\""),
                    format!("{other} must be a string, number or boolean"),
                ))
            }
        };
        check_default(&k, &text)
            .map_err(|m| bad(&format!("defaults.\"{}\"", k.escape_debug()), m))?;
        defaults.insert(k, text);
    }
    let worker_daemon_java_opts = match raw.worker_daemon_java_opts {
        Some(opts) => {
            check_java_opts(&opts).map_err(|m| bad("worker_daemon_java_opts", m))?;
            opts
        }
        None => default_worker_java_opts(&defaults).to_string(),
    };
    let rpc_cipher = match raw.rpc_cipher.as_deref() {
        None | Some("auto") => default_cipher(parsed).to_string(),
        Some(c) if c == GCM || c == CTR => c.to_string(),
        Some(other) => {
            return Err(bad(
                "rpc_cipher",
                format!("{other:?} must be \"auto\", \"{GCM}\" or \"{CTR}\""),
            ))
        }
    };
    let event_log = match raw.event_log.as_deref().unwrap_or("local") {
        "local" => EventLog::Local,
        "s3" => EventLog::S3,
        other => {
            return Err(bad(
                "event_log",
                format!("{other:?} must be \"local\" or \"s3\""),
            ))
        }
    };
    let connect_server = raw.connect_server.unwrap_or(false);
    if connect_server && parsed.major < 4 {
        return Err(bad(
            "connect_server",
            format!("needs Spark 4.0 or later (its distribution ships the Connect server); spark.version is {version}"),
        ));
    }
    let warehouse = match raw.warehouse.as_deref().unwrap_or("local") {
        "local" => Warehouse::Local,
        "s3" => Warehouse::S3,
        other => {
            return Err(bad(
                "warehouse",
                format!("{other:?} must be \"local\" (Spark's default) or \"s3\""),
            ))
        }
    };
    if raw.s3a == Some(false) {
        let needs = match (event_log, warehouse) {
            (EventLog::S3, _) => Some("event_log = \"s3\""),
            (_, Warehouse::S3) => Some("warehouse = \"s3\""),
            _ => None,
        };
        if let Some(what) = needs {
            return Err(bad(
                "s3a",
                format!("is false, but {what} writes through S3A: set s3a = true (or leave it out), or keep them local"),
            ));
        }
    }
    let maven_repository = raw.maven_repository.unwrap_or_else(|| MAVEN_CENTRAL.into());
    super::s3a::check_repository(&maven_repository).map_err(|m| bad("maven_repository", m))?;
    if let Some(h) = &raw.hadoop_version {
        let ok = h.split('.').count() == 3
            && h.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(bad(
                "hadoop_version",
                format!("{h:?} must look like 3.5.0 (the version in the archive's jars/hadoop-client-api-<version>.jar)"),
            ));
        }
    }
    Ok(SparkSettings {
        connect_server,
        connect_port: raw.connect_port.unwrap_or(15002),
        connect_max_cores: raw.connect_max_cores.unwrap_or(0),
        // 0, like unset: a quarter of the workers.
        upgrade_batch: raw.upgrade_batch.filter(|&n| n > 0),
        upgrade_pause_secs: raw.upgrade_pause_secs.unwrap_or(0),
        s3a: raw.s3a,
        maven_repository,
        hadoop_version: raw.hadoop_version,
        warehouse,
        history_server: raw.history_server.unwrap_or(true),
        history_port: raw.history_port.unwrap_or(18080),
        event_log,
        rpc_cipher,
        version,
        package,
        url,
        sha512,
        distribution,
        authenticate: raw.authenticate.unwrap_or(true),
        master_port: raw.master_port.unwrap_or(7077),
        master_webui_port: raw.master_webui_port.unwrap_or(8080),
        worker_webui_port: raw.worker_webui_port.unwrap_or(8081),
        worker_cores: raw.worker_cores.unwrap_or(0),
        worker_memory,
        worker_daemon_java_opts,
        registration_timeout_secs: raw.registration_timeout_secs.unwrap_or(90),
        defaults,
    })
}

/// The worker daemon registers, heartbeats and launches executors; the C2 compiler's warm-up
/// costs every new node about 2.5 s of CPU before it registers (6.0 -> 3.4 s of daemon CPU,
/// measured on the lab) and buys a control process nothing. Executors keep the full JIT. An
/// external shuffle service runs inside the worker daemon and serves shuffle data, so with
/// `spark.shuffle.service.enabled` the worker keeps the full JIT too.
pub const QUICK_START_JIT: &str = "-XX:TieredStopAtLevel=1";

fn default_worker_java_opts(defaults: &BTreeMap<String, String>) -> &'static str {
    match defaults.get("spark.shuffle.service.enabled") {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => "",
        _ => QUICK_START_JIT,
    }
}

/// JVM options are written into spark-env.sh as one quoted word and split by the launcher on
/// spaces: every word must be an option, and nothing may start a new line.
fn check_java_opts(opts: &str) -> Result<(), String> {
    if opts.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{opts:?} must not hold control characters or line breaks"
        ));
    }
    match opts.split_whitespace().find(|w| !w.starts_with('-')) {
        Some(word) => Err(format!(
            "{word:?} is not a JVM option (each word starts with '-', like \"{QUICK_START_JIT}\"; \"\" for the JVM's defaults)"
        )),
        None => Ok(()),
    }
}

/// Properties that keep the cluster closed. sparkboot writes them; a user default that repeated
/// one would win (the last line of a properties file wins) and silently turn security off.
const MANAGED: &[(&str, &str)] = &[
    ("spark.authenticate", "set `[spark] authenticate = false` to run without authentication (harden then reports spark-auth failing)"),
    ("spark.authenticate.secret", "the secret is generated per cluster and kept in the state dir"),
    ("spark.network.crypto.enabled", "RPC encryption follows `[spark] authenticate`"),
    ("spark.network.crypto.cipher", "choose the cipher with `[spark] rpc_cipher`"),
    ("spark.io.encryption.enabled", "I/O encryption follows `[spark] authenticate`"),
    ("spark.master.rest.enabled", "the REST submission server accepts unauthenticated jobs and stays off"),
    ("spark.ui.killEnabled", "killing jobs from the UI stays off"),
];

/// Checks one `[spark.defaults]` entry for the grammar spark-defaults.conf needs: a key of
/// property characters, a value on one line (a `\r` also ends a Java properties line) that does
/// not end in a backslash (which would join the next line, our own settings, to it).
fn check_default(key: &str, value: &str) -> Result<(), String> {
    let key_ok = key.starts_with("spark.")
        && key.len() > "spark.".len()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !key_ok {
        return Err("the key must be a Spark property such as spark.executor.memory (letters, digits, '.', '_', '-')".into());
    }
    if let Some((_, why)) = MANAGED
        .iter()
        .find(|(k, _)| *k == key || key.starts_with(&format!("{k}.")))
    {
        return Err(format!(
            "{key} is managed by sparkboot and cannot be overridden here: {why}"
        ));
    }
    let s3a_secret = key.starts_with("spark.hadoop.fs.s3a.")
        && ["access.key", "secret.key", "session.token"]
            .iter()
            .any(|k| key.ends_with(&format!(".{k}")));
    if s3a_secret {
        return Err(format!(
            "{key} would put an AWS key in spark-defaults.conf, which every job on the cluster reads: S3A authenticates with the instance profile (README, \"S3 data\")"
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the value holds the control character {c:?}; spark-defaults.conf takes one line of printable text"
        ));
    }
    if value.ends_with('\\') {
        return Err("the value ends in a backslash, which would join the next line of spark-defaults.conf to it".into());
    }
    Ok(())
}

impl SparkSettings {
    /// Which properties each node's spark-defaults.conf carries. `spark.worker.*` is read only by
    /// workers and `spark.master.*`/`spark.deploy.*` only by the master, so changing one of those
    /// restarts only the daemons that read it; everything else goes everywhere.
    pub fn defaults_for(&self, role: &str) -> BTreeMap<String, String> {
        self.defaults
            .iter()
            .filter(|(k, _)| {
                let worker_only = k.starts_with("spark.worker.");
                let master_only = k.starts_with("spark.master.") || k.starts_with("spark.deploy.");
                match role {
                    "master" => !worker_only,
                    _ => !master_only,
                }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SparkSettings, (String, String)> {
        resolve(toml::from_str(text).expect("toml"))
    }

    #[test]
    fn defaults_follow_the_archive_layout() {
        let s = parse("").expect("defaults");
        assert_eq!(
            s.url,
            "https://archive.apache.org/dist/spark/spark-4.3.0/spark-4.3.0-bin-hadoop3.tgz"
        );
        assert_eq!(s.distribution, Distribution::Direct);
        assert!(s.authenticate);
    }

    #[test]
    fn worker_daemon_jit_follows_the_shuffle_service() {
        assert_eq!(
            parse("").expect("default").worker_daemon_java_opts,
            QUICK_START_JIT
        );
        let ess = "[defaults]\n\"spark.shuffle.service.enabled\" = true\n";
        assert_eq!(parse(ess).expect("ess").worker_daemon_java_opts, "");
        let own = "worker_daemon_java_opts = \"-Xss2m -XX:+UseSerialGC\"";
        assert_eq!(
            parse(own).expect("own").worker_daemon_java_opts,
            "-Xss2m -XX:+UseSerialGC"
        );
        assert_eq!(
            parse("worker_daemon_java_opts = \"\"")
                .expect("empty")
                .worker_daemon_java_opts,
            ""
        );
        for bad in ["-Xss2m; rm -rf /", "-Xss2m\\n-Dx=y", "Xss2m"] {
            let (field, message) =
                parse(&format!("worker_daemon_java_opts = \"{bad}\"")).expect_err(bad);
            assert_eq!(field, "spark.worker_daemon_java_opts", "{bad}");
            assert!(
                message.contains("JVM option") || message.contains("line"),
                "{message}"
            );
        }
    }

    #[test]
    fn gcm_only_where_spark_carries_the_fix() {
        assert_eq!(parse("").expect("default").rpc_cipher, GCM);
        assert_eq!(parse("version = \"4.2.0\"").expect("4.2").rpc_cipher, GCM);
        // A pinned 3.5.x keeps Spark's CTR: its GCM drops messages (SPARK-56227).
        let pinned = parse("version = \"3.5.7\"").expect("3.5.7");
        assert_eq!(
            (pinned.version.as_str(), pinned.rpc_cipher.as_str()),
            ("3.5.7", CTR)
        );
        assert_eq!(
            parse("version = \"3.5.7\"\nrpc_cipher = \"AES/GCM/NoPadding\"")
                .expect("opt in")
                .rpc_cipher,
            GCM
        );
        assert_eq!(
            parse("version = \"4.3.0\"\nrpc_cipher = \"AES/CTR/NoPadding\"")
                .expect("opt out")
                .rpc_cipher,
            CTR
        );
        assert_eq!(
            parse("rpc_cipher = \"DES\"").expect_err("bad").0,
            "spark.rpc_cipher"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            parse("version = \"3.x\"").expect_err("version").0,
            "spark.version"
        );
        assert_eq!(
            parse("sha512 = \"abc\"").expect_err("sha").0,
            "spark.sha512"
        );
        assert_eq!(
            parse("distribution = \"s4\"").expect_err("mode").0,
            "spark.distribution"
        );
        let s3 = parse("distribution = \"s3\"\nsource = \"file:///srv/spark.tgz\"").expect("s3");
        assert_eq!(s3.distribution, Distribution::S3);
        for bad in ["lots", "4é", "é", "g", "+4g", "4 g"] {
            assert_eq!(
                parse(&format!("worker_memory = \"{bad}\""))
                    .expect_err(bad)
                    .0,
                "spark.worker_memory"
            );
        }
        assert_eq!(
            parse("[defaults]\n\"spark.authenticate.secret\" = \"x\"")
                .expect_err("secret")
                .0,
            "spark.defaults.\"spark.authenticate.secret\""
        );
    }

    #[test]
    fn defaults_that_would_break_the_file_or_open_the_cluster_are_refused() {
        for (text, why) in [
            ("\"spark.a\" = \"x\\ry\"", "control character"),
            ("\"spark.a\" = \"x\\ty\"", "control character"),
            ("\"spark.a\" = 'C:\\'", "backslash"),
            ("\"spark.authenticate\" = false", "authenticate = false"),
            (
                "\"spark.network.crypto.enabled\" = false",
                "managed by sparkboot",
            ),
            (
                "\"spark.master.rest.enabled\" = true",
                "managed by sparkboot",
            ),
            ("\"spark.ui.killEnabled\" = true", "managed by sparkboot"),
            ("\"spark.a b\" = 1", "Spark property"),
            ("\"spark.a=b\" = 1", "Spark property"),
        ] {
            let (field, msg) = parse(&format!("[defaults]\n{text}\n")).expect_err(text);
            assert!(field.starts_with("spark.defaults."), "{field}");
            assert!(msg.contains(why), "{text}: {msg}");
        }
        let ok = parse("[defaults]\n\"spark.io.encryption.keySizeBits\" = 256\n\"spark.eventLog.dir\" = \"C:\\\\x\\\\y\"\n").expect("tuning is fine");
        assert_eq!(ok.defaults["spark.io.encryption.keySizeBits"], "256");
    }

    #[test]
    fn rolling_upgrade_batches_default_to_a_quarter() {
        let s = parse("").expect("defaults");
        assert_eq!((s.upgrade_batch, s.upgrade_pause_secs), (None, 0));
        let s = parse("upgrade_batch = 3\nupgrade_pause_secs = 20").expect("set");
        assert_eq!((s.upgrade_batch, s.upgrade_pause_secs), (Some(3), 20));
        assert_eq!(
            parse("upgrade_batch = 0").expect("zero").upgrade_batch,
            None
        );
    }

    #[test]
    fn the_connect_server_is_opt_in_and_needs_spark_4() {
        let s = parse("").expect("defaults");
        assert_eq!(
            (s.connect_server, s.connect_port, s.connect_max_cores),
            (false, 15002, 0)
        );
        let s = parse("connect_server = true\nconnect_port = 15010\nconnect_max_cores = 2")
            .expect("set");
        assert_eq!(
            (s.connect_server, s.connect_port, s.connect_max_cores),
            (true, 15010, 2)
        );
        let (field, msg) = parse("version = \"3.5.7\"\nconnect_server = true").expect_err("3.5");
        assert_eq!(field, "spark.connect_server");
        assert!(
            msg.contains("Spark 4.0 or later") && msg.contains("3.5.7"),
            "{msg}"
        );
    }

    #[test]
    fn history_server_on_by_default_and_event_logs_local() {
        let s = parse("").expect("defaults");
        assert!(s.history_server);
        assert_eq!((s.history_port, s.event_log), (18080, EventLog::Local));
        let s =
            parse("history_server = false\nhistory_port = 18181\nevent_log = \"s3\"").expect("set");
        assert!(!s.history_server);
        assert_eq!((s.history_port, s.event_log), (18181, EventLog::S3));
        assert_eq!(
            parse("event_log = \"hdfs\"").expect_err("bad").0,
            "spark.event_log"
        );
    }

    #[test]
    fn s3a_settings_default_to_auto_maven_central_and_a_local_warehouse() {
        let s = parse("").expect("defaults");
        assert_eq!(s.s3a, None);
        assert_eq!(s.maven_repository, MAVEN_CENTRAL);
        assert_eq!((s.hadoop_version, s.warehouse), (None, Warehouse::Local));
        let s = parse("s3a = true\nmaven_repository = \"http://127.64.0.1:8064/m2\"\nhadoop_version = \"3.5.0\"\nwarehouse = \"s3\"").expect("set");
        assert_eq!(s.s3a, Some(true));
        assert_eq!(s.maven_repository, "http://127.64.0.1:8064/m2");
        assert_eq!(s.hadoop_version.as_deref(), Some("3.5.0"));
        assert_eq!(s.warehouse, Warehouse::S3);
    }

    #[test]
    fn bad_s3a_settings_are_named() {
        for (text, field, why) in [
            ("warehouse = \"hdfs\"", "spark.warehouse", "\"local\""),
            (
                "maven_repository = \"http://10.1.2.3/m2\"",
                "spark.maven_repository",
                "plain http",
            ),
            (
                "maven_repository = \"repo1.maven.org\"",
                "spark.maven_repository",
                "https://",
            ),
            ("hadoop_version = \"3.5\"", "spark.hadoop_version", "3.5.0"),
            (
                "hadoop_version = \"3.5.0; x\"",
                "spark.hadoop_version",
                "3.5.0",
            ),
            ("s3a = false\nevent_log = \"s3\"", "spark.s3a", "event_log"),
            ("s3a = false\nwarehouse = \"s3\"", "spark.s3a", "warehouse"),
            ("s3a = \"yes\"", "", ""),
        ] {
            if field.is_empty() {
                assert!(toml::from_str::<RawSpark>(text).is_err(), "{text}");
                continue;
            }
            let (f, msg) = parse(text).expect_err(text);
            assert_eq!(f, field, "{text}");
            assert!(msg.contains(why), "{text}: {msg}");
        }
    }

    #[test]
    fn aws_keys_cannot_be_put_in_spark_defaults() {
        for key in [
            "spark.hadoop.fs.s3a.access.key",
            "spark.hadoop.fs.s3a.secret.key",
            "spark.hadoop.fs.s3a.session.token",
            "spark.hadoop.fs.s3a.bucket.data.secret.key",
        ] {
            let (field, msg) = parse(&format!("[defaults]\n\"{key}\" = \"x\"\n")).expect_err(key);
            assert!(field.contains(key), "{field}");
            assert!(msg.contains("instance profile"), "{msg}");
        }
        assert!(parse("[defaults]\n\"spark.hadoop.fs.s3a.connection.maximum\" = 200\n").is_ok());
    }

    #[test]
    fn plain_http_sources_need_a_pinned_checksum() {
        let (field, msg) =
            parse("source = \"http://127.0.0.1:8000/spark-{version}.tgz\"").expect_err("unpinned");
        assert_eq!(field, "spark.sha512");
        assert!(msg.contains("plain http"), "{msg}");
        let pinned = format!(
            "source = \"http://127.0.0.1:8000/s.tgz\"\nsha512 = \"{}\"",
            "a".repeat(128)
        );
        assert!(parse(&pinned).is_ok());
    }

    #[test]
    fn role_scoped_defaults_reach_only_their_daemons() {
        let s = parse("[defaults]\n\"spark.worker.cleanup.enabled\" = true\n\"spark.deploy.spreadOut\" = false\n\"spark.executor.memory\" = \"1g\"\n").expect("ok");
        let m = s.defaults_for("master");
        let w = s.defaults_for("worker");
        assert!(
            m.contains_key("spark.deploy.spreadOut")
                && !m.contains_key("spark.worker.cleanup.enabled")
        );
        assert!(
            w.contains_key("spark.worker.cleanup.enabled")
                && !w.contains_key("spark.deploy.spreadOut")
        );
        assert_eq!(w["spark.executor.memory"], "1g");
        assert_eq!(m["spark.executor.memory"], "1g");
    }
}
