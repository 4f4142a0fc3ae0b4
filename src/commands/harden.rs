//! `sparkboot harden [--check]`: audit every selected node against the checks in
//! `crate::harden::checks`, and without `--check` fix what fails, then audit again so the
//! report says what is fixed, not what was attempted.
//!
//! Phases: (1) audit over one session per host; (2) per-host fixes (keys, modes, the sshd
//! drop-in with its fresh-login check and rollback); (3) one converge for the Spark fixes and a
//! rotated cluster key; (4) the re-audit. A host that fails in one phase sits out the next ones.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::apply::{self, HostRun, HostState, Prepared, Settings};
use crate::cli::HardenArgs;
use crate::error::Error;
use crate::harden::checks::{self, AuditContext};
use crate::harden::config::HardenConfig;
use crate::harden::facts::{self, HostFacts};
use crate::harden::fix::{self, FixPlan};
use crate::harden::operator::OperatorKeys;
use crate::harden::report::{self, Report};
use crate::harden::{imds, keys, sshd, Ledgers, Verdict};
use crate::inventory::NodeRole;
use crate::plan::PlanOptions;
use crate::report::{HostBar, Progress};
use crate::roles::EvalContext;
use crate::shell::harden as sh;
use crate::transport::KnownHosts;

use super::Target;

/// What every host task reads, and the ledgers they write.
struct Shared {
    config: HardenConfig,
    skipped: BTreeSet<String>,
    operator: OperatorKeys,
    spark_managed: bool,
    config_version: String,
    ledgers: Ledgers,
}

type Verdicts = BTreeMap<&'static str, Verdict>;

/// Runs the probe (and, on a real EC2 instance only, the metadata probe) and audits every check.
fn audit(run: &mut HostRun, shared: &Shared) -> Option<(HostFacts, Verdicts)> {
    run.bar.set("auditing");
    let out = run.run(&sh::audit_script(sshd::DROPIN), None)?;
    let mut facts = match facts::parse(&out.stdout) {
        Ok(f) => f,
        Err(e) => {
            run.state = HostState::Failed(format!("{e}; stderr: {}", out.stderr.trim()));
            return None;
        }
    };
    if imds::may_probe(&facts.dmi, &run.host.address) {
        let answer = run.run(&sh::imds_script(), None)?;
        facts.imds = Some(imds::parse_probe(&answer.stdout));
    }
    let operator = shared.operator.for_host(&run.host);
    let ctx = AuditContext {
        address: &run.host.address,
        login_is_root: run.host.user == "root",
        operator: &operator,
        spark_managed: shared.spark_managed,
        config_version: &shared.config_version,
        skipped: &shared.skipped,
        sshd_extra: &shared.config.sshd_extra,
    };
    let verdicts = checks::audit_all(&facts, &ctx);
    Some((facts, verdicts))
}

/// Copies each run's failure into its ledger (the first error wins).
fn record_states(runs: &[HostRun], shared: &Shared) {
    for r in runs {
        let (error, unreachable) = match &r.state {
            HostState::Running => continue,
            HostState::Failed(e) => (e.clone(), false),
            HostState::Unreachable(e) => (e.clone(), true),
        };
        shared.ledgers.update(&r.host.name, |l| {
            l.error.get_or_insert(error);
            l.unreachable |= unreachable;
        });
    }
}

/// Everything the phases share: the engine's pieces, and the per-host progress lines.
struct Run {
    shared: Arc<Shared>,
    prep: Arc<Prepared>,
    known: Arc<KnownHosts>,
    settings: Settings,
    runtime: tokio::runtime::Runtime,
    bars: BTreeMap<String, HostBar>,
}

impl Run {
    fn runs_for(&self, names: &BTreeSet<String>) -> Vec<HostRun> {
        self.prep
            .inventory
            .hosts()
            .filter(|h| names.contains(&h.name))
            .filter_map(|h| {
                let bar = self.bars.get(&h.name)?.clone();
                Some(HostRun::new(h.clone(), Default::default(), bar))
            })
            .collect()
    }

