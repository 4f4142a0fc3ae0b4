//! Roles and templates: loading, validation and per-host evaluation.
//!
//! Both are embedded in the binary (so a copied `sparkboot` works on its own) and a user
//! directory overrides them file by file (`roles_dir`, `templates_dir` in sparkboot.toml), which
//! is how users bring their own Spark config without forking sparkboot.

mod eval;
pub mod model;

use std::collections::BTreeSet;
use std::path::PathBuf;

use include_dir::{include_dir, Dir};
use thiserror::Error;

pub use eval::{evaluate, exports, handler_map, EvalContext, Filter, Step};
pub use model::Resource;
use model::RoleFile;

static EMBEDDED_ROLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/roles");
static EMBEDDED_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

#[derive(Debug, Error)]
pub enum RoleError {
    #[error("role {0:?} not found: no roles/{0}/role.toml in the override directory or built into sparkboot")]
    NotFound(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("role file {file} is not valid: {message}")]
    Parse { file: String, message: String },
    #[error("role file {file}, step {step:?}: {message}")]
    Invalid {
        file: String,
        step: String,
        message: String,
    },
    #[error("template {name:?} not found under the templates override directory or built into sparkboot")]
    TemplateNotFound { name: String },
    #[error("role {role}, step {step:?}, on {host}: {message}")]
    Render {
        role: String,
        step: String,
        host: String,
        message: String,
    },
}

/// A loaded role: its name, where it came from (for messages) and its parsed file.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub file: String,
    pub data: RoleFile,
}

/// Where roles and templates are read from.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub roles_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
}

impl Library {
    /// Loads and validates the named roles, in order.
    pub fn load_roles(&self, names: &[String]) -> Result<Vec<Role>, RoleError> {
        let mut roles = Vec::with_capacity(names.len());
        for name in names {
            roles.push(self.load_role(name)?);
        }
        let handlers: BTreeSet<&str> = roles
            .iter()
            .flat_map(|r| r.data.handlers.iter().map(|h| h.name.as_str()))
            .collect();
        for role in &roles {
            for step in &role.data.steps {
                if let Some(missing) = step.notify.iter().find(|n| !handlers.contains(n.as_str())) {
                    return Err(RoleError::Invalid {
                        file: role.file.clone(),
                        step: step.name.clone(),
                        message: format!("notifies {missing:?}, but no loaded role defines a handler by that name"),
                    });
                }
            }
        }
        Ok(roles)
    }

    /// Loads and validates one role on its own (its handlers may live in other roles).
    pub fn load_role(&self, name: &str) -> Result<Role, RoleError> {
        let (file, text) = self.role_text(name)?;
        let data: RoleFile = toml::from_str(&text).map_err(|e| RoleError::Parse {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let role = Role {
            name: name.to_string(),
            file,
            data,
        };
        validate(&role)?;
        Ok(role)
    }

    fn role_text(&self, name: &str) -> Result<(String, String), RoleError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(RoleError::NotFound(name.to_string()));
        }
        if let Some(dir) = &self.roles_dir {
            let path = dir.join(name).join("role.toml");
            if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|source| RoleError::Read {
                    path: path.clone(),
                    source,
                })?;
                return Ok((path.display().to_string(), text));
            }
        }
        let rel = format!("{name}/role.toml");
        let file = EMBEDDED_ROLES
            .get_file(&rel)
            .ok_or_else(|| RoleError::NotFound(name.to_string()))?;
        let text = file.contents_utf8().ok_or_else(|| RoleError::Parse {
            file: rel.clone(),
            message: "not UTF-8".into(),
        })?;
        Ok((format!("roles/{rel} (built in)"), text.to_string()))
    }

    /// The text of a template, from the override directory first.
    pub fn template_text(&self, name: &str) -> Result<String, RoleError> {
        let not_found = || RoleError::TemplateNotFound {
            name: name.to_string(),
        };
        if name.contains("..") {
            return Err(not_found());
        }
        if let Some(dir) = &self.templates_dir {
            let path = dir.join(name);
            if path.exists() {
                return std::fs::read_to_string(&path)
                    .map_err(|source| RoleError::Read { path, source });
            }
        }
        EMBEDDED_TEMPLATES
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(str::to_string)
            .ok_or_else(not_found)
    }
}

