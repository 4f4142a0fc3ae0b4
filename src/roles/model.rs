//! The role file format: typed TOML with unknown fields rejected.
//!
//! A role is data: `roles/<name>/role.toml` lists steps in order, each naming exactly one
//! resource, plus handlers that restart a service when a step that notifies them changed.
//! String fields may hold tera expressions (`{{ vars.spark_version }}`), rendered per host.

use serde::Deserialize;

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
    /// checksum, the cluster secret, ...). Only then does sparkboot fetch the checksum.
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub name: String,
    /// A file on the master whose text (trimmed) is the value. Never a secret.
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: String,
    /// A tera expression; the step is skipped on hosts where it is false.
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub package: Option<PackageSpec>,
    pub group: Option<GroupSpec>,
    pub user: Option<UserSpec>,
    pub directory: Option<DirectorySpec>,
    pub file: Option<FileSpec>,
    pub download: Option<DownloadSpec>,
    pub symlink: Option<SymlinkSpec>,
    pub authorized_key: Option<AuthorizedKeySpec>,
    pub service: Option<ServiceSpec>,
    pub command: Option<CommandSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Package names on Debian and Ubuntu.
    #[serde(default)]
    pub apt: Vec<String>,
    /// Package names on Amazon Linux and other dnf/yum systems.
    #[serde(default)]
    pub dnf: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    /// A template under templates/ (tera, strict about undefined variables).
    pub template: Option<String>,
    /// Literal content (rendered as a tera string).
    pub content: Option<String>,
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