    fn each<F>(&self, runs: Vec<HostRun>, work: F) -> Vec<HostRun>
    where
        F: Fn(&mut HostRun, &Prepared) + Send + Sync + 'static,
    {
        let runs = self.runtime.block_on(apply::for_each_host(
            runs,
            &self.prep,
            &self.known,
            &self.settings,
            work,
        ));
        record_states(&runs, &self.shared);
        runs
    }

    /// Phase 1 (`after` false) and 4 (`after` true): audit `names` over new sessions.
    fn audit(&self, names: &BTreeSet<String>, after: bool) -> Vec<HostRun> {
        let s = self.shared.clone();
        self.each(self.runs_for(names), move |run, _| {
            if let Some((facts, verdicts)) = audit(run, &s) {
                s.ledgers.update(&run.host.name, |l| {
                    if after {
                        l.after = verdicts;
                    } else {
                        l.facts = Some(facts);
                        l.before = verdicts;
                    }
                });
            }
        })
    }

    /// Phase 2: each host's own fixes, over the sessions the audit opened.
    fn fix(&self, runs: Vec<HostRun>, rotate: Option<String>) -> Vec<HostRun> {
        let (s, k) = (self.shared.clone(), self.known.clone());
        self.each(runs, move |run, prep| {
            let Some((facts, before)) = s.ledgers.update(&run.host.name, |l| {
                l.facts.clone().map(|f| (f, l.before.clone()))
            }) else {
                return;
            };
            let operator = s.operator.for_host(&run.host);
            let plan = FixPlan {
                before: &before,
                facts: &facts,
                skipped: &s.skipped,
                operator: &operator,
                sshd_extra: &s.config.sshd_extra,
                rotate_cluster_key: rotate
                    .as_deref()
                    .filter(|_| run.host.role == NodeRole::Master),
            };
            let outcome = fix::apply(run, &plan, &prep.config.ssh, &k);
            s.ledgers.update(&run.host.name, |l| {
                l.changed += outcome.changed;
                l.fix_errors.extend(outcome.errors);
            });
            let name = run.host.name.clone();
            run.notes
                .extend(outcome.notes.into_iter().map(|n| format!("{name}: {n}")));
        })
    }
}

fn alive(runs: &[HostRun]) -> BTreeSet<String> {
    runs.iter()
        .filter(|r| r.alive())
        .map(|r| r.host.name.clone())
        .collect()
}

/// Rotate the cluster key when a seed key pair is being removed from any selected node and the
/// converge that follows can generate and authorize a new one. Returns the key path, or a note.
fn rotation(
    shared: &Shared,
    prep: &Prepared,
    alive: &BTreeSet<String>,
) -> Result<Option<String>, String> {
    let id = "ssh-seed-keys";
    let seed_found = shared
        .ledgers
        .lock()
        .values()
        .any(|l| l.before.get(id).is_some_and(Verdict::failed));
    if !seed_found || shared.skipped.contains(id) {
        return Ok(None);
    }
    let roles = &prep.config.roles;
    if !["spark-keygen", "spark-authorize"]
        .iter()
        .all(|r| roles.iter().any(|x| x == r))
    {
        return Err("the cluster key was not rotated: the config's roles do not include spark-keygen and spark-authorize".into());
    }
    if !alive.contains(&prep.inventory.master.name) {
        return Err("the cluster key was not rotated: the master is not selected (or failed); run harden on the master too".into());
    }
    Ok(Some(keys::CLUSTER_KEY.to_string()))
}