fn check_path(p: &str) -> Result<(), String> {
    if p.contains('\n') || p.contains('\t') {
        return Err(format!("path {p:?} contains a newline or tab"));
    }
    // Paths may be templates; they are checked again after rendering.
    if !p.starts_with('/') && !p.starts_with("{{") {
        return Err(format!("path {p:?} must be absolute"));
    }
    Ok(())
}

fn check_mode(m: &str) -> Result<(), String> {
    // A mode may come from the Spark layout (`{{ spark.modes.conf }}`); checked after rendering.
    if m.starts_with("{{") {
        return Ok(());
    }
    let ok = (3..=4).contains(&m.len()) && u32::from_str_radix(m, 8).is_ok_and(|v| v <= 0o7777);
    if ok {
        Ok(())
    } else {
        Err(format!("mode {m:?} must be octal, like \"0644\""))
    }
}

fn validate(role: &Role) -> Result<(), RoleError> {
    let err = |step: &str, message: String| RoleError::Invalid {
        file: role.file.clone(),
        step: step.to_string(),
        message,
    };
    for c in &role.data.context {
        if c != "spark" {
            return Err(err(
                "(role)",
                format!("context {c:?} is unknown; the only one is \"spark\""),
            ));
        }
    }
    for h in &role.data.hosts {
        if h != "master" && h != "worker" {
            return Err(err(
                "(role)",
                format!("hosts entry {h:?} must be \"master\" or \"worker\""),
            ));
        }
    }
    for s in &role.data.steps {
        let mut paths = Vec::new();
        match &s.resource {
            Resource::Directory(d) => {
                paths.push(&d.path);
                check_mode(&d.mode).map_err(|m| err(&s.name, m))?;
            }
            Resource::File(f) => {
                paths.push(&f.path);
                check_mode(&f.mode).map_err(|m| err(&s.name, m))?;
                let sources = [
                    f.template.is_some(),
                    f.content.is_some(),
                    f.pushed.is_some(),
                ];
                if sources.iter().filter(|b| **b).count() != 1 {
                    return Err(err(
                        &s.name,
                        "a file needs exactly one of `template`, `content` or `pushed`".into(),
                    ));
                }
            }
            Resource::Download(d) => {
                paths.push(&d.dest);
                if d.source != "url" && d.source != "push" && !d.source.contains("{{") {
                    return Err(err(
                        &s.name,
                        format!("download source {:?} must be \"url\" or \"push\"", d.source),
                    ));
                }
            }
            Resource::Symlink(l) => paths.push(&l.path),
            Resource::Service(svc) => paths.push(&svc.pidfile),
            _ => {}
        }
        for p in paths {
            check_path(p).map_err(|m| err(&s.name, m))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write_role(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join(name)).expect("mkdir");
        std::fs::write(dir.join(name).join("role.toml"), text).expect("write");
    }

    fn load(text: &str) -> Result<Vec<Role>, RoleError> {
        let dir = tempfile::tempdir().expect("tempdir");
        write_role(dir.path(), "t", text);
        Library {
            roles_dir: Some(dir.path().to_path_buf()),
            templates_dir: None,
        }
        .load_roles(&["t".into()])
    }

    #[test]
    fn unknown_field_is_rejected_naming_the_file() {
        let err = load("[[step]]\nname = \"x\"\ndirectory = { path = \"/x\", mod = \"0755\" }\n")
            .expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("role.toml") && msg.contains("mod"), "{msg}");
    }

    #[test]
    fn a_step_needs_exactly_one_resource() {
        let err = load("[[step]]\nname = \"two\"\ndirectory = { path = \"/x\" }\nsymlink = { path = \"/y\", target = \"/x\" }\n")
            .expect_err("two");
        assert!(err.to_string().contains("names 2 resources"), "{err}");
    }

    #[test]
    fn bad_mode_and_relative_path_are_rejected() {
        assert!(
            load("[[step]]\nname = \"m\"\ndirectory = { path = \"/x\", mode = \"rwx\" }\n")
                .is_err()
        );
        assert!(load("[[step]]\nname = \"p\"\ndirectory = { path = \"x\" }\n").is_err());
    }

    #[test]
    fn notify_must_name_a_handler() {
        let err = load("[[step]]\nname = \"f\"\nnotify = [\"restart nothing\"]\ndirectory = { path = \"/x\" }\n").expect_err("notify");
        assert!(err.to_string().contains("restart nothing"), "{err}");
    }

    #[test]
    fn embedded_roles_all_load() {
        let lib = Library::default();
        let names: Vec<String> = EMBEDDED_ROLES
            .dirs()
            .map(|d| d.path().display().to_string())
            .collect();
        assert!(!names.is_empty());
        lib.load_roles(&names)
            .expect("every built-in role is valid");
    }

    #[test]
    fn unknown_role_is_a_clear_error() {
        let err = Library::default()
            .load_roles(&["nope".into()])
            .expect_err("missing");
        assert!(err.to_string().contains("\"nope\" not found"), "{err}");
    }
}

