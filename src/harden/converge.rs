//! The Spark fixes are a converge: the hardened properties live in the templates, so harden runs
//! the same engine with the config's roles instead of editing files that the next converge would
//! revert. Files are rewritten and daemons restarted only where something differs, and a
//! converge after harden then has nothing left to change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::apply::HostState;
use crate::commands::converge::{execute, Request};
use crate::config::Config;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::report::Progress;
use crate::transport::KnownHosts;

/// Per-host results of the converge harden ran.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: BTreeMap<String, u32>,
    /// Host -> why its converge failed (or why it was unreachable).
    pub errors: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Converges `selected` with the config's roles and checks worker registration, exactly as
/// `sparkboot converge` does (the same code path).
pub fn run(
    config: &Config,
    inventory: &Inventory,
    known: &Arc<KnownHosts>,
    selected: &BTreeSet<String>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Outcome, Error> {
    let progress = Progress::new(false);
    let req = Request {
        roles: &config.roles,
        selected,
        check: false,
        diff: false,
        progress: &progress,
    };
    let (runs, notes) = execute(
        config.clone(),
        inventory.clone(),
        known.clone(),
        req,
        runtime,
    )?;
    let mut outcome = Outcome {
        notes,
        ..Outcome::default()
    };
    for run in runs {
        outcome.changed.insert(run.host.name.clone(), run.changed);
        match run.state {
            HostState::Running => {}
            HostState::Failed(e) | HostState::Unreachable(e) => {
                outcome.errors.insert(run.host.name.clone(), e);
            }
        }
    }
    Ok(outcome)
}
