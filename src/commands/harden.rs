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

use crate::cli::HardenArgs;
use crate::engine::{Engine, Node};
use crate::error::Error;
use crate::harden::checks::{self, AuditContext};
use crate::harden::config::HardenConfig;
use crate::harden::facts::{self, HostFacts};
use crate::harden::fix::{self, FixPlan};
use crate::harden::operator::OperatorKeys;
use crate::harden::report::{self, Report};
use crate::harden::{imds, sshd, Ledgers, Verdict};
use crate::inventory::NodeRole;
use crate::roles::Library;
use crate::shell::harden as sh;
use crate::spark::layout::Layout;

use super::Target;

/// What every host task reads, and the ledgers they write.
struct Shared {
    config: HardenConfig,
    skipped: BTreeSet<String>,
    operator: OperatorKeys,
    spark_managed: bool,
    config_version: String,
    layout: Layout,
    ledgers: Ledgers,
}

type Verdicts = BTreeMap<&'static str, Verdict>;

/// Runs the probe (and, on a real EC2 instance only, the metadata probe) and audits every check.
fn audit(node: &mut Node, shared: &Shared) -> Option<(HostFacts, Verdicts)> {
    node.bar.set("auditing");
    let out = node.run(&sh::audit_script(sshd::DROPIN, &shared.layout), None)?;
    let mut facts = match facts::parse(&out.stdout) {
        Ok(f) => f,
        Err(e) => {
            node.fail(format!("{e}; stderr: {}", out.stderr.trim()));
            return None;
        }
    };
    if imds::may_probe(&facts.dmi, &node.host.address) {
        let answer = node.run(&sh::imds_script(), None)?;
        facts.imds = Some(imds::parse_probe(&answer.stdout));
    }
    let operator = shared.operator.for_host(&node.host);
    let ctx = AuditContext {
        address: &node.host.address,
        login_is_root: node.host.user == "root",
        operator: &operator,
        spark_managed: shared.spark_managed,
        config_version: &shared.config_version,
        skipped: &shared.skipped,
        sshd_extra: &shared.config.sshd_extra,
        layout: &shared.layout,
    };
    let verdicts = checks::audit_all(&facts, &ctx);
    Some((facts, verdicts))
}

/// Copies each node's failure into its ledger (the first error wins).
fn record_states<T>(items: &[(Node, T)], shared: &Shared) {
    for (node, _) in items {
        let Some(error) = node.error() else {
            continue;
        };
        let unreachable = node.unreachable();
        shared.ledgers.update(&node.host.name, |l| {
            l.error.get_or_insert(error.to_string());
            l.unreachable |= unreachable;
        });
    }
}

/// The engine and what the phases share.
struct Run {
    shared: Arc<Shared>,
    engine: Engine,
}

impl Run {
    fn each<T, F>(&self, items: Vec<(Node, T)>, work: F) -> Vec<(Node, T)>
    where
        T: Send + 'static,
        F: Fn(&mut Node, &mut T) + Send + Sync + 'static,
    {
        let items = self.engine.each(items, work);
        record_states(&items, &self.shared);
        items
    }

    /// Phase 1 (`after` false) and 4 (`after` true): audit the nodes.
    fn audit(&self, nodes: Vec<Node>, after: bool) -> Vec<Node> {
        let s = self.shared.clone();
        let items = nodes.into_iter().map(|n| (n, ())).collect();
        self.each(items, move |node, _| {
            if let Some((facts, verdicts)) = audit(node, &s) {
                s.ledgers.update(&node.host.name, |l| {
                    if after {
                        l.after = verdicts;
                    } else {
                        l.facts = Some(facts);
                        l.before = verdicts;
                    }
                });
            }
        })
        .into_iter()
        .map(|(n, _)| n)
        .collect()
    }

    /// Phase 2: each host's own fixes, over the sessions the audit opened. Returns the nodes
    /// and the notes the fixes left.
    fn fix(&self, nodes: Vec<Node>, rotate: Option<String>) -> (Vec<Node>, Vec<String>) {
        let s = self.shared.clone();
        let (ssh, known) = (self.engine.config.ssh.clone(), self.engine.known.clone());
        let items = nodes.into_iter().map(|n| (n, Vec::new())).collect();
        let items = self.each(items, move |node, notes: &mut Vec<String>| {
            let Some((facts, before)) = s.ledgers.update(&node.host.name, |l| {
                l.facts.clone().map(|f| (f, l.before.clone()))
            }) else {
                return;
            };
            let operator = s.operator.for_host(&node.host);
            let plan = FixPlan {
                before: &before,
                facts: &facts,
                skipped: &s.skipped,
                operator: &operator,
                sshd_extra: &s.config.sshd_extra,
                rotate_cluster_key: rotate
                    .as_deref()
                    .filter(|_| node.host.role == NodeRole::Master),
                layout: &s.layout,
            };
            let outcome = fix::apply(node, &plan, &ssh, &known);
            s.ledgers.update(&node.host.name, |l| {
                l.changed += outcome.changed;
                l.fix_errors.extend(outcome.errors);
            });
            let name = node.host.name.clone();
            notes.extend(outcome.notes.into_iter().map(|n| format!("{name}: {n}")));
        });
        let mut notes = Vec::new();
        let nodes = items
            .into_iter()
            .map(|(n, mut v)| {
                notes.append(&mut v);
                n
            })
            .collect();
        (nodes, notes)
    }
}

