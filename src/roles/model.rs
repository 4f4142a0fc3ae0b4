//! The role file format: typed TOML with unknown fields rejected.
//!
//! A role is data: `roles/<name>/role.toml` lists steps in order, each naming exactly one
//! resource, plus handlers that restart a service when a step that notifies them changed.
//! String fields may hold tera expressions (`{{ spark.home }}`), rendered per host.
//!
//! The resource is a serde enum keyed by its kind (`file = { ... }`), so the same type is the
//! raw step as written and, once every string in it is rendered, the evaluated step the planner
//! reads. A step is read by hand from its table (a flattened enum would silently accept unknown
//! keys), so a misspelt key or a second resource is an error that says which.

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    /// For people reading the role; sparkboot does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    /// Node roles this role applies to: `master`, `worker` (default both).
    #[serde(default = "both")]
    pub hosts: Vec<String>,
    /// Roles run phase by phase across all hosts; a phase starts only when the previous one has
    /// finished everywhere (so the master's daemon is up before any worker starts).
    #[serde(default)]
    pub phase: u32,
    /// Values sparkboot must compute before this role can render: `spark` (the resolved
    /// checksum, the cluster secret, the layout, ...). Only then does sparkboot fetch the
    /// checksum.
    #[serde(default)]
    pub context: Vec<String>,
    #[serde(default, rename = "handler")]
    pub handlers: Vec<Handler>,
    #[serde(default, rename = "step")]
    pub steps: Vec<RawStep>,
    /// Public values read from the master after this role's phase and offered to later phases
    /// on every host as `exports.<name>` (for example the cluster's public key).
    #[serde(default, rename = "export")]
    pub exports: Vec<Export>,
    /// Where Spark lives on the nodes (the `spark` role carries it); read typed by
    /// `crate::spark::layout`, and the source of every Spark path sparkboot uses.
    pub layout: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub name: String,
    /// A file on the master whose text (trimmed) is the value. Never a secret. May be a
    /// template of the Spark context (`{{ spark.cluster_key }}.pub`).
    pub path: String,
}

fn both() -> Vec<String> {
    vec!["master".into(), "worker".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handler {
    pub name: String,
    /// The service (a `service` step's `name`) to restart.
    pub restart: String,
}

/// One step as written: a label, optional condition and notifications, and one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStep {
    pub name: String,
    /// A tera expression; the step is skipped on hosts where it is false.
    pub when: Option<String>,
    pub notify: Vec<String>,
    pub resource: Resource,
}

/// The resource kinds, keyed as in the role file.
pub const KINDS: &[&str] = &[
    "package",
    "group",
    "user",
    "directory",
    "file",
    "download",
    "symlink",
    "authorized_key",
    "service",
    "command",
];

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let text = |v: toml::Value, key: &str| match v {
            toml::Value::String(s) => Ok(s),
            other => Err(D::Error::custom(format!(
                "`{key}` must be a string, not {}",
                other.type_str()
            ))),
        };
        let name = match table.remove("name") {
            Some(v) => text(v, "name")?,
            None => return Err(D::Error::missing_field("name")),
        };
        let when = table.remove("when").map(|v| text(v, "when")).transpose()?;
        let notify = match table.remove("notify") {
            Some(v) => Vec::<String>::deserialize(v)
                .map_err(|e| D::Error::custom(format!("step {name:?}, `notify`: {e}")))?,
            None => Vec::new(),
        };
        if let Some(unknown) = table.keys().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(D::Error::custom(format!(
                "step {name:?}: unknown field `{unknown}`; a step has name, when, notify and one resource ({})",
                KINDS.join(", ")
            )));
        }
        if table.len() != 1 {
            return Err(D::Error::custom(format!(
                "step {name:?} names {} resources; a step must name exactly one ({})",
                table.len(),
                KINDS.join(", ")
            )));
        }
        let resource = Resource::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(format!("step {name:?}: {e}")))?;
        Ok(RawStep {
            name,
            when,
            notify,
            resource,
        })
    }
}

/// What a step manages. Every string field may be a template until the step is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Package(PackageSpec),
    Group(GroupSpec),
    User(UserSpec),
    Directory(DirectorySpec),
    File(FileSpec),
    Download(DownloadSpec),
    Symlink(SymlinkSpec),
    AuthorizedKey(AuthorizedKeySpec),
    Service(ServiceSpec),
    Command(CommandSpec),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Package names on Debian and Ubuntu.
    #[serde(default)]
    pub apt: Vec<String>,
    /// Package names on Amazon Linux and other dnf/yum systems.
    #[serde(default)]
    pub dnf: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    pub group: Option<String>,
    #[serde(default)]
    pub system: bool,
    pub home: Option<String>,
    pub shell: Option<String>,
}

