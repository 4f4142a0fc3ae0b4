//! Planning: evaluated steps + facts -> the changes needed, each with a human reason.
//!
//! Pure and synchronous. The planner keeps a simulated copy of the facts and updates it as it
//! plans, so a later step sees what earlier steps will have done (a user about to be created, a
//! symlink about to move, which makes every fact probed through the old link stale).

mod diff;
mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use crate::facts::{Facts, ProbeRequest, ServiceProbe};
use crate::roles::{Resource, Step};

pub use diff::{Redactor, REDACTED};
pub use steps::restart_script;

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error("step {step:?} (role {role}): {message}")]
    Step {
        role: String,
        step: String,
        message: String,
    },
}

/// Bytes a change sends on stdin.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Bytes(Vec<u8>),
    /// A local file streamed as is (the push distribution mode).
    LocalFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub reason: String,
    /// Runs as root (through sudo for other logins).
    pub script: String,
    pub stdin: Option<Payload>,
    /// Unified diff for `--diff`, already redacted.
    pub diff: Option<String>,
    /// Set when this change starts a stopped service, so a handler need not restart it.
    pub starts_service: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Change(Change),
    Unchanged(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub role: String,
    pub phase: u32,
    pub name: String,
    pub notify: Vec<String>,
    pub action: Action,
}

/// One line of a plan, as reported (`--check`, `-v`, `--json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepReport {
    pub role: String,
    pub step: String,
    pub changed: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl PlannedStep {
    pub fn report(&self) -> StepReport {
        let (changed, reason, diff) = match &self.action {
            Action::Change(c) => (true, c.reason.clone(), c.diff.clone()),
            Action::Unchanged(r) => (false, r.clone(), None),
        };
        StepReport {
            role: self.role.clone(),
            step: self.name.clone(),
            changed,
            reason,
            diff,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Produce unified diffs of file changes.
    pub diff: bool,
    /// Nothing will be applied; values known only after apply may be placeholders.
    pub check: bool,
    pub redactor: Redactor,
    /// Verified local files the controller streams: `push` downloads by their SHA-512, files
    /// with `pushed` content by their SHA-256.
    pub pushed: BTreeMap<String, PathBuf>,
}

/// Lists every fact the steps need, for the one composite probe.
pub fn probe_request(steps: &[Step], diff: bool) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    for step in steps {
        match &step.resource {
            Resource::Package(p) => {
                req.packages.extend(p.apt.iter().cloned());
                req.packages.extend(p.dnf.iter().cloned());
            }
            Resource::Group(g) => {
                req.groups.insert(g.name.clone());
            }
            Resource::User(u) => {
                req.users.insert(u.name.clone());
            }
            Resource::Directory(d) => {
                req.paths.insert(d.path.clone());
            }
            Resource::File(spec) if spec.pushed.is_some() => {
                // Known by the marker its install writes, not by hashing it on every run.
                req.paths.insert(spec.path.clone());
                req.unhashed.insert(spec.path.clone());
                req.contents.insert(steps::pushed_marker(&spec.path));
            }
            Resource::File(spec) => {
                req.paths.insert(spec.path.clone());
                if diff && !spec.secret {
                    req.contents.insert(spec.path.clone());
                }
            }
            Resource::Download(d) => {
                req.contents.insert(steps::marker(&d.dest));
            }
            Resource::Symlink(l) => {
                req.paths.insert(l.path.clone());
            }
            Resource::AuthorizedKey(k) => {
                req.users.insert(k.user.clone());
                req.authorized_keys.insert(k.user.clone());
            }
            Resource::Service(s) => {
                req.services.insert(
                    s.name.clone(),
                    ServiceProbe {
                        pidfile: s.pidfile.clone(),
                        cmdline_match: s.cmdline_match.clone(),
                        systemd_unit: s.systemd_unit.clone(),
                    },
                );
            }
            Resource::Command(c) => {
                if let Some(p) = &c.creates {
                    req.paths.insert(p.clone());
                }
                if let Some(g) = &c.unless {
                    req.guards.insert(g.clone());
                }
            }
        }
    }
    req
}

/// Plans every step in order against a simulated copy of the facts (the golden tests use this).
#[cfg(test)]
pub fn plan(
    steps: &[Step],
    facts: &Facts,
    opts: &PlanOptions,
) -> Result<Vec<PlannedStep>, PlanError> {
    plan_with(steps, &mut facts.clone(), opts)
}

/// Plans against `sim`, leaving it as the steps will: a later phase's plan starts from there.
pub fn plan_with(
    steps: &[Step],
    sim: &mut Facts,
    opts: &PlanOptions,
) -> Result<Vec<PlannedStep>, PlanError> {
    let mut planned = Vec::with_capacity(steps.len());
    for step in steps {
        let action =
            steps::plan_step(&step.resource, sim, opts).map_err(|message| PlanError::Step {
                role: step.role.clone(),
                step: step.name.clone(),
                message,
            })?;
        planned.push(PlannedStep {
            role: step.role.clone(),
            phase: step.phase,
            name: step.name.clone(),
            notify: step.notify.clone(),
            action,
        });
    }
    Ok(planned)
}

#[cfg(test)]
mod golden;
