//! Where hosts come from.
//!
//! Every source (a static file, Terraform outputs plus the AWS API, or the AWS API alone)
//! produces the same validated [`Inventory`], so the engine never knows or cares how a host was
//! discovered. Validation happens here, before any connection, so a bad inventory costs no SSH
//! traffic.

pub mod aws;
pub mod static_file;
pub mod terraform;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}; pass --inventory with an existing file, or run `sparkboot lab up` to create one")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inventory {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("inventory {source_name}, field `{field}`: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },
    #[error("--limit {0:?} matches no host in the inventory; run `sparkboot inventory` to list the names")]
    LimitMatchesNothing(String),
    /// A cloud source (`aws`, `terraform:DIR`) could not discover the cluster.
    #[error("inventory {source_name}: {message}")]
    Discovery {
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Master,
    Worker,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Master => "master",
            NodeRole::Worker => "worker",
        }
    }
}

/// One host, resolved and validated.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: Option<PathBuf>,
    pub jump_host: Option<String>,
    pub role: NodeRole,
    pub vars: BTreeMap<String, String>,
}

/// An IP address, or a DNS name (labels of letters, digits and '-', not starting or ending with
/// '-'). A dotted quad that does not parse (`999.1.1.1`) is neither. Addresses reach config
/// files, systemd units and shell words, so nothing else is accepted.
pub fn address_ok(address: &str) -> bool {
    if address.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = address.trim_end_matches('.').split('.').collect();
    let all_numeric = labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    !address.is_empty()
        && address.len() <= 253
        && !all_numeric
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Host {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        address: String,
        port: u16,
        user: String,
        identity_file: Option<PathBuf>,
        jump_host: Option<String>,
        role: NodeRole,
        vars: BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "host name {name:?} must be non-empty and use only letters, digits, '-', '_' or '.'"
            ));
        }
        if !address_ok(&address) {
            return Err(format!(
                "address {address:?} of host {name} must be an IPv4 or IPv6 address or a DNS name"
            ));
        }
        if port == 0 {
            return Err(format!("port of host {name} must be between 1 and 65535"));
        }
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "user {user:?} of host {name} is not a valid login name"
            ));
        }
        Ok(Host {
            name,
            address,
            port,
            user,
            identity_file,
            jump_host,
            role,
            vars,
        })
    }
}

/// The master and its workers, with unique names and addresses.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inventory {
    /// Where it came from, for messages (a file path, `terraform:DIR`, `aws:REGION`).
    pub source: String,
    pub master: Host,
    pub workers: Vec<Host>,
    /// Where a cloud source found the cluster (region, bucket), for `distribution = "s3"`.
    #[serde(skip)]
    pub cloud: Option<aws::Cloud>,
    /// What discovery noticed (a group short of workers, instances left out), already printed
    /// on stderr; `converge` also puts them in its report's `notes`.
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl Inventory {
    pub fn new(source: String, master: Host, workers: Vec<Host>) -> Result<Self, InventoryError> {
        let mut names = BTreeSet::new();
        let mut endpoints = BTreeSet::new();
        for (i, host) in std::iter::once(&master).chain(workers.iter()).enumerate() {
            let field = if i == 0 {
                "master".to_string()
            } else {
                format!("workers[{}]", i - 1)
            };
            if !names.insert(host.name.clone()) {
                return Err(InventoryError::Invalid {
                    source_name: source.clone(),
                    field: format!("{field}.name"),
                    message: format!(
                        "host name {:?} appears twice; every host needs its own name",
                        host.name
                    ),
                });
            }
            if !endpoints.insert((host.address.clone(), host.port)) {
                return Err(InventoryError::Invalid {
                    source_name: source.clone(),
                    field: format!("{field}.address"),
                    message: format!(
                        "{}:{} is listed twice; each host needs its own address",
                        host.address, host.port
                    ),
                });
            }
        }
        Ok(Inventory {
            source,
            master,
            workers,
            cloud: None,
            notes: Vec::new(),
        })
    }

    /// Records where a cloud source found the cluster.
    pub fn with_cloud(mut self, cloud: aws::Cloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// Master first, then workers in inventory order.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        std::iter::once(&self.master).chain(self.workers.iter())
    }

    pub fn find(&self, name: &str) -> Option<&Host> {
        if name == "master" {
            return Some(&self.master);
        }
        self.hosts().find(|h| h.name == name || h.address == name)
    }

    /// Names selected by a comma-separated `--limit` (host names, addresses, `master` or
    /// `workers`). `None` selects every host.
    pub fn select(&self, limit: Option<&str>) -> Result<BTreeSet<String>, InventoryError> {
        let Some(limit) = limit else {
            return Ok(self.hosts().map(|h| h.name.clone()).collect());
        };
        let mut selected = BTreeSet::new();
        for pattern in limit.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let before = selected.len();
            match pattern {
                "workers" => selected.extend(self.workers.iter().map(|h| h.name.clone())),
                _ => {
                    if let Some(h) = self.find(pattern) {
                        selected.insert(h.name.clone());
                    }
                }
            }
            if selected.len() == before
                && !selected
                    .iter()
                    .any(|n| self.find(pattern).is_some_and(|h| &h.name == n))
            {
                return Err(InventoryError::LimitMatchesNothing(pattern.to_string()));
            }
        }
        Ok(selected)
    }
}

/// Loads an inventory from `--inventory` (or the config's `inventory`): `aws` (the AWS API, with
/// `[aws]` settings), `terraform:DIR` (that directory's `terraform output`, then the AWS API for
/// the workers) or a static TOML file.
pub fn load(spec: &str, config: &crate::config::Config) -> Result<Inventory, InventoryError> {
    load_with(spec, config, false)
}

/// `load`, optionally taking the instances a launch hook holds (`watch` configures them before
/// they go in service).
pub fn load_with(
    spec: &str,
    config: &crate::config::Config,
    launching: bool,
) -> Result<Inventory, InventoryError> {
    if spec == "aws" {
        return aws::load(&config.aws, &config.cluster_name, launching);
    }
    if let Some(dir) = spec.strip_prefix("terraform:") {
        return terraform::load(std::path::Path::new(dir), &config.aws, launching);
    }
    if spec == "terraform" || spec.starts_with("aws:") {
        return Err(InventoryError::Invalid {
            source_name: spec.to_string(),
            field: "--inventory".into(),
            message: "write `terraform:DIR` (the directory you ran `terraform apply` in) or `aws` (settings from [aws] in the config)".into(),
        });
    }
    let path = std::path::Path::new(spec);
    static_file::InventoryFile::load(path)?.into_inventory(path)
}

#[cfg(test)]
mod tests {
    use super::address_ok;

    #[test]
    fn addresses_are_ip_addresses_or_dns_names() {
        for good in [
            "10.0.1.5",
            "::1",
            "fe80::1",
            "node-1.example.com",
            "master",
            "ip-10-0-1-5.ec2.internal.",
        ] {
            assert!(address_ok(good), "{good}");
        }
        for bad in [
            "999.1.1.1",
            "1.2.3",
            "",
            "a b",
            "-x.com",
            "x..y",
            "x;rm",
            "$(id)",
            "a\nb",
            "[::1]",
        ] {
            assert!(!address_ok(bad), "{bad:?}");
        }
    }
}