fn root() -> String {
    "root".into()
}
fn dir_mode() -> String {
    "0755".into()
}
fn file_mode() -> String {
    "0644".into()
}
fn hash_comment() -> String {
    "#".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectorySpec {
    pub path: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "dir_mode")]
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    /// A template under templates/ (tera, strict about undefined variables). Evaluation renders
    /// it into `content` (with the "managed by" header) and clears this field.
    pub template: Option<String>,
    /// Literal content (rendered as a tera string); after evaluation, the file's whole text.
    pub content: Option<String>,
    /// The SHA-256 of a verified file the controller holds and streams as the content (the S3A
    /// connector's jars): no header, never shown, written only if the node's copy differs, and
    /// checked again on the node before it is renamed into place.
    pub pushed: Option<String>,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "file_mode")]
    pub mode: String,
    /// Comment leader for the "managed by sparkboot" header; empty for none.
    #[serde(default = "hash_comment")]
    pub comment: String,
    /// Never show this file's content, not even in `--diff`.
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DownloadSpec {
    pub url: String,
    /// Expected SHA-512 of the archive, hex.
    pub sha512: String,
    /// Directory the archive's single top-level directory becomes.
    pub dest: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    /// Where the archive comes from: `url` (the node downloads) or `push` (sparkboot streams a
    /// verified local copy, for nodes with no egress).
    #[serde(default = "url_source")]
    pub source: String,
}

fn url_source() -> String {
    "url".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeySpec {
    pub user: String,
    /// The public key line (`type base64 [comment]`).
    pub key: String,
    /// authorized_keys options, such as `from="10.0.0.5"`.
    #[serde(default)]
    pub options: String,
    /// A word that marks the lines this step owns; other lines carrying it are removed, so a
    /// replaced key does not linger.
    pub tag: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Run as this user (the fallback's start and stop commands).
    #[serde(default = "root")]
    pub user: String,
    /// Fallback where systemd does not run: commands and the pidfile that proves liveness.
    pub start: String,
    pub stop: String,
    pub pidfile: String,
    /// Text the daemon's command line contains, so a recycled PID is not mistaken for it.
    pub cmdline_match: Option<String>,
    /// systemd unit to use where systemd runs (its unit file is a separate `file` step).
    pub systemd_unit: Option<String>,
    /// `running` (the default) starts the service when it is not running; `stopped` stops one
    /// that runs (and disables its unit), so turning a service off in the config takes effect.
    #[serde(default)]
    pub state: ServiceState,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    #[default]
    Running,
    Stopped,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    pub run: String,
    /// Skip when this path exists.
    pub creates: Option<String>,
    /// Skip when this command exits 0 (it runs inside the fact probe).
    pub unless: Option<String>,
    #[serde(default = "root")]
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> Result<RawStep, String> {
        #[derive(Deserialize)]
        struct One {
            step: RawStep,
        }
        toml::from_str::<One>(text)
            .map(|o| o.step)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_step_reads_its_one_resource() {
        let s = step("[step]\nname = \"d\"\nnotify = [\"h\"]\ndirectory = { path = \"/x\" }\n")
            .expect("parses");
        assert_eq!(s.notify, vec!["h".to_string()]);
        assert!(matches!(s.resource, Resource::Directory(ref d) if d.mode == "0755"));
    }

    #[test]
    fn two_resources_an_unknown_key_or_a_typo_inside_are_errors() {
        let e = step("[step]\nname = \"t\"\ndirectory = { path = \"/x\" }\nsymlink = { path = \"/y\", target = \"/x\" }\n")
            .expect_err("two");
        assert!(e.contains("names 2 resources"), "{e}");
        let e = step("[step]\nname = \"t\"\ndirectroy = { path = \"/x\" }\n").expect_err("typo");
        assert!(e.contains("unknown field `directroy`"), "{e}");
        let e = step("[step]\nname = \"t\"\ndirectory = { path = \"/x\", mod = \"0755\" }\n")
            .expect_err("inner typo");
        assert!(e.contains("mod"), "{e}");
        let e = step("[step]\nname = \"t\"\n").expect_err("none");
        assert!(e.contains("names 0 resources"), "{e}");
        let e = step("[step]\ndirectory = { path = \"/x\" }\n").expect_err("no name");
        assert!(e.contains("name"), "{e}");
    }
}