#[cfg(test)]
mod template_tests {
    //! The built-in Spark templates rendered with a realistic context.

    use super::*;
    use crate::roles::model::{ServiceSpec, ServiceState};
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A host's context with the typed Spark values sparkboot computes (not a hand-copied map).
    fn context(role: &str, address: &str) -> serde_json::Value {
        context_with(role, address, "", |_| {})
    }

    /// The same context with extra `[spark]` lines and a last change to the Spark values (what
    /// `spark::prepare_for` computes beyond `SparkContext::new`, such as the S3 event log URI).
    fn context_with(
        role: &str,
        address: &str,
        extra: &str,
        adjust: impl FnOnce(&mut crate::spark::context::SparkContext),
    ) -> serde_json::Value {
        use crate::spark::context::{Secrets, SparkContext, TemplateValues};
        let raw = toml::from_str(&format!(
            "{extra}\n[defaults]\n\"spark.deploy.spreadOut\" = false\n\"spark.worker.cleanup.enabled\" = true\n",
        ))
        .expect("toml");
        let settings = crate::spark::settings::resolve(raw).expect("settings");
        let layout = crate::spark::layout::tests::builtin();
        let mut spark = SparkContext::new(
            &settings,
            &layout,
            "http://x/s.tgz".into(),
            "ab".repeat(64),
            "url",
        );
        adjust(&mut spark);
        let values = TemplateValues {
            spark,
            secrets: Secrets {
                spark_auth: "s3cr3t-0123456789abcdef".into(),
                connect_token: "c0nn3ct-t0k3n-0123456789abcdef".into(),
            },
        };
        let mut ctx = json!({
            "host": {"name": "w1", "address": address, "role": role, "user": "root"},
            "facts": {"cpus": 4, "memory_mb": 8192, "systemd": false, "java_major": 17},
            "inventory": {"source": "t", "master": {"name": "m", "address": "127.1.0.2", "role": "master"},
                          "workers": [{"name": "w1", "address": "127.1.0.3", "role": "worker"},
                                      {"name": "w2", "address": "127.1.0.4", "role": "worker"}]},
            "cluster": {"name": "c"},
            "vars": {},
            "exports": {"master_pubkey": "ssh-ed25519 AAAAkey"},
        });
        let values = serde_json::to_value(values).expect("values");
        if let (Some(map), Some(add)) = (ctx.as_object_mut(), values.as_object()) {
            map.extend(add.clone());
        }
        ctx
    }

    fn files(role: &str, address: &str) -> BTreeMap<String, String> {
        files_with(role, address, "", serde_json::Value::Null)
    }

    /// The built-in roles' steps for a host with these `[spark]` lines and, unless Null, these
    /// facts.
    fn steps_with(
        role: &str,
        address: &str,
        spark_toml: &str,
        facts: serde_json::Value,
    ) -> Vec<Step> {
        let mut ctx = context_with(role, address, spark_toml, |_| {});
        if !facts.is_null() {
            ctx["facts"] = facts;
        }
        steps_for(role, &ctx)
    }

