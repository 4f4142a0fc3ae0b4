//! One host's run: connect, probe, plan, then apply phase by phase. Everything here blocks and
//! runs on tokio's blocking pool; the host's state moves in and out of each task, so no lock is
//! shared between hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::context;
use super::Prepared;
use crate::facts::{self, Facts, SystemFacts};
use crate::inventory::Host;
use crate::plan::{self, Action, Change, Payload, PlannedStep, Redactor, StepReport};
use crate::report::HostBar;
use crate::roles::model::ServiceSpec;
use crate::roles::{self, Filter, Resource, Step};
use crate::shell::{self, Privilege};
use crate::transport::{Connection, KnownHosts, SshOptions, TransportError};

#[derive(Debug, Clone, PartialEq)]
pub enum HostState {
    Running,
    Failed(String),
    Unreachable(String),
}

pub struct HostRun {
    pub host: Host,
    pub conn: Option<Connection>,
    pub state: HostState,
    pub plan: Vec<PlannedStep>,
    pub facts: Option<Facts>,
    /// The facts as the steps planned so far will leave them.
    sim: Facts,
    pub ok: u32,
    pub changed: u32,
    pub skipped: u32,
    pub steps: Vec<StepReport>,
    /// Values this host exported for later phases (the master's public key).
    pub exported: BTreeMap<String, String>,
    /// Workers the master reported ALIVE (set on the master by the registration check).
    pub registered: Option<BTreeSet<String>>,
    /// Lines for the report that are not step results (scale-in actions).
    pub notes: Vec<String>,
    /// Output of an ad hoc command (`sparkboot exec`).
    pub output: Option<crate::transport::Output>,
    notified: BTreeSet<String>,
    started: BTreeSet<String>,
    services: BTreeMap<String, (u32, ServiceSpec)>,
    /// Handler name -> service, shared read-only by every host.
    handlers: Arc<BTreeMap<String, String>>,
    pub bar: HostBar,
}

impl HostRun {
    pub fn new(host: Host, handlers: Arc<BTreeMap<String, String>>, bar: HostBar) -> Self {
        HostRun {
            host,
            conn: None,
            state: HostState::Running,
            plan: Vec::new(),
            facts: None,
            sim: Facts::default(),
            ok: 0,
            changed: 0,
            skipped: 0,
            steps: Vec::new(),
            exported: BTreeMap::new(),
            registered: None,
            notes: Vec::new(),
            output: None,
            notified: BTreeSet::new(),
            started: BTreeSet::new(),
            services: BTreeMap::new(),
            handlers,
            bar,
        }
    }

    pub fn alive(&self) -> bool {
        self.state == HostState::Running
    }

    fn fail_transport(&mut self, e: TransportError) {
        self.conn = None;
        self.state = if e.is_unreachable() {
            HostState::Unreachable(e.to_string())
        } else {
            HostState::Failed(e.to_string())
        };
    }

    pub fn connect(&mut self, opts: &SshOptions, known: &KnownHosts) {
        self.bar.set("connecting");
        match Connection::open(&self.host, opts, known) {
            Ok(c) => self.conn = Some(c),
            Err(e) => self.fail_transport(e),
        }
    }

    /// Runs a script as root on the open connection.
    pub fn run(
        &mut self,
        script: &str,
        stdin: Option<&Payload>,
    ) -> Option<crate::transport::Output> {
        let conn = self.conn.as_ref()?;
        let result = match stdin {
            None => conn.run(script, Privilege::Root, None),
            Some(Payload::Bytes(b)) => conn.run(script, Privilege::Root, Some(b)),
            Some(Payload::LocalFile(p)) => conn.run_with_file(script, Privilege::Root, p),
        };
        match result {
            Ok(out) => Some(out),
            Err(e) => {
                self.fail_transport(e);
                None
            }
        }
    }

    fn context(&self, prep: &Prepared, facts: &SystemFacts, exports: &Value) -> Value {
        let mut ctx = context::build(
            &prep.config,
            &prep.inventory,
            &self.host,
            facts,
            &prep.extra,
        );
        if let Value::Object(map) = &mut ctx {
            map.insert("exports".into(), exports.clone());
        }
        ctx
    }