/// Runs the converge that carries the Spark fixes (and regenerates a deleted cluster key),
/// recording each host's changes and errors; returns notes for the report.
fn converge_phase(r: &Run, alive: &BTreeSet<String>, rotated: bool) -> Vec<String> {
    let (shared, prep) = (&r.shared, &r.prep);
    let outcome = match crate::harden::converge::run(
        &prep.config,
        &prep.inventory,
        &r.known,
        alive,
        &r.runtime,
    ) {
        Ok(o) => o,
        Err(e) => {
            for name in alive {
                shared.ledgers.update(name, |l| {
                    l.error.get_or_insert(format!(
                        "the converge for the Spark fixes could not start: {e}"
                    ));
                });
            }
            return Vec::new();
        }
    };
    for (name, n) in &outcome.changed {
        shared.ledgers.update(name, |l| l.changed += n);
    }
    for (name, e) in &outcome.errors {
        shared.ledgers.update(name, |l| {
            l.error.get_or_insert(format!("converge: {e}"));
        });
    }
    let mut notes = outcome.notes;
    if rotated && !outcome.errors.contains_key(&prep.inventory.master.name) {
        notes.push("rotated the cluster key: converge generated a new one on the master and authorized it on the workers".into());
    }
    notes
}

pub fn run(args: &HardenArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let target = Target::resolve(&args.common)?;
    let config = HardenConfig::from_value(
        target.config.harden.as_ref(),
        &target.config.path.display().to_string(),
    )?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let (forks, keep_sessions, note) = apply::plan_concurrency(target.config.forks, selected.len());
    if let Some(n) = note {
        eprintln!("sparkboot: note: {n}");
    }
    let progress = Progress::new(!args.common.json);
    let r = Run {
        shared: Arc::new(Shared {
            skipped: config.skipped_ids(),
            config,
            operator: OperatorKeys::load(&target.inventory, target.config.ssh.use_agent),
            spark_managed: target.config.roles.iter().any(|r| r == "spark"),
            config_version: target.config.spark.version.clone(),
            ledgers: Ledgers::default(),
        }),
        settings: Settings {
            check: args.check,
            forks,
            max_handshakes: target.config.max_handshakes,
            keep_sessions,
        },
        known: Arc::new(target.known_hosts),
        bars: target
            .inventory
            .hosts()
            .filter(|h| selected.contains(&h.name))
            .map(|h| (h.name.clone(), progress.host(&h.name)))
            .collect(),
        prep: Arc::new(Prepared {
            eval: EvalContext::empty(),
            roles: Vec::new(),
            options: PlanOptions::default(),
            extra: serde_json::Value::Null,
            diff: false,
            config: target.config,
            inventory: target.inventory,
        }),
        runtime: super::converge::runtime()?,
    };
    let mut notes = Vec::new();
    let mut runs = r.audit(&selected, false);
    if !args.check {
        let rotate = rotation(&r.shared, &r.prep, &alive(&runs)).unwrap_or_else(|n| {
            notes.push(n);
            None
        });
        let rotated = rotate.is_some();
        runs = r.fix(runs, rotate);
        notes.extend(runs.iter().flat_map(|run| run.notes.iter().cloned()));
        let alive = alive(&runs);
        let due = rotated
            || r.shared.ledgers.lock().iter().any(|(name, l)| {
                alive.contains(name) && fix::converge_due(&l.before, &r.shared.skipped)
            });
        if due && !alive.is_empty() {
            r.bars
                .values()
                .for_each(|b| b.set("converging (Spark settings)"));
            notes.extend(converge_phase(&r, &alive, rotated));
        }
        let reachable: BTreeSet<String> = (r.shared.ledgers.lock().iter())
            .filter(|(_, l)| !l.unreachable && l.facts.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        runs = r.audit(&reachable, true);
    }
    apply::finish_bars(&runs);
    for (name, bar) in &r.bars {
        if !runs.iter().any(|run| &run.host.name == name) {
            bar.finish("done");
        }
    }
    progress.clear();

    let ledgers = std::mem::take(&mut *r.shared.ledgers.lock());
    let empty = Default::default();
    let hosts = r
        .prep
        .inventory
        .hosts()
        .filter(|h| selected.contains(&h.name))
        .map(|h| {
            let ledger = ledgers.get(&h.name).unwrap_or(&empty);
            report::host_report(h, ledger, &r.shared.config.skip)
        })
        .collect();
    let report = Report::new(args.check, started.elapsed(), hosts, notes);
    if args.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text(args.common.verbose));
    }
    Ok(ExitCode::from(report.exit_code()))
}
