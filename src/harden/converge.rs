//! The Spark fixes are a converge: the hardened properties live in the templates, so harden runs
//! the engine's roles pipeline with the config's roles instead of editing files that the next
//! converge would revert. Files are rewritten and daemons restarted only where something
//! differs, and a converge after harden then has nothing left to change.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::converge::{self, ConvergeRequest};
use crate::engine::{Engine, Node};
use crate::error::Error;

/// Per-host results of the converge harden ran.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: BTreeMap<String, u32>,
    /// Host -> why its converge failed (or why it was unreachable).
    pub errors: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Converges `nodes` with the config's roles and checks worker registration, exactly as
/// `sparkboot converge` does (the same code path). Returns the nodes for the re-audit.
pub fn run(engine: &Engine, nodes: Vec<Node>) -> Result<(Outcome, Vec<Node>), Error> {
    let roles = engine.config.roles.clone();
    let req = ConvergeRequest {
        roles: &roles,
        check: false,
        diff: false,
        lock_wait: Some(0),
        command: "harden",
        rolling: false,
    };
    let base = Arc::new(converge::prepare(engine, &req)?);
    let plan = Arc::new(base.bind(engine.inventory.clone())?);
    let result = converge::run(engine, nodes, plan)?;
    let mut outcome = Outcome {
        notes: result.notes,
        ..Outcome::default()
    };
    let mut nodes = Vec::new();
    for host in result.hosts {
        let name = host.node.host.name.clone();
        outcome.changed.insert(name.clone(), host.converge.changed);
        if let Some(e) = host.node.error() {
            outcome.errors.insert(name, e.to_string());
        }
        nodes.push(host.node);
    }
    Ok((outcome, nodes))
}