    fn files_with(
        role: &str,
        address: &str,
        spark_toml: &str,
        facts: serde_json::Value,
    ) -> BTreeMap<String, String> {
        steps_with(role, address, spark_toml, facts)
            .into_iter()
            .filter_map(|s| match s.resource {
                Resource::File(spec) => Some((spec.path, spec.content.unwrap_or_default())),
                _ => None,
            })
            .collect()
    }

    fn steps_for(role: &str, ctx: &serde_json::Value) -> Vec<Step> {
        let lib = Library::default();
        let names: Vec<String> = crate::config::DEFAULT_ROLES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let roles = lib.load_roles(&names).expect("built-in roles load");
        let eval = EvalContext::new(&lib, &roles).expect("templates compile");
        let filter = Filter {
            phase: None,
            ignore_when: false,
        };
        let (steps, _) = evaluate(&eval, &roles, role, "w1", ctx, filter).expect("renders");
        steps
    }

    fn file_of(steps: &[Step], path: &str) -> Option<String> {
        steps.iter().find_map(|s| match &s.resource {
            Resource::File(spec) if spec.path == path => {
                Some(spec.content.clone().unwrap_or_default())
            }
            _ => None,
        })
    }

    fn has_service(steps: &[Step], name: &str) -> bool {
        steps
            .iter()
            .any(|s| matches!(&s.resource, Resource::Service(spec) if spec.name == name))
    }

    #[test]
    fn event_logs_go_to_the_layout_dir_and_the_history_server_reads_them_on_the_master() {
        let defaults = "/opt/spark/conf/spark-defaults.conf";
        let m = steps_for("master", &context("master", "127.1.0.2"));
        let d = file_of(&m, defaults).expect("master defaults");
        assert!(
            d.contains("spark.eventLog.enabled              true\n"),
            "{d}"
        );
        assert!(d.contains("spark.eventLog.dir                  file:/var/lib/spark/events\n"));
        assert!(d.contains("spark.history.fs.logDirectory       file:/var/lib/spark/events\n"));
        assert!(d.contains("spark.history.ui.port               18080\n"));
        assert!(has_service(&m, "spark-history"));
        let svc = m
            .iter()
            .find_map(|s| match &s.resource {
                Resource::Service(spec) if spec.name == "spark-history" => Some(spec.clone()),
                _ => None,
            })
            .expect("history service");
        assert_eq!(
            svc.pidfile,
            "/var/lib/spark/run/spark-spark-org.apache.spark.deploy.history.HistoryServer-1.pid"
        );
        assert!(svc
            .start
            .ends_with("start org.apache.spark.deploy.history.HistoryServer 1"));
        // Every node has the directory (a cluster-mode driver may run on a worker).
        let w = steps_for("worker", &context("worker", "127.1.0.3"));
        assert!(w.iter().any(|s| matches!(&s.resource,
            Resource::Directory(spec) if spec.path == "/var/lib/spark/events" && spec.owner == "spark")));
        let wd = file_of(&w, defaults).expect("worker defaults");
        assert!(
            wd.contains("spark.eventLog.dir") && !wd.contains("spark.history."),
            "{wd}"
        );
        assert!(!has_service(&w, "spark-history"));
    }

