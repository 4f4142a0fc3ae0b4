//! The static inventory file: the simplest source of hosts, and the one the lab writes.
//!
//! Kept as plain serde structs so that the lab writes exactly what `converge --inventory` reads;
//! unknown fields are rejected so a typo such as `adress` is an error, not a silently ignored
//! line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Host, Inventory, InventoryError, NodeRole};

/// Settings shared by every host unless the host overrides them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_host: Option<String>,
}

/// One host as written in the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// The whole file: `[defaults]`, `[master]` and `[[workers]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    #[serde(default)]
    pub defaults: HostDefaults,
    pub master: HostEntry,
    #[serde(default)]
    pub workers: Vec<HostEntry>,
}

impl InventoryFile {
    /// Parses the file's text; `path` is only used to name the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, InventoryError> {
        toml::from_str(text).map_err(|e| InventoryError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| InventoryError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::parse(path, &text)
    }

    /// Serialises with a header saying who wrote it and how to use it.
    pub fn to_toml(&self, header: &str) -> String {
        // Serialising these plain structs cannot fail: every field is a string, number or map.
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("{header}{body}")
    }

    /// Resolves defaults and relative key paths into the hosts the engine uses.
    pub fn into_inventory(self, path: &Path) -> Result<Inventory, InventoryError> {
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let defaults = self.defaults;
        let resolve =
            |entry: HostEntry, role: NodeRole, field: String| -> Result<Host, InventoryError> {
                let identity_file = entry
                    .identity_file
                    .or_else(|| defaults.identity_file.clone())
                    .map(|p| if p.is_relative() { base.join(p) } else { p });
                Host::new(
                    entry.name,
                    entry.address,
                    entry.port.or(defaults.port).unwrap_or(22),
                    entry
                        .user
                        .or_else(|| defaults.user.clone())
                        .unwrap_or_else(|| "root".into()),
                    identity_file,
                    defaults.jump_host.clone(),
                    role,
                    entry.vars,
                )
                .map_err(|message| InventoryError::Invalid {
                    source_name: path.display().to_string(),
                    field,
                    message,
                })
            };
        let master = resolve(self.master, NodeRole::Master, "master".into())?;
        let mut workers = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.into_iter().enumerate() {
            workers.push(resolve(w, NodeRole::Worker, format!("workers[{i}]"))?);
        }
        Inventory::new(path.display().to_string(), master, workers)
    }
}
