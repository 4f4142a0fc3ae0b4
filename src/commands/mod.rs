//! The subcommands that talk to a cluster. Each resolves flags and config into what the engine
//! needs, validating everything before the first connection. (`cli_docs` is the exception: it
//! prints completions and the manual page, generated from `cli`, and talks to nothing.)

pub mod cli_docs;
pub mod converge;
pub mod exec;
pub mod harden;
pub mod inventory;
pub mod known_hosts;
pub mod ssh;
pub mod status;
pub mod submit;
pub mod tunnel;

use std::collections::BTreeSet;

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::transport::KnownHosts;

/// Config, inventory and known_hosts, resolved from the common flags.
pub struct Target {
    pub config: Config,
    pub inventory: Inventory,
    pub known_hosts: KnownHosts,
    /// Where the inventory came from (`terraform:DIR`, `aws` or a file path): `watch` reads it
    /// again at every reconcile.
    pub spec: String,
}

impl Target {
    pub fn resolve(common: &CommonArgs) -> Result<Self, Error> {
        let explicit = common.config.as_path() != std::path::Path::new("sparkboot.toml");
        let mut config = Config::load(&common.config, explicit)?;
        if let Some(forks) = common.forks {
            if forks == 0 {
                return Err(Error::Usage(
                    "--forks 0 would never contact a host; use 1 or more".into(),
                ));
            }
            config.forks = forks;
        }
        let spec = common.inventory.clone().or_else(|| config.inventory.clone()).ok_or_else(|| {
            Error::Usage(format!(
                "no inventory: pass --inventory FILE or set `inventory` in {} (a lab writes .sparkboot/lab/inventory.toml)",
                config.path.display()
            ))
        })?;
        let spec = match (&common.inventory, config.path.parent()) {
            // A file named in the config is relative to the config, like roles_dir.
            (None, Some(base))
                if !spec.contains(':') && std::path::Path::new(&spec).is_relative() =>
            {
                base.join(&spec).display().to_string()
            }
            _ => spec,
        };
        let inventory = crate::inventory::load(&spec, &config)?;
        let known_hosts = KnownHosts::new(config.known_hosts_path(), common.strict);
        Ok(Target {
            config,
            inventory,
            known_hosts,
            spec,
        })
    }
}

impl Target {
    /// The engine for `selected` hosts: concurrency fitted to the fd limit, sessions pinned to
    /// this target's known_hosts.
    pub fn engine(self, selected: &BTreeSet<String>, show_progress: bool) -> Result<Engine, Error> {
        Engine::new(
            self.config,
            self.inventory,
            self.known_hosts,
            selected.len(),
            show_progress,
        )
    }
}
