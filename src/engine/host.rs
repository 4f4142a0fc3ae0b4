//! One host's converge: probe once, then plan and apply phase by phase, then handlers. The
//! state here is only what a converge needs per host; the session and whether the host is
//! still usable are the [`Node`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::context;
use super::converge::ConvergePlan;
use super::node::Node;
use crate::facts::{self, Facts, SystemFacts};
use crate::plan::{self, Action, Change, PlannedStep, Redactor, StepReport};
use crate::roles::model::{ServiceSpec, ServiceState};
use crate::roles::{self, Filter, Resource, Step};
use crate::shell;

/// What one host's converge has found and done so far. Cloned to plan a run in check mode
/// before deciding whether it needs the cluster lock.
#[derive(Default, Clone)]
pub struct HostConverge {
    pub facts: Option<Facts>,
    /// The facts as the steps planned so far will leave them.
    sim: Facts,
    plan: Vec<PlannedStep>,
    pub ok: u32,
    pub changed: u32,
    pub skipped: u32,
    pub steps: Vec<StepReport>,
    /// Values this host exported for later phases (the master's public key).
    pub exported: BTreeMap<String, String>,
    notified: BTreeSet<String>,
    started: BTreeSet<String>,
    /// Services this run declared: (phase, declaration order, spec).
    services: BTreeMap<String, (u32, usize, ServiceSpec)>,
    /// Handler name -> service, shared read-only by every host.
    handlers: Arc<BTreeMap<String, String>>,
    /// The registration check's answer, on the master (set by `spark::cluster::verify`).
    pub registration: Option<Result<BTreeSet<String>, String>>,
}

impl HostConverge {
    pub fn new(handlers: Arc<BTreeMap<String, String>>) -> Self {
        HostConverge {
            handlers,
            ..HostConverge::default()
        }
    }

    fn context(
        &self,
        node: &Node,
        plan: &ConvergePlan,
        facts: &SystemFacts,
        exports: &Value,
    ) -> Value {
        let mut ctx = context::build(
            &plan.base.config,
            &plan.inventory,
            &node.host,
            facts,
            &plan.base.values,
        );
        if let Value::Object(map) = &mut ctx {
            map.insert("exports".into(), exports.clone());
        }
        ctx
    }

    /// One round trip: the composite probe covering every phase's steps, plus what the engine
    /// itself wants from this host (the master's exports and status page).
    pub fn probe(&mut self, node: &mut Node, plan: &ConvergePlan, exports: &Value) {
        node.bar.set("gathering facts");
        // Paths do not depend on facts, so the probe can be listed from a fact-less evaluation
        // that ignores `when` (a condition must not hide what the probe should look at).
        let all = Filter {
            phase: None,
            ignore_when: true,
        };
        let ctx = self.context(node, plan, &SystemFacts::default(), exports);
        let listing = match roles::evaluate(
            &plan.base.eval,
            &plan.base.roles,
            node.host.role.as_str(),
            &node.host.name,
            &ctx,
            all,
        ) {
            Ok((steps, _)) => steps,
            Err(e) => return node.fail(e.to_string()),
        };
        let mut request = plan::probe_request(&listing, plan.base.options.diff);
        if node.host.role == crate::inventory::NodeRole::Master {
            request
                .contents
                .extend(plan.export_paths.iter().map(|(_, p)| p.clone()));
            if let Some(status) = &plan.status_probe {
                request.observe.insert("status".into(), status.clone());
            }
            if plan.base.lock_wait.is_some() {
                request
                    .observe
                    .insert(super::lock::OBSERVE_KEY.into(), shell::lock::observe());
            }
        }
        let Some(out) = node.run(&shell::probe::script(&request), None) else {
            return;
        };
        match facts::parse(&request, &out.stdout) {
            Ok(f) => {
                self.sim = f.clone();
                self.facts = Some(f);
            }
            Err(e) => {
                let stderr = plan.base.options.redactor.redact(out.stderr.trim());
                node.fail(format!("{}: {e}; stderr: {stderr}", node.host.name));
            }
        }
    }

    /// Plans one phase from the facts as earlier phases will have left them, then applies it
    /// (or, in check mode, only records it).
    pub fn run_phase(
        &mut self,
        node: &mut Node,
        plan: &ConvergePlan,
        phase: u32,
        check: bool,
        exports: &Value,
    ) {
        let Some(system) = self.facts.as_ref().map(|f| f.system.clone()) else {
            return;
        };
        let ctx = self.context(node, plan, &system, exports);
        let only = Filter {
            phase: Some(phase),
            ignore_when: false,
        };
        let (steps, skipped): (Vec<Step>, u32) = match roles::evaluate(
            &plan.base.eval,
            &plan.base.roles,
            node.host.role.as_str(),
            &node.host.name,
            &ctx,
            only,
        ) {
            Ok(r) => r,
            Err(e) => return node.fail(e.to_string()),
        };
        self.skipped += skipped;
        for s in &steps {
            // A service this run keeps stopped is not restarted by a handler.
            if let Resource::Service(spec) = &s.resource {
                if spec.state == ServiceState::Stopped {
                    self.services.remove(&spec.name);
                    continue;
                }
                let order = self.services.len();
                self.services
                    .insert(spec.name.clone(), (s.phase, order, spec.clone()));
            }
        }
        match plan::plan_with(&steps, &mut self.sim, &plan.base.options) {
            Ok(p) => self.plan = p,
            Err(e) => return node.fail(e.to_string()),
        }
        self.apply_phase(node, phase, check, &plan.base.options.redactor);
    }

