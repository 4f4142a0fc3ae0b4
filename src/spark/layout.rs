//! Where Spark lives on a node: one typed value, read from the `[layout]` table of the `spark`
//! role, and the only source of Spark paths, users, modes and daemon names in sparkboot.
//!
//! The roles and templates use it through the Spark context (`{{ spark.home }}`,
//! `{{ spark.master.pidfile }}`), and `status`, the scale-in stop, `watch`'s decommission and
//! `harden`'s rules read the same value, so a layout overridden through `roles_dir` moves every
//! one of them together. What is derived here (the pidfile name, the conf dir, the unit name)
//! follows Spark's and systemd's own conventions, not a choice of sparkboot's.

use serde::{Deserialize, Serialize};

use crate::roles::{Library, RoleError};

/// The role that carries the layout.
pub const LAYOUT_ROLE: &str = "spark";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The account the daemons (and so every Spark job) run as, and its group.
    pub user: String,
    pub group: String,
    /// That account's home: it owns it, so root acts there only as the user.
    pub user_home: String,
    /// Each version unpacks into `<install_root>/spark-<version>-<package>`.
    pub install_root: String,
    /// A link to the installed version; `<home>/conf` holds the config.
    pub home: String,
    pub pid_dir: String,
    pub log_dir: String,
    pub work_dir: String,
    pub local_dir: String,
    /// Where applications write their event logs and the history server reads them (unless
    /// `[spark] event_log = "s3"`).
    pub event_log_dir: String,
    /// The cluster key pair's private half on the master (`.pub` beside it).
    pub cluster_key: String,
    pub modes: Modes,
    pub master: Daemon,
    pub worker: Daemon,
    /// The history server, on the master.
    pub history: Daemon,
    pub connect: Daemon,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    /// spark-env.sh and spark-defaults.conf (owner root, group `group`).
    pub conf: String,
    /// The pid, log, work and local directories (owner `user`).
    pub dirs: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    /// The service name (its systemd unit is `<service>.service`).
    pub service: String,
    /// The main class `spark-daemon.sh` and `spark-class` start.
    pub class: String,
}

/// A daemon as the templates and the Rust side use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonPaths {
    pub service: String,
    pub class: String,
    pub unit: String,
    pub pidfile: String,
}

impl Layout {
    /// Reads and checks the layout from the `spark` role (the override dir first).
    pub fn load(library: &Library) -> Result<Layout, RoleError> {
        let role = library.load_role(LAYOUT_ROLE)?;
        let invalid = |message: String| RoleError::Invalid {
            file: role.file.clone(),
            step: "[layout]".into(),
            message,
        };
        let table = role.data.layout.clone().ok_or_else(|| {
            invalid("the spark role has no [layout] table: sparkboot reads every Spark path, user and daemon name from it".into())
        })?;
        let layout: Layout = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        layout.check().map_err(invalid)?;
        Ok(layout)
    }