    /// One round trip: the composite probe covering every phase's steps.
    pub fn probe(&mut self, prep: &Prepared, exports: &Value) {
        self.bar.set("gathering facts");
        // Paths do not depend on facts, so the probe can be listed from a fact-less evaluation
        // that ignores `when` (a condition must not hide what the probe should look at).
        let all = Filter {
            phase: None,
            ignore_when: true,
        };
        let ctx = self.context(prep, &SystemFacts::default(), exports);
        let listing = match roles::evaluate(
            &prep.eval,
            &prep.roles,
            self.host.role.as_str(),
            &self.host.name,
            &ctx,
            all,
        ) {
            Ok((steps, _)) => steps,
            Err(e) => return self.state = HostState::Failed(e.to_string()),
        };
        let request = plan::probe_request(&listing, prep.diff);
        let Some(out) = self.run(&shell::probe::script(&request), None) else {
            return;
        };
        match facts::parse(&request, &out.stdout) {
            Ok(f) => {
                self.sim = f.clone();
                self.facts = Some(f);
            }
            Err(e) => {
                let stderr = prep.options.redactor.redact(out.stderr.trim());
                self.state =
                    HostState::Failed(format!("{}: {e}; stderr: {stderr}", self.host.name));
            }
        }
    }

    /// Plans one phase from the facts as earlier phases will have left them, then applies it
    /// (or, in check mode, only records it).
    pub fn run_phase(&mut self, prep: &Prepared, phase: u32, check: bool, exports: &Value) {
        let Some(system) = self.facts.as_ref().map(|f| f.system.clone()) else {
            return;
        };
        let ctx = self.context(prep, &system, exports);
        let only = Filter {
            phase: Some(phase),
            ignore_when: false,
        };
        let (steps, skipped): (Vec<Step>, u32) = match roles::evaluate(
            &prep.eval,
            &prep.roles,
            self.host.role.as_str(),
            &self.host.name,
            &ctx,
            only,
        ) {
            Ok(r) => r,
            Err(e) => return self.state = HostState::Failed(e.to_string()),
        };
        self.skipped += skipped;
        for s in &steps {
            if let Resource::Service(spec) = &s.resource {
                self.services
                    .insert(spec.name.clone(), (s.phase, spec.clone()));
            }
        }
        match plan::plan_with(&steps, &mut self.sim, &prep.options) {
            Ok(p) => self.plan = p,
            Err(e) => return self.state = HostState::Failed(e.to_string()),
        }
        self.apply_phase(phase, check, &prep.options.redactor);
    }

    /// Applies (or, in check mode, only records) this phase's steps, then its handlers.
    fn apply_phase(&mut self, phase: u32, check: bool, redactor: &Redactor) {
        let steps: Vec<PlannedStep> = self
            .plan
            .iter()
            .filter(|s| s.phase == phase)
            .cloned()
            .collect();
        for step in steps {
            if !self.alive() {
                self.skipped += 1;
                continue;
            }
            self.bar.set(&step.name);
            match &step.action {
                Action::Unchanged(_) => self.ok += 1,
                Action::Change(change) => {
                    if !check && !self.apply_change(&step, change, redactor) {
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
        self.run_handlers(phase, check, redactor);
    }

    fn apply_change(&mut self, step: &PlannedStep, change: &Change, redactor: &Redactor) -> bool {
        let Some(out) = self.run(&change.script, change.stdin.as_ref()) else {
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
        self.state = HostState::Failed(format!(
            "step {:?} (role {}) failed with exit status {}: {}",
            step.name,
            step.role,
            out.exit_status,
            redactor.redact(&detail)
        ));
        false
    }

    /// Restarts each notified service whose step is in this phase, once, unless this run just
    /// started it (then it already runs with the new configuration).
    fn run_handlers(&mut self, phase: u32, check: bool, redactor: &Redactor) {
        let systemd = self.facts.as_ref().is_some_and(|f| f.system.systemd);
        let due: Vec<(String, ServiceSpec)> = self
            .notified
            .iter()
            .filter_map(|h| self.handler_service(h))
            .filter(|(_, (p, _))| *p == phase)
            .map(|(name, (_, spec))| (name, spec))
            .collect();
        for (name, spec) in due {
            let handlers = self.handlers.clone();
            self.notified.retain(|h| handlers.get(h) != Some(&name));
            if !self.alive() || self.started.contains(&name) {
                continue;
            }
            self.bar.set(&format!("restart {name}"));
            let step = PlannedStep {
                role: "handler".into(),
                phase,
                name: format!("Restart {name}"),
                notify: vec![],
                action: Action::Change(Change {
                    reason: format!("restart {name}: its configuration or binaries changed"),
                    script: plan::restart_script(&spec, systemd),
                    stdin: None,
                    diff: None,
                    starts_service: None,
                }),
            };
            if let Action::Change(c) = &step.action {
                if !check && !self.apply_change(&step, &c.clone(), redactor) {
                    continue;
                }
            }
            self.changed += 1;
            self.started.insert(name);
            self.steps.push(step.report());
        }
    }

    fn handler_target(&self, handler: &str) -> Option<&str> {
        self.handlers.get(handler).map(String::as_str)
    }

    fn handler_service(&self, handler: &str) -> Option<(String, (u32, ServiceSpec))> {
        let svc = self.handler_target(handler)?;
        self.services.get(svc).map(|s| (svc.to_string(), s.clone()))
    }
}