fn alive(nodes: &[Node]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| n.alive())
        .map(|n| n.host.name.clone())
        .collect()
}

/// Rotate the cluster key when a seed key pair is being removed from any selected node and the
/// converge that follows can generate and authorize a new one. Returns the key path, or a note.
fn rotation(
    shared: &Shared,
    engine: &Engine,
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
    let roles = &engine.config.roles;
    if !["spark-keygen", "spark-authorize"]
        .iter()
        .all(|r| roles.iter().any(|x| x == r))
    {
        return Err("the cluster key was not rotated: the config's roles do not include spark-keygen and spark-authorize".into());
    }
    if !alive.contains(&engine.inventory.master.name) {
        return Err("the cluster key was not rotated: the master is not selected (or failed); run harden on the master too".into());
    }
    Ok(Some(shared.layout.cluster_key.clone()))
}

/// Runs the converge that carries the Spark fixes (and regenerates a deleted cluster key) on the
/// live nodes, recording each host's changes and errors; returns the nodes and notes.
fn converge_phase(r: &Run, nodes: Vec<Node>, rotated: bool) -> (Vec<Node>, Vec<String>) {
    let shared = &r.shared;
    let (live, mut rest): (Vec<Node>, Vec<Node>) = nodes.into_iter().partition(Node::alive);
    let names: Vec<String> = live.iter().map(|n| n.host.name.clone()).collect();
    let (outcome, mut nodes) = match crate::harden::converge::run(&r.engine, live) {
        Ok(o) => o,
        Err(e) => {
            for name in &names {
                shared.ledgers.update(name, |l| {
                    l.error.get_or_insert(format!(
                        "the converge for the Spark fixes could not start: {e}"
                    ));
                });
            }
            return (rest, Vec::new());
        }
    };
    nodes.append(&mut rest);
    for (name, n) in &outcome.changed {
        shared.ledgers.update(name, |l| l.changed += n);
    }
    for (name, e) in &outcome.errors {
        shared.ledgers.update(name, |l| {
            l.error.get_or_insert(format!("converge: {e}"));
        });
    }
    let mut notes = outcome.notes;
    if rotated && !outcome.errors.contains_key(&r.engine.inventory.master.name) {
        notes.push("rotated the cluster key: converge generated a new one on the master and authorized it on the workers".into());
    }
    (nodes, notes)
}

pub fn run(args: &HardenArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let target = Target::resolve(&args.common)?;
    let config = HardenConfig::from_value(
        target.config.harden.as_ref(),
        &target.config.path.display().to_string(),
    )?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let layout = Layout::load(&Library {
        roles_dir: target.config.roles_dir.clone(),
        templates_dir: target.config.templates_dir.clone(),
    })?;
    let shared = Arc::new(Shared {
        skipped: config.skipped_ids(),
        config,
        operator: OperatorKeys::load(&target.inventory, target.config.ssh.use_agent),
        spark_managed: target.config.roles.iter().any(|r| r == "spark"),
        config_version: target.config.spark.version.clone(),
        layout,
        ledgers: Ledgers::default(),
    });
    let r = Run {
        shared,
        engine: target.engine(&selected, !args.common.json)?,
    };
    let mut notes = Vec::new();
    let mut nodes = r.audit(r.engine.nodes(&selected), false);
    if !args.check {
        let rotate = rotation(&r.shared, &r.engine, &alive(&nodes)).unwrap_or_else(|n| {
            notes.push(n);
            None
        });
        let rotated = rotate.is_some();
        let (fixed, fix_notes) = r.fix(nodes, rotate);
        nodes = fixed;
        notes.extend(fix_notes);
        let live = alive(&nodes);
        let due = rotated
            || r.shared.ledgers.lock().iter().any(|(name, l)| {
                live.contains(name) && fix::converge_due(&l.before, &r.shared.skipped)
            });
        if due && !live.is_empty() {
            for n in &nodes {
                n.bar.set("converging (Spark settings)");
            }
            let (after, converge_notes) = converge_phase(&r, nodes, rotated);
            nodes = after;
            notes.extend(converge_notes);
        }
        // The re-audit opens new sessions: it must see what a fresh login sees.
        let reachable: BTreeSet<String> = (r.shared.ledgers.lock().iter())
            .filter(|(_, l)| !l.unreachable && l.facts.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let again: Vec<Node> = nodes
            .into_iter()
            .filter(|n| reachable.contains(&n.host.name))
            .map(|mut n| {
                n.reset();
                n.disconnect();
                n
            })
            .collect();
        nodes = r.audit(again, true);
    }
    for n in &nodes {
        n.finish_bar();
    }
    r.engine.progress.clear();

    let ledgers = std::mem::take(&mut *r.shared.ledgers.lock());
    let empty = Default::default();
    let hosts = r
        .engine
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