    /// `connect_server = true`: on the master only, the Connect server's gRPC binds the
    /// master's address with the cluster's token from spark-defaults.conf (root's 0640 file);
    /// the token is in no command line or unit. Off by default, where a running one is stopped.
    #[test]
    fn the_connect_server_binds_the_master_address_with_a_token_only_in_the_config() {
        let token = "c0nn3ct-t0k3n-0123456789abcdef";
        let on = "connect_server = true\nconnect_max_cores = 2";
        let m = steps_for("master", &context_with("master", "127.1.0.2", on, |_| {}));
        let d = file_of(&m, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
        for line in [
            "spark.connect.grpc.binding.address  127.1.0.2\n",
            "spark.connect.grpc.binding.port     15002\n",
            &format!("spark.connect.authenticate.token    {token}\n"),
        ] {
            assert!(d.contains(line), "{line:?} in\n{d}");
        }
        let svc: Vec<ServiceSpec> = m
            .iter()
            .filter_map(|s| match &s.resource {
                Resource::Service(spec) if spec.name == "spark-connect" => Some(spec.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(svc.len(), 1, "{svc:?}");
        assert_eq!(svc[0].state, ServiceState::Running);
        assert_eq!(svc[0].user, "spark");
        assert!(
            svc[0].start.ends_with(
                "submit org.apache.spark.sql.connect.service.SparkConnectServer 1 --name 'Spark Connect server' --conf spark.cores.max=2"
            ),
            "{}",
            svc[0].start
        );
        assert!(!svc[0].start.contains(token));
        let mut facts = context_with("master", "127.1.0.2", on, |_| {});
        facts["facts"]["systemd"] = true.into();
        let unit = file_of(
            &steps_for("master", &facts),
            "/etc/systemd/system/spark-connect.service",
        )
        .expect("unit");
        assert!(unit.contains("--class org.apache.spark.sql.connect.service.SparkConnectServer"));
        assert!(!unit.contains(token), "{unit}");
        // Workers get none of it.
        let w = steps_for("worker", &context_with("worker", "127.1.0.3", on, |_| {}));
        let wd = file_of(&w, "/opt/spark/conf/spark-defaults.conf").expect("worker defaults");
        assert!(!wd.contains("spark.connect."), "{wd}");
        // Off (the default): no binding, no token, and a step that keeps it stopped.
        let off = steps_for("master", &context("master", "127.1.0.2"));
        let d = file_of(&off, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
        assert!(!d.contains("spark.connect."), "{d}");
        assert!(off.iter().any(|s| matches!(&s.resource,
            Resource::Service(spec) if spec.name == "spark-connect" && spec.state == ServiceState::Stopped)));
    }

    #[test]
    fn the_history_server_can_be_turned_off_and_follows_s3_and_systemd() {
        let off = context_with("master", "127.1.0.2", "history_server = false", |_| {});
        let m = steps_for("master", &off);
        // The one history step keeps it stopped: a server an earlier run started is stopped,
        // by its unit where systemd runs, else as the spark user, waiting for it to exit.
        let history: Vec<ServiceSpec> = m
            .iter()
            .filter_map(|s| match &s.resource {
                Resource::Service(spec) if spec.name == "spark-history" => Some(spec.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0].state, ServiceState::Stopped);
        assert_eq!(history[0].user, "spark");
        assert_eq!(
            history[0].systemd_unit.as_deref(),
            Some("spark-history.service")
        );
        assert!(history[0]
            .stop
            .ends_with("stop org.apache.spark.deploy.history.HistoryServer 1"));
        assert!(steps_for("master", &context("master", "127.1.0.2"))
            .iter()
            .all(|s| !matches!(&s.resource,
                Resource::Service(spec) if spec.name == "spark-history" && spec.state == ServiceState::Stopped)));
        let d = file_of(&m, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
        assert!(
            d.contains("spark.eventLog.enabled") && !d.contains("spark.history."),
            "{d}"
        );

        // What spark::prepare_for sets with `event_log = "s3"` (s3::event_log_uri).
        let s3 = context_with("master", "127.1.0.2", "history_port = 18181", |s| {
            s.event_log_dir = "s3a://my-bucket/sparkboot/events".into();
        });
        let d = file_of(
            &steps_for("master", &s3),
            "/opt/spark/conf/spark-defaults.conf",
        )
        .expect("defaults");
        assert!(
            d.contains("spark.eventLog.dir                  s3a://my-bucket/sparkboot/events\n"),
            "{d}"
        );
        assert!(
            d.contains("spark.history.fs.logDirectory       s3a://my-bucket/sparkboot/events\n")
        );
        assert!(d.contains("spark.history.ui.port               18181\n"));

        let mut sd = context("master", "127.1.0.2");
        sd["facts"]["systemd"] = true.into();
        let unit = file_of(
            &steps_for("master", &sd),
            "/etc/systemd/system/spark-history.service",
        )
        .expect("unit");
        assert!(unit.contains("ExecStart=/opt/spark/bin/spark-class org.apache.spark.deploy.history.HistoryServer\n"), "{unit}");
        assert!(unit.contains("SuccessExitStatus=143\n") && unit.contains("User=spark\n"));
    }

    /// The S3A values `spark::prepare_for` computes for this Spark release, from the real
    /// connector table (the jars' SHA-256s stand in for the downloaded files').
    fn s3a_values(version: &str, region: &str, warehouse: &str) -> crate::spark::s3a::S3aContext {
        use crate::spark::s3a::*;
        let hadoop = hadoop_of_spark(version).expect("known Spark");
        let c = connector_for(hadoop).expect("known Hadoop");
        let jar = |co: Coordinates, fill: &str| JarContext {
            coordinates: co.to_string(),
            file: co.file_name(),
            sha256: fill.repeat(64),
            verified: format!("sha1:{}", fill.repeat(40)),
            checksum: "sha1".into(),
        };
        S3aContext {
            enabled: true,
            hadoop: hadoop.into(),
            connector: jar(c.hadoop_aws, "c"),
            sdk: jar(c.sdk_bundle, "d"),
            credentials_provider: instance_profile_provider(c.sdk).into(),
            region: region.into(),
            warehouse_dir: warehouse.into(),
        }
    }

    /// The S3A block of a rendered spark-defaults.conf, from its comment to the next section.
    fn s3a_block(defaults: &str) -> String {
        defaults
            .lines()
            .skip_while(|l| !l.starts_with("# S3A"))
            .take_while(|l| !l.starts_with("# A standalone"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn s3a_on_spark_4_renders_the_v2_instance_profile_and_installs_both_jars() {
        for role in ["master", "worker"] {
            let ctx = context_with(role, "127.1.0.3", "", |s| {
                s.s3a = s3a_values(
                    "4.3.0",
                    "eu-west-1",
                    "s3a://data-bucket/sparkboot/warehouse",
                );
            });
            let steps = steps_for(role, &ctx);
            let d = file_of(&steps, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
            assert_eq!(
                s3a_block(&d),
                "# S3A (s3a://) reads and writes S3 with the EC2 instance profile's role, and with nothing else:\n\
                 # no key is configured anywhere (Hadoop 3.5.0, org.apache.hadoop:hadoop-aws:3.5.0).\n\
                 spark.hadoop.fs.s3a.aws.credentials.provider    org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider\n\
                 spark.hadoop.fs.s3a.endpoint.region             eu-west-1\n\
                 spark.sql.warehouse.dir                         s3a://data-bucket/sparkboot/warehouse\n"
            );
            for key in ["access.key", "secret.key", "session.token"] {
                assert!(!d.contains(key), "{d}");
            }
            let jars: Vec<(String, String, String, String, String)> = steps
                .iter()
                .filter_map(|s| match &s.resource {
                    Resource::File(f) => f.pushed.clone().map(|sha| {
                        (
                            f.path.clone(),
                            sha,
                            f.owner.clone(),
                            f.group.clone(),
                            f.mode.clone(),
                        )
                    }),
                    _ => None,
                })
                .collect();
            let jar = |path: &str, fill: &str| {
                (
                    path.to_string(),
                    fill.repeat(64),
                    "root".into(),
                    "root".into(),
                    "0644".into(),
                )
            };
            assert_eq!(
                jars,
                vec![
                    jar(
                        "/opt/spark-4.3.0-bin-hadoop3/jars/hadoop-aws-3.5.0.jar",
                        "c"
                    ),
                    jar("/opt/spark-4.3.0-bin-hadoop3/jars/bundle-2.35.4.jar", "d"),
                ]
            );
            let check: Vec<(String, Option<String>)> = steps
                .iter()
                .filter_map(|s| match &s.resource {
                    Resource::Command(c) if s.name.contains("S3A") => {
                        Some((c.run.clone(), c.unless.clone()))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(
                check,
                vec![(
                    "test -f /opt/spark-4.3.0-bin-hadoop3/jars/hadoop-client-api-3.5.0.jar || {\n  echo 'sparkboot: '/opt/spark-4.3.0-bin-hadoop3/jars/hadoop-client-api-3.5.0.jar' is missing, so the S3A connector for Hadoop 3.5.0 would not match this Spark: set spark.hadoop_version to the version of its jars/hadoop-client-api-*.jar, or s3a = false' >&2\n  exit 1\n}".to_string(),
                    Some("test -f /opt/spark-4.3.0-bin-hadoop3/jars/hadoop-client-api-3.5.0.jar".to_string())
                )]
            );
            let pushed = steps
                .iter()
                .find(|s| matches!(&s.resource, Resource::File(f) if f.pushed.is_some()))
                .expect("jar step");
            assert_eq!(
                pushed.name,
                "Ensure the S3A connector org.apache.hadoop:hadoop-aws:3.5.0 is installed (verified against its published .sha1)"
            );
            assert!(
                matches!(&pushed.resource, Resource::File(f) if f.content.is_none()),
                "a pushed jar gets no header or text content"
            );
        }
    }

    #[test]
    fn s3a_on_spark_3_5_renders_the_v1_instance_profile_without_optional_lines() {
        let ctx = context_with("worker", "127.1.0.3", "version = \"3.5.7\"", |s| {
            s.s3a = s3a_values("3.5.7", "", "");
        });
        let steps = steps_for("worker", &ctx);
        let d = file_of(&steps, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
        assert_eq!(
            s3a_block(&d),
            "# S3A (s3a://) reads and writes S3 with the EC2 instance profile's role, and with nothing else:\n\
             # no key is configured anywhere (Hadoop 3.3.4, org.apache.hadoop:hadoop-aws:3.3.4).\n\
             spark.hadoop.fs.s3a.aws.credentials.provider    com.amazonaws.auth.InstanceProfileCredentialsProvider\n"
        );
        let paths: Vec<String> = steps
            .iter()
            .filter_map(|s| match &s.resource {
                Resource::File(f) if f.pushed.is_some() => Some(f.path.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            paths,
            [
                "/opt/spark-3.5.7-bin-hadoop3/jars/hadoop-aws-3.3.4.jar",
                "/opt/spark-3.5.7-bin-hadoop3/jars/aws-java-sdk-bundle-1.12.262.jar"
            ]
        );
    }

    #[test]
    fn s3a_off_renders_no_s3a_lines_and_installs_no_jar() {
        let steps = steps_for("master", &context("master", "127.1.0.2"));
        let d = file_of(&steps, "/opt/spark/conf/spark-defaults.conf").expect("defaults");
        assert!(!d.contains("s3a") && !d.contains("warehouse"), "{d}");
        assert!(steps
            .iter()
            .all(|s| !matches!(&s.resource, Resource::File(f) if f.pushed.is_some())));
    }

    #[test]
    fn worker_spark_env_uses_its_own_address_and_facts() {
        let f = files("worker", "127.1.0.3");
        let env = &f["/opt/spark/conf/spark-env.sh"];
        assert!(env.starts_with("# Managed by sparkboot"), "{env}");
        assert!(env.contains("export SPARK_MASTER_HOST=127.1.0.2\n"));
        assert!(env.contains("export SPARK_LOCAL_IP=127.1.0.3\n"));
        assert!(env.contains("export SPARK_WORKER_CORES=4\n"));
        assert!(env.contains("export SPARK_WORKER_MEMORY=7168m\n"));
        assert!(env.contains("export SPARK_PID_DIR=/var/lib/spark/run\n"));
        assert!(
            !f.contains_key("/opt/spark/conf/workers"),
            "conf/workers is the master's"
        );
    }

    #[test]
    fn spark_defaults_carry_auth_and_only_this_role_s_overrides() {
        let w = files("worker", "127.1.0.3");
        let d = &w["/opt/spark/conf/spark-defaults.conf"];
        assert!(d.contains("spark.authenticate                  true\n"));
        assert!(d.contains("spark.authenticate.secret           s3cr3t-0123456789abcdef\n"));
        // The default Spark (4.3.0) carries SPARK-56227: GCM.
        assert!(d.contains("spark.network.crypto.enabled        true\n"));
        assert!(d.contains("spark.network.crypto.cipher         AES/GCM/NoPadding\n"));
        assert!(d.contains("spark.master.rest.enabled           false\n"));
        assert!(
            d.contains("spark.worker.cleanup.enabled    true\n") && !d.contains("spreadOut"),
            "{d}"
        );
        let m = files("master", "127.1.0.2");
        assert!(
            m["/opt/spark/conf/spark-defaults.conf"].contains("spark.deploy.spreadOut    false\n")
        );
        assert_eq!(
            m["/opt/spark/conf/workers"]
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            vec!["127.1.0.3", "127.1.0.4"]
        );
    }

    #[test]
    fn a_pinned_spark_3_5_7_keeps_ctr_and_its_own_install_dir() {
        let f = files_with(
            "worker",
            "127.1.0.3",
            "version = \"3.5.7\"",
            serde_json::Value::Null,
        );
        let d = &f["/opt/spark/conf/spark-defaults.conf"];
        assert!(
            d.contains("spark.network.crypto.enabled        true\n"),
            "{d}"
        );
        assert!(
            d.contains("spark.network.crypto.cipher         AES/CTR/NoPadding\n"),
            "{d}"
        );
        let names: Vec<String> = steps_with(
            "worker",
            "127.1.0.3",
            "version = \"3.5.7\"",
            serde_json::Value::Null,
        )
        .into_iter()
        .map(|s| s.name)
        .collect();
        assert!(
            names.contains(&"Ensure Spark 3.5.7 is installed and verified".to_string()),
            "{names:?}"
        );
    }

    /// The Java role per distribution: never below 17 (Spark 4 needs 17 or 21), 21 where the
    /// distribution no longer packages 17, nothing when 17 or newer is there.
    #[test]
    fn java_17_or_21_per_distribution_and_never_8_or_11() {
        let java = |os_id: &str, os_version: &str, java_major: u32| -> Vec<model::PackageSpec> {
            let facts = serde_json::json!({"cpus": 4, "memory_mb": 8192, "systemd": true,
                "java_major": java_major, "os_id": os_id, "os_version": os_version});
            steps_with("worker", "127.1.0.3", "", facts)
                .into_iter()
                .filter(|s| s.role == "java")
                .filter_map(|s| match s.resource {
                    Resource::Package(p) => Some(p),
                    _ => None,
                })
                .collect()
        };
        let apt = |v: &[model::PackageSpec]| -> Vec<String> {
            v.iter().flat_map(|p| p.apt.clone()).collect()
        };
        let dnf = |v: &[model::PackageSpec]| -> Vec<String> {
            v.iter().flat_map(|p| p.dnf.clone()).collect()
        };
        for (os, version) in [("debian", "12"), ("ubuntu", "22.04"), ("ubuntu", "24.04")] {
            for have in [0, 8, 11] {
                assert_eq!(
                    apt(&java(os, version, have)),
                    vec!["openjdk-17-jre-headless"],
                    "{os} {version} with Java {have}"
                );
            }
        }
        for version in ["13", "14"] {
            assert_eq!(
                apt(&java("debian", version, 11)),
                vec!["openjdk-21-jre-headless"],
                "debian {version}"
            );
        }
        assert_eq!(
            dnf(&java("amzn", "2023", 0)),
            vec!["java-17-amazon-corretto-headless"]
        );
        for have in [17, 21] {
            assert!(
                java("debian", "12", have).is_empty(),
                "Java {have} is enough"
            );
        }
        assert!(
            java("debian", "", 0).len() == 1,
            "no VERSION_ID: one runtime"
        );
    }
}
