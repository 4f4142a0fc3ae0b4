//! Facts: what a host looks like now, gathered by one composite probe per host.
//!
//! A [`ProbeRequest`] lists everything the plan will ask about (paths, users, packages,
//! services, guards); `shell::probe` turns it into one script, so a no-op run costs one round
//! trip per host. [`parse`] is a pure function of the request and the captured output, which is
//! what the unit tests feed it.

mod parse;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

pub use parse::{parse, parse_content};

#[derive(Debug, Error, PartialEq)]
pub enum FactError {
    #[error("the fact probe's output has no `{0}` section; the remote shell may have failed early (run with -v to see its stderr)")]
    MissingSection(String),
    #[error("cannot parse probe section `{section}`: {message}")]
    Bad { section: String, message: String },
}

/// Everything one host's plan needs to know, listed before the probe runs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProbeRequest {
    pub paths: BTreeSet<String>,
    /// Paths among `paths` whose content is not hashed (their facts carry an empty SHA-256):
    /// large files known by a marker beside them instead, such as the S3A jars.
    pub unhashed: BTreeSet<String>,
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    pub packages: BTreeSet<String>,
    /// Services to check: name -> how to tell it is running.
    pub services: BTreeMap<String, ServiceProbe>,
    /// Guard commands whose exit status decides a command step.
    pub guards: BTreeSet<String>,
    /// Files whose text the plan needs (authorized_keys, or every managed file for `--diff`).
    pub contents: BTreeSet<String>,
    /// Users whose `~/.ssh/authorized_keys` the plan needs (home resolved on the host).
    pub authorized_keys: BTreeSet<String>,
    /// Read-only commands whose output the engine wants from the same round trip (the
    /// master's status page), by name. Built in `shell`, never from user input.
    pub observe: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProbe {
    pub pidfile: String,
    /// A string the process's command line must contain, so a recycled PID is not mistaken for
    /// the daemon.
    pub cmdline_match: Option<String>,
    pub systemd_unit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemFacts {
    pub os_id: String,
    pub os_version: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub uid: u32,
    pub hostname: String,
    pub systemd: bool,
    /// `apt`, `dnf`, `yum` or `none`.
    pub package_manager: String,
    /// Major version of `java` on PATH, 0 when there is none.
    pub java_major: u32,
}

/// A mode as a number, or (in golden case files) as an octal string such as "0750".
fn octal<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Number(u32),
        Octal(String),
    }
    match Mode::deserialize(d)? {
        Mode::Number(n) => Ok(n),
        Mode::Octal(s) => u32::from_str_radix(&s, 8).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum PathFact {
    Absent,
    Dir {
        owner: String,
        group: String,
        #[serde(deserialize_with = "octal")]
        mode: u32,
    },
    File {
        owner: String,
        group: String,
        #[serde(deserialize_with = "octal")]
        mode: u32,
        sha256: String,
    },
    Link {
        target: String,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFact {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFact {
    pub running: bool,
    pub pid: Option<u32>,
}

/// The parsed probe. Deserializable so golden plan cases can state facts as data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Facts {
    pub system: SystemFacts,
    pub paths: BTreeMap<String, PathFact>,
    /// `None` when the user does not exist.
    pub users: BTreeMap<String, Option<UserFact>>,
    /// Group name -> gid, `None` when absent.
    pub groups: BTreeMap<String, Option<u32>>,
    pub packages: BTreeMap<String, bool>,
    pub services: BTreeMap<String, ServiceFact>,
    /// Guard command -> exit status.
    pub guards: BTreeMap<String, i32>,
    /// Path -> text, `None` when the file is absent.
    pub contents: BTreeMap<String, Option<String>>,
    /// User -> text of their authorized_keys, `None` when absent.
    pub authorized_keys: BTreeMap<String, Option<String>>,
    /// Name -> stdout of an observed command (see `ProbeRequest::observe`).
    pub observed: BTreeMap<String, String>,
}

impl Facts {
    pub fn path(&self, path: &str) -> &PathFact {
        self.paths.get(path).unwrap_or(&PathFact::Absent)
    }
}