    /// After every phase was planned in check mode: whether this run leaves the host as other
    /// hosts' later phases see it, so they need not wait for it: no service started or
    /// restarted, and none of `paths` (the exports) changed.
    pub fn keeps(&self, paths: &[String]) -> bool {
        let Some(probed) = &self.facts else {
            return false;
        };
        self.started.is_empty()
            && !self.steps.iter().any(|s| s.changed && s.role == "handler")
            && paths.iter().all(|p| {
                probed.contents.get(p) == self.sim.contents.get(p)
                    && probed.paths.get(p) == self.sim.paths.get(p)
            })
    }

    /// The value of an export as the probe saw it (`None` when the file was not there).
    pub fn probed(&self, path: &str) -> Option<String> {
        self.facts
            .as_ref()
            .and_then(|f| f.contents.get(path).cloned().flatten())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The master's status page as the probe read it.
    pub fn observed(&self, name: &str) -> Option<&str> {
        self.facts
            .as_ref()
            .and_then(|f| f.observed.get(name))
            .map(String::as_str)
    }

    fn apply_phase(&mut self, node: &mut Node, phase: u32, check: bool, redactor: &Redactor) {
        let steps: Vec<PlannedStep> = self
            .plan
            .iter()
            .filter(|s| s.phase == phase)
            .cloned()
            .collect();
        for step in steps {
            if !node.alive() {
                self.skipped += 1;
                continue;
            }
            node.bar.set(&step.name);
            match &step.action {
                Action::Unchanged(_) => self.ok += 1,
                Action::Change(change) => {
                    if !check && !apply_change(node, &step, change, redactor) {
                        continue;
                    }
                    self.changed += 1;
                    self.notified.extend(step.notify.iter().cloned());
                    if let Some(svc) = &change.starts_service {
                        self.started.insert(svc.clone());
                    }
                }
            }
            self.steps.push(step.report());
        }
        self.run_handlers(node, phase, check, redactor);
    }

    /// Restarts each notified service whose step is in this phase, once, unless this run just
    /// started it (then it already runs with the new configuration).
    fn run_handlers(&mut self, node: &mut Node, phase: u32, check: bool, redactor: &Redactor) {
        let systemd = self.facts.as_ref().is_some_and(|f| f.system.systemd);
        let mut due: Vec<(usize, String, ServiceSpec)> = self
            .notified
            .iter()
            .filter_map(|h| {
                let svc = self.handlers.get(h)?;
                let (p, order, spec) = self.services.get(svc)?;
                (*p == phase).then(|| (*order, svc.clone(), spec.clone()))
            })
            .collect();
        // In the order the roles declare the services (the master before what runs on it),
        // not by handler name.
        due.sort_by_key(|(order, ..)| *order);
        due.dedup_by(|a, b| a.1 == b.1);
        for (_, name, spec) in due {
            let handlers = self.handlers.clone();
            self.notified.retain(|h| handlers.get(h) != Some(&name));
            if !node.alive() || self.started.contains(&name) {
                continue;
            }
            node.bar.set(&format!("restart {name}"));
            let change = Change {
                reason: format!("restart {name}: its configuration or binaries changed"),
                script: plan::restart_script(&spec, systemd),
                stdin: None,
                diff: None,
                starts_service: None,
            };
            let step = PlannedStep {
                role: "handler".into(),
                phase,
                name: format!("Restart {name}"),
                notify: vec![],
                action: Action::Change(change.clone()),
            };
            if !check && !apply_change(node, &step, &change, redactor) {
                continue;
            }
            self.changed += 1;
            self.started.insert(name);
            self.steps.push(step.report());
        }
    }
}

/// Runs one change; on failure the node is marked failed with the last lines of stderr.
fn apply_change(node: &mut Node, step: &PlannedStep, change: &Change, redactor: &Redactor) -> bool {
    let Some(out) = node.run_change(&change.script, change.stdin.as_ref(), &step.name) else {
        return false;
    };
    if out.success() {
        return true;
    }
    let detail = out
        .stderr
        .trim()
        .lines()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    node.fail(format!(
        "step {:?} (role {}) failed with exit status {}: {}",
        step.name,
        step.role,
        out.exit_status,
        redactor.redact(&detail)
    ));
    false
}