    fn check(&self) -> Result<(), String> {
        let name_ok = |v: &str| {
            !v.is_empty()
                && v.len() <= 32
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !v.starts_with('-')
        };
        for (field, v) in [
            ("user", &self.user),
            ("group", &self.group),
            ("master.service", &self.master.service),
            ("worker.service", &self.worker.service),
            ("history.service", &self.history.service),
            ("connect.service", &self.connect.service),
        ] {
            if !name_ok(v) {
                return Err(format!(
                    "{field} = {v:?} must be a name of letters, digits, '-', '_' or '.'"
                ));
            }
        }
        for (field, v) in [
            ("user_home", &self.user_home),
            ("install_root", &self.install_root),
            ("home", &self.home),
            ("pid_dir", &self.pid_dir),
            ("log_dir", &self.log_dir),
            ("work_dir", &self.work_dir),
            ("local_dir", &self.local_dir),
            ("event_log_dir", &self.event_log_dir),
            ("cluster_key", &self.cluster_key),
        ] {
            let ok = v.starts_with('/')
                && v.len() > 1
                && !v.ends_with('/')
                && !v.split('/').any(|c| c == "..")
                && v.chars().all(|c| !c.is_control() && !c.is_whitespace());
            if !ok {
                return Err(format!(
                    "{field} = {v:?} must be an absolute path without spaces, '..' or a trailing '/'"
                ));
            }
        }
        for (field, v) in [
            ("master.class", &self.master.class),
            ("worker.class", &self.worker.class),
            ("history.class", &self.history.class),
            ("connect.class", &self.connect.class),
        ] {
            if v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$'))
            {
                return Err(format!("{field} = {v:?} must be a Java class name"));
            }
        }
        for (field, v) in [
            ("modes.conf", &self.modes.conf),
            ("modes.dirs", &self.modes.dirs),
        ] {
            if !(3..=4).contains(&v.len()) || u32::from_str_radix(v, 8).is_err() {
                return Err(format!(
                    "{field} = {v:?} must be an octal mode like \"0640\""
                ));
            }
        }
        Ok(())
    }

    pub fn conf_dir(&self) -> String {
        format!("{}/conf", self.home)
    }

    pub fn conf_file(&self, name: &str) -> String {
        format!("{}/{name}", self.conf_dir())
    }

    /// Where a version unpacks, e.g. /opt/spark-3.5.7-bin-hadoop3.
    pub fn install_dir(&self, version: &str, package: &str) -> String {
        format!("{}/spark-{version}-{package}", self.install_root)
    }

    pub fn daemon_script(&self) -> String {
        format!("{}/sbin/spark-daemon.sh", self.home)
    }

    /// spark-daemon.sh names its pidfile `spark-<SPARK_IDENT_STRING>-<class>-<instance>.pid`;
    /// spark-env.sh sets the ident to the user, so the name does not depend on who starts it.
    pub fn daemon(&self, which: &Daemon) -> DaemonPaths {
        DaemonPaths {
            service: which.service.clone(),
            class: which.class.clone(),
            unit: format!("{}.service", which.service),
            pidfile: format!("{}/spark-{}-{}-1.pid", self.pid_dir, self.user, which.class),
        }
    }

    pub fn mode(&self, octal: &str) -> u32 {
        u32::from_str_radix(octal, 8).unwrap_or(0o600)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The built-in layout (also what other modules' tests use).
    pub fn builtin() -> Layout {
        Layout::load(&Library::default()).expect("the built-in spark role has a valid layout")
    }

    #[test]
    fn the_built_in_layout_loads_and_derives_spark_names() {
        let l = builtin();
        assert_eq!(
            l.conf_file("spark-env.sh"),
            format!("{}/conf/spark-env.sh", l.home)
        );
        let m = l.daemon(&l.master);
        assert_eq!(m.unit, format!("{}.service", l.master.service));
        assert!(m.pidfile.starts_with(&l.pid_dir) && m.pidfile.ends_with("Master-1.pid"));
    }

    #[test]
    fn an_override_without_a_layout_or_with_a_bad_path_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("spark")).expect("mkdir");
        let lib = Library {
            roles_dir: Some(dir.path().to_path_buf()),
            templates_dir: None,
        };
        std::fs::write(dir.path().join("spark/role.toml"), "phase = 0\n").expect("write");
        let err = Layout::load(&lib).expect_err("no layout");
        assert!(err.to_string().contains("no [layout]"), "{err}");
        let builtin = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("roles/spark/role.toml"),
        )
        .expect("read");
        let bad = builtin.replacen("pid_dir = \"", "pid_dir = \"relative/", 1);
        std::fs::write(dir.path().join("spark/role.toml"), bad).expect("write");
        let err = Layout::load(&lib).expect_err("bad path");
        assert!(err.to_string().contains("pid_dir"), "{err}");
    }
}
