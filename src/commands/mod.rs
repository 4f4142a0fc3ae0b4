//! The subcommands that talk to a cluster. Each resolves flags and config into what the engine
//! needs, validating everything before the first connection.

pub mod converge;
pub mod exec;
pub mod harden;
pub mod inventory;
pub mod ssh;
pub mod status;

use crate::cli::CommonArgs;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::apply::{self, HostRun, Prepared, Settings};
use crate::config::Config;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::plan::PlanOptions;
use crate::report::Progress;
use crate::roles::EvalContext;
use crate::transport::KnownHosts;

/// Config, inventory and known_hosts, resolved from the common flags.
pub struct Target {
    pub config: Config,
    pub inventory: Inventory,
    pub known_hosts: KnownHosts,
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
        })
    }
}

impl Target {
    /// Runs `work` on each selected host over the engine's pooled, pinned sessions, without
    /// roles: the shared path of the commands that only look or run one thing (`exec`,
    /// `status`). Returns the finished runs and the run's shared state.
    pub fn each_host<F>(
        self,
        selected: &BTreeSet<String>,
        work: F,
    ) -> Result<(Vec<HostRun>, Arc<Prepared>), Error>
    where
        F: Fn(&mut HostRun, &Prepared) + Send + Sync + 'static,
    {
        let (forks, keep_sessions, note) =
            apply::plan_concurrency(self.config.forks, selected.len());
        if let Some(n) = note {
            eprintln!("sparkboot: note: {n}");
        }
        let settings = Settings {
            check: false,
            forks,
            max_handshakes: self.config.max_handshakes,
            keep_sessions,
        };
        let known = Arc::new(self.known_hosts);
        let prep = Arc::new(Prepared {
            eval: EvalContext::empty(),
            roles: Vec::new(),
            options: PlanOptions::default(),
            extra: serde_json::Value::Null,
            diff: false,
            config: self.config,
            inventory: self.inventory,
        });
        let progress = Progress::new(false);
        let runs: Vec<HostRun> = prep
            .inventory
            .hosts()
            .filter(|h| selected.contains(&h.name))
            .map(|h| HostRun::new(h.clone(), Default::default(), progress.host(&h.name)))
            .collect();
        let runs = converge::runtime()?
            .block_on(apply::for_each_host(runs, &prep, &known, &settings, work));
        Ok((runs, prep))
    }
}
