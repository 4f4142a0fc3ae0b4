//! `sparkboot converge`: load and validate everything, run the engine's roles pipeline, report.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::ConvergeArgs;
use crate::engine::converge::{self, ConvergeOutcome, ConvergeRequest};
use crate::engine::Engine;
use crate::error::{Error, EXIT_CHANGES_PENDING, EXIT_HOST_FAILED};
use crate::report::RunReport;
use crate::transport::KnownHosts;

use super::Target;

pub fn run(args: &ConvergeArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let roles = if args.roles.is_empty() {
        target.config.roles.clone()
    } else {
        args.roles.clone()
    };
    // What discovery noticed (already on stderr) goes into the report too.
    let discovery_notes = target.inventory.notes.clone();
    let engine = target.engine(&selected, !args.common.json)?;
    let req = ConvergeRequest {
        roles: &roles,
        check: args.check,
        diff: args.diff,
        lock_wait: Some(args.wait),
        command: "converge",
        rolling: true,
    };
    let base = Arc::new(converge::prepare(&engine, &req)?);
    let plan = Arc::new(base.bind(engine.inventory.clone())?);
    let outcome = converge::run(&engine, engine.nodes(&selected), plan)?;
    for line in new_state_notes(&engine, &outcome) {
        eprintln!("sparkboot: {line}");
    }
    outcome.finish_bars();
    engine.progress.clear();
    let mut report = RunReport::new("converge", args.check, started.elapsed(), outcome.recap());
    report.notes = discovery_notes;
    report.notes.extend(outcome.notes);
    report.upgrade = outcome.upgrade;
    if args.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text(args.common.verbose, args.diff));
    }
    let s = &report.summary;
    Ok(ExitCode::from(if s.failed > 0 || s.unreachable > 0 {
        EXIT_HOST_FAILED
    } else if args.check && s.changed > 0 {
        EXIT_CHANGES_PENDING
    } else {
        0
    }))
}

/// Says so when this run started a new known_hosts or Spark secret, and warns when the hosts
/// were configured by sparkboot before: then an earlier run kept its state elsewhere (another
/// directory or machine), and this run is pinning keys and handing out a secret afresh.
pub fn new_state_notes(engine: &Engine, outcome: &ConvergeOutcome) -> Vec<String> {
    let known: &KnownHosts = &engine.known;
    let created_secret = outcome.plan.base.created_secret.as_deref();
    let mut lines = Vec::new();
    let conf = outcome
        .plan
        .base
        .layout
        .as_ref()
        .map(|l| l.conf_file("spark-defaults.conf"));
    let configured = outcome
        .hosts
        .iter()
        .filter(|h| {
            let facts = h.converge.facts.as_ref();
            conf.as_ref().is_some_and(|c| {
                facts.is_some_and(|f| matches!(f.path(c), crate::facts::PathFact::File { .. }))
            })
        })
        .count();
    let fresh_keys = known.is_new() && known.recorded() > 0;
    if fresh_keys {
        lines.push(format!(
            "note: started a new known_hosts at {}: recorded the keys of {} host(s) on first sight",
            known.path().display(),
            known.recorded()
        ));
    }
    if let Some(path) = created_secret {
        lines.push(format!(
            "note: created a new Spark secret at {} (0600)",
            path.display()
        ));
    }
    if (fresh_keys || created_secret.is_some()) && configured > 0 {
        lines.push(format!(
            "warning: {configured} host(s) already hold a Spark configuration from sparkboot, but this run's state dir {} was new: if this cluster was converged before from another directory or machine, its known_hosts and Spark secret are in that state dir (state_dir is resolved against the config file); {}",
            engine.config.state_dir.display(),
            if created_secret.is_some() {
                "with this new secret every daemon restarts"
            } else {
                "the keys just recorded were trusted on first sight"
            }
        ));
    }
    lines
}
