//! `sparkboot watch`: the cluster heals itself under spot churn.
//!
//! Two triggers, either enough on its own: events from the module's queue (lifecycle actions,
//! spot interruption warnings, rebalance recommendations; long-polled), and a reconcile against
//! the inventory every `--interval` (and at once when a static inventory file changes), so the
//! watcher works with every inventory source and misses nothing an event would have said. An
//! event only records what is owed (in [`state::WatchState`], before the message is deleted)
//! and triggers a reconcile, so handling one twice is harmless.
//!
//! A reconcile: read the inventory; decommission the workers told to leave (SIGPWR, executors
//! migrate, daemon stops) and answer their terminate actions; converge everything else with the
//! engine's roles pipeline over sessions kept open since the last reconcile (a reconcile with
//! nothing to do costs one round trip per host and no handshake), heartbeating the launch
//! actions meanwhile; then answer each launch action CONTINUE once its worker is registered, or
//! ABANDON after `--attempts` failed converges. A new master means a full converge with fresh
//! sessions.

pub mod cloud;
pub mod events;
pub mod log;
pub mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::WatchArgs;
use crate::commands::Target;
use crate::engine::converge::{self, ConvergeRequest, PlanBase};
use crate::engine::{Engine, Node};
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::inventory::{Host, Inventory, NodeRole};
use cloud::{Answer, Aws};
use events::{Action, Event};
use log::{now_secs, Log};
use state::{Leaving, Lock, Pending, WatchState};

/// Set by SIGTERM or SIGINT: finish the current step, save, exit.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
    }
}

/// How often a launch action is kept open while its converge runs.
/// A reconcile that finds the cluster locked by another run (a person's converge) waits this
/// long for it, then gives up until the next trigger: the launch actions stay heartbeated.
const LOCK_WAIT_SECS: u64 = 60;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
/// The presigned URL of the s3 distribution lasts an hour: prepare again well before.
const REPREPARE_EVERY: Duration = Duration::from_secs(30 * 60);

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    Start,
    Interval,
    Event,
    InventoryFile,
    Stop,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Interval => "interval",
            Trigger::Event => "event",
            Trigger::InventoryFile => "inventory file changed",
            Trigger::Stop => "stop",
        }
    }
}

struct Watcher {
    engine: Engine,
    base: Arc<PlanBase>,
    prepared_at: Instant,
    spec: String,
    /// Sessions kept between reconciles, by host name.
    nodes: BTreeMap<String, Node>,
    state: WatchState,
    state_dir: PathBuf,
    log: Log,
    aws: Option<Arc<Aws>>,
    queue: Option<String>,
    asg: Option<String>,
    args: WatchArgsCopy,
    /// The last inventory read (kept when discovery fails once).
    inventory: Option<Inventory>,
    file_mtime: Option<std::time::SystemTime>,
    /// Whether the last converge left a host failed.
    last_failed: bool,
}

/// The flags a reconcile reads.
#[derive(Clone)]
struct WatchArgsCopy {
    interval: Duration,
    batch_window: Duration,
    decommission_timeout: u64,
    attempts: u32,
}

pub fn run(args: &WatchArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let state_dir = target.config.state_dir.clone();
    let _lock = Lock::acquire(&state_dir).map_err(Error::Locked)?;
    let state = WatchState::load(&state_dir).map_err(Error::Usage)?;
    let queue = args.queue.clone().or_else(|| {
        target
            .inventory
            .cloud
            .as_ref()
            .and_then(|c| c.queue_url.clone())
    });
    let cloud = target.inventory.cloud.clone();
    let aws = match (&queue, &cloud) {
        (Some(_), Some(c)) => Some(Arc::new(Aws::new(c).map_err(|e| {
            Error::Usage(format!("watch: cannot set up the AWS clients: {e}"))
        })?)),
        (Some(q), None) => {
            return Err(Error::Usage(format!(
                "--queue {q} needs a cloud inventory (`terraform:DIR` or `aws`) to know the region and the workers' group"
            )))
        }
        _ => None,
    };
    let spec = target.spec.clone();
    let roles = target.config.roles.clone();
    let hosts = target.inventory.hosts().count().max(1);
    let engine = Engine::new(
        target.config,
        target.inventory,
        target.known_hosts,
        hosts,
        false,
    )?;
    let req = ConvergeRequest {
        roles: &roles,
        check: false,
        diff: false,
        lock_wait: Some(LOCK_WAIT_SECS),
        command: "watch",
        rolling: false,
    };
    let base = Arc::new(converge::prepare(&engine, &req)?);
    install_stop_handlers();
    let mut w = Watcher {
        asg: cloud.as_ref().map(|c| c.asg.clone()),
        inventory: Some((*engine.inventory).clone()),
        engine,
        base,
        prepared_at: Instant::now(),
        file_mtime: file_mtime(&spec),
        spec,
        nodes: BTreeMap::new(),
        state,
        state_dir,
        log: Log::new(args.common.json),
        aws,
        queue: queue.clone(),
        args: WatchArgsCopy {
            interval: Duration::from_secs(args.interval),
            batch_window: Duration::from_secs(args.batch_window),
            decommission_timeout: args.decommission_timeout,
            attempts: args.attempts,
        },
        last_failed: false,
    };
    w.log.record(
        "start",
        &format!(
            "watching {} (queue: {}, reconcile every {}s)",
            w.spec,
            queue.as_deref().unwrap_or("none"),
            args.interval
        ),
        json!({"inventory": w.spec, "queue": queue, "interval_s": args.interval, "pid": std::process::id()}),
    );
    let mut trigger = Trigger::Start;
    loop {
        w.reconcile(trigger);
        if args.once || STOP.load(Ordering::SeqCst) {
            break;
        }
        trigger = w.wait();
        if trigger == Trigger::Stop {
            break;
        }
    }
    w.log.record("stop", "stopped", json!({}));
    Ok(ExitCode::from(if args.once && w.last_failed {
        EXIT_HOST_FAILED
    } else {
        0
    }))
}

fn file_mtime(spec: &str) -> Option<std::time::SystemTime> {
    if spec == "aws" || spec.starts_with("terraform:") {
        return None;
    }
    std::fs::metadata(spec).and_then(|m| m.modified()).ok()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Watcher {
    fn save(&self) {
        if let Err(e) = self.state.save(&self.state_dir) {
            self.log.error("cannot save state", e);
        }
    }

    /// Waits for the next reason to reconcile, recording queue events as they come.
    fn wait(&mut self) -> Trigger {
        let deadline = Instant::now() + self.args.interval;
        let mut batch_until: Option<Instant> = None;
        loop {
            if STOP.load(Ordering::SeqCst) {
                return Trigger::Stop;
            }
            let now = Instant::now();
            if batch_until.is_some_and(|b| now >= b) {
                return Trigger::Event;
            }
            if now >= deadline {
                return if batch_until.is_some() {
                    Trigger::Event
                } else {
                    Trigger::Interval
                };
            }
            if self.file_mtime.is_some() && file_mtime(&self.spec) != self.file_mtime {
                // Several `lab add`s in a row: wait until the file has been still for the batch
                // window, then converge them together.
                loop {
                    self.file_mtime = file_mtime(&self.spec);
                    std::thread::sleep(self.args.batch_window.max(Duration::from_millis(200)));
                    if file_mtime(&self.spec) == self.file_mtime || STOP.load(Ordering::SeqCst) {
                        break;
                    }
                }
                return Trigger::InventoryFile;
            }
            let left = batch_until
                .unwrap_or(deadline)
                .saturating_duration_since(now);
            match (self.aws.clone(), self.queue.clone()) {
                (Some(aws), Some(queue)) => {
                    // Short polls when a static file is watched or a batch is open.
                    let wait = if batch_until.is_some() {
                        1
                    } else {
                        left.as_secs().clamp(1, 20)
                    };
                    match aws.receive(&queue, wait as u32) {
                        Ok(messages) => match self.handle(&aws, &queue, messages) {
                            Heard::Urgent => return Trigger::Event,
                            Heard::Launch if batch_until.is_none() => {
                                batch_until = Some(Instant::now() + self.args.batch_window)
                            }
                            _ => {}
                        },
                        Err(e) => {
                            self.log.record(
                                "queue_error",
                                &format!("reading the queue failed: {e}; retrying"),
                                json!({"error": e}),
                            );
                            std::thread::sleep(Duration::from_secs(2));
                        }
                    }
                }
                _ => std::thread::sleep(left.min(Duration::from_secs(1))),
            }
        }
    }

    /// Records what the messages ask for, saves, then deletes them. Unknown messages are left
    /// on the queue (its redrive policy moves them to the dead-letter queue).
    fn handle(&mut self, aws: &Aws, queue: &str, messages: Vec<cloud::Message>) -> Heard {
        let mut heard = Heard::Nothing;
        let mut done = Vec::new();
        for m in messages {
            let event = match events::parse(&m.body) {
                Ok(e) => e,
                Err(why) => {
                    self.log.record(
                        "message_ignored",
                        &format!("ignored message {} (delivery {}): {why}; left for the dead-letter queue", m.id, m.receives),
                        json!({"message_id": m.id, "receives": m.receives, "error": why}),
                    );
                    if let Err(e) = aws.release(queue, &m.receipt) {
                        self.log.record("queue_error", &e, json!({"error": e}));
                    }
                    continue;
                }
            };
            let decision = self.record(&event);
            self.log.record(
                "event",
                &format!(
                    "{} for {}: {decision}",
                    event_name(&event),
                    event.instance().unwrap_or("-")
                ),
                json!({"message_id": m.id, "receives": m.receives, "detail": event, "decision": decision}),
            );
            heard = heard.max(match &event {
                Event::Launching(_) => Heard::Launch,
                Event::Terminating(_) | Event::Interruption { .. } | Event::Rebalance { .. } => {
                    if decision.starts_with("ignored") {
                        Heard::Nothing
                    } else {
                        Heard::Urgent
                    }
                }
                Event::Test => Heard::Nothing,
            });
            done.push(m);
        }
        if !done.is_empty() {
            // Saved before any message is deleted: a watcher killed now finds them in its state.
            self.save();
        }
        for m in done {
            if let Err(e) = aws.delete(queue, &m.receipt) {
                self.log.record(
                    "queue_error",
                    &format!("could not delete message {}: {e} (it comes back; handling it again is harmless)", m.id),
                    json!({"message_id": m.id, "error": e}),
                );
            }
        }
        heard
    }

    /// Updates the state for one event; returns the decision, for the log.
    fn record(&mut self, event: &Event) -> String {
        let ours = |a: &Action| self.asg.as_deref().is_none_or(|g| g == a.group);
        let worker = |id: &str, s: &WatchState, inv: &Option<Inventory>| {
            s.launching.contains_key(id)
                || inv
                    .as_ref()
                    .is_some_and(|i| i.workers.iter().any(|w| w.name == id))
        };
        match event {
            Event::Test => "nothing to do (a hook's test message)".into(),
            Event::Launching(a) | Event::Terminating(a) if !ours(a) => {
                format!("ignored: group {} is not this cluster's", a.group)
            }
            Event::Launching(a) | Event::Terminating(a) if self.state.was_answered(&a.token) => {
                "ignored: this action was answered already".into()
            }
            Event::Launching(a) => {
                owe(&mut self.state.launching, a);
                "converge it in the next batch".into()
            }
            Event::Terminating(a) => {
                owe(&mut self.state.terminating, a);
                self.leave(&a.instance, "terminating");
                "decommission it, then answer CONTINUE".into()
            }
            Event::Interruption { instance, .. } | Event::Rebalance { instance } => {
                if !worker(instance, &self.state, &self.inventory) {
                    return "ignored: not a worker of this cluster".into();
                }
                let reason = if matches!(event, Event::Interruption { .. }) {
                    "interruption"
                } else {
                    "rebalance"
                };
                self.leave(instance, reason);
                "decommission it now".into()
            }
        }
    }

    fn leave(&mut self, name: &str, reason: &str) {
        self.state
            .leaving
            .entry(name.to_string())
            .or_insert_with(|| Leaving {
                reason: reason.to_string(),
                since: now_secs(),
                decommissioned: None,
            });
    }

    /// Reads the inventory (keeping the last one when discovery fails).
    fn read_inventory(&mut self) -> Option<Inventory> {
        match crate::inventory::load_with(&self.spec, &self.engine.config, true) {
            Ok(inv) => {
                self.inventory = Some(inv.clone());
                Some(inv)
            }
            Err(e) => {
                self.log.record(
                    "discovery_error",
                    &format!("reading the inventory failed: {e}; using the last one"),
                    json!({"error": e.to_string()}),
                );
                self.inventory.clone()
            }
        }
    }

    /// Takes the kept session for `host` (same address), or a new node.
    fn node_for(&mut self, host: &Host) -> Node {
        match self.nodes.remove(&host.name) {
            Some(mut n) if n.host.address == host.address && n.host.port == host.port => {
                n.reset();
                n.host = host.clone();
                n
            }
            _ => self.engine.node(host.clone(), &host.name),
        }
    }

    fn reconcile(&mut self, trigger: Trigger) {
        let started = Instant::now();
        if self.prepared_at.elapsed() >= REPREPARE_EVERY {
            self.reprepare();
        }
        let Some(inventory) = self.read_inventory() else {
            return;
        };
        let master_key = format!("{} {}", inventory.master.name, inventory.master.address);
        if self.state.master.as_ref().is_some_and(|m| *m != master_key) {
            self.log.record(
                "decision",
                &format!("the master is now {master_key} (was {}): full converge, fresh sessions", self.state.master.as_deref().unwrap_or("-")),
                json!({"decision": "full_converge", "master": master_key, "was": self.state.master}),
            );
            self.nodes.clear();
        }
        self.decommission(&inventory);
        // Leaving workers are out of the cluster from now on.
        let staying: Vec<Host> = inventory
            .workers
            .iter()
            .filter(|w| !self.state.leaving.contains_key(&w.name))
            .cloned()
            .collect();
        let cluster =
            match Inventory::new(inventory.source.clone(), inventory.master.clone(), staying) {
                Ok(mut i) => {
                    i.cloud = inventory.cloud.clone();
                    i
                }
                Err(e) => {
                    self.log.error("inventory", e);
                    return;
                }
            };
        self.engine.set_inventory(Arc::new(cluster));
        let plan = match self.base.bind(self.engine.inventory.clone()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                self.log.error("roles", e);
                return;
            }
        };
        let hosts: Vec<Host> = self.engine.inventory.hosts().cloned().collect();
        let nodes: Vec<Node> = hosts.iter().map(|h| self.node_for(h)).collect();
        // Every kept session is moved into this converge; hosts that left lose theirs.
        self.nodes.clear();
        self.log.record(
            "reconcile_start",
            &format!("converging {} host(s) ({})", hosts.len(), trigger.as_str()),
            json!({"trigger": trigger.as_str(), "hosts": hosts.len(),
                   "launching": self.state.launching.keys().collect::<Vec<_>>()}),
        );
        let beats = self.heartbeats();
        let outcome = converge::run(&self.engine, nodes, plan);
        beats.stop();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.log.error("converge could not start", e);
                return;
            }
        };
        let (mut changed, mut failed, mut handshakes, mut commands) = (0, 0, 0, 0);
        let mut results = BTreeMap::new();
        for h in outcome.hosts {
            changed += h.converge.changed;
            handshakes += h.node.handshakes;
            commands += h.node.commands;
            if h.node.error().is_some() {
                failed += 1;
            }
            results.insert(h.node.host.name.clone(), h.node.error().map(str::to_string));
            let mut node = h.node;
            node.handshakes = 0;
            node.commands = 0;
            self.nodes.insert(node.host.name.clone(), node);
        }
        self.last_failed = failed > 0;
        let took = started.elapsed();
        self.log.record(
            "reconcile",
            &format!(
                "reconciled ({}): {} host(s), {changed} change(s), {failed} failed, {handshakes} handshake(s), {commands} command(s), {:.1}s",
                trigger.as_str(),
                results.len(),
                took.as_secs_f64()
            ),
            json!({"trigger": trigger.as_str(), "hosts": results.len(), "changed": changed, "failed": failed,
                   "handshakes": handshakes, "commands": commands, "elapsed_ms": ms(took),
                   "errors": results.iter().filter_map(|(k, v)| v.as_ref().map(|e| (k.clone(), e.clone()))).collect::<BTreeMap<_, _>>(),
                   "notes": outcome.notes}),
        );
        self.answer_launches(&results);
        self.forget_gone(&inventory);
        self.state.master = Some(master_key);
        self.save();
    }

    fn reprepare(&mut self) {
        let roles = self.engine.config.roles.clone();
        let req = ConvergeRequest {
            roles: &roles,
            check: false,
            diff: false,
            lock_wait: Some(LOCK_WAIT_SECS),
            command: "watch",
            rolling: false,
        };
        match converge::prepare(&self.engine, &req) {
            Ok(b) => {
                self.base = Arc::new(b);
                self.prepared_at = Instant::now();
            }
            Err(e) => self
                .log
                .error("preparing the roles again failed (keeping the last)", e),
        }
    }

    /// Keeps the open launch actions alive while a converge runs.
    fn heartbeats(&self) -> Heartbeats {
        let stop = Arc::new(AtomicBool::new(false));
        let (Some(aws), false) = (self.aws.clone(), self.state.launching.is_empty()) else {
            return Heartbeats { stop, thread: None };
        };
        let actions: Vec<Action> = self
            .state
            .launching
            .values()
            .map(|p| p.action.clone())
            .collect();
        let flag = stop.clone();
        let json = self.log.is_json();
        let thread = std::thread::spawn(move || {
            let log = Log::new(json);
            let mut next = Instant::now() + HEARTBEAT_EVERY;
            while !flag.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    for a in &actions {
                        let answer = aws.heartbeat(a);
                        log.record(
                            "heartbeat",
                            &format!("heartbeat for {}: {answer:?}", a.instance),
                            json!({"instance": a.instance, "token": a.token, "result": format!("{answer:?}")}),
                        );
                    }
                    next = Instant::now() + HEARTBEAT_EVERY;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Heartbeats {
            stop,
            thread: Some(thread),
        }
    }

    /// Decommissions the workers told to leave that are still there, in parallel, and answers
    /// their terminate actions.
    fn decommission(&mut self, inventory: &Inventory) {
        let Some(layout) = self.base.layout.clone() else {
            return;
        };
        let due: Vec<Host> = self
            .state
            .leaving
            .iter()
            .filter(|(_, l)| l.decommissioned.is_none())
            .filter_map(|(name, _)| inventory.workers.iter().find(|w| &w.name == name).cloned())
            .collect();
        if !due.is_empty() {
            let started = Instant::now();
            let timeout = self.args.decommission_timeout;
            let items: Vec<(Node, Option<String>)> =
                due.iter().map(|h| (self.node_for(h), None)).collect();
            let script = crate::shell::spark::decommission_worker(&layout, timeout);
            let done = self.engine.each(items, move |node, out| {
                node.bar.set("decommissioning");
                *out = node.run(&script, None).map(|o| {
                    if o.success() {
                        o.stdout.trim().to_string()
                    } else {
                        format!("failed: {}", o.stderr.trim())
                    }
                });
            });
            for (node, out) in done {
                let outcome = out
                    .or_else(|| node.error().map(|e| format!("unreachable: {e}")))
                    .unwrap_or_else(|| "unknown".into());
                let name = node.host.name.clone();
                let since = self.state.leaving.get(&name).map(|l| l.since).unwrap_or(0);
                if let Some(l) = self.state.leaving.get_mut(&name) {
                    l.decommissioned = Some(outcome.clone());
                }
                self.log.record(
                    "decommissioned",
                    &format!("decommissioned {name}: {outcome} ({:.1}s; {}s after the notice)", started.elapsed().as_secs_f64(), now_secs().saturating_sub(since)),
                    json!({"instance": name, "outcome": outcome, "elapsed_ms": ms(started.elapsed()),
                           "since_notice_ms": now_secs().saturating_sub(since) * 1000}),
                );
            }
            self.save();
        }
        // Terminate actions whose worker is decommissioned (or already gone) are answered.
        let ready: Vec<String> = self
            .state
            .terminating
            .keys()
            .filter(|id| {
                self.state
                    .leaving
                    .get(*id)
                    .is_none_or(|l| l.decommissioned.is_some())
                    || !inventory.workers.iter().any(|w| &w.name == *id)
            })
            .cloned()
            .collect();
        for id in ready {
            if let Some(p) = self.state.terminating.remove(&id) {
                self.answer(&p, "CONTINUE", "decommissioned");
            }
        }
    }

    /// Answers each launch action whose worker converged (CONTINUE), or that failed too often
    /// (ABANDON).
    fn answer_launches(&mut self, results: &BTreeMap<String, Option<String>>) {
        let ids: Vec<String> = self.state.launching.keys().cloned().collect();
        for id in ids {
            let Some(mut p) = self.state.launching.remove(&id) else {
                continue;
            };
            match results.get(&id) {
                Some(None) => self.answer(&p, "CONTINUE", "converged and registered"),
                Some(Some(err)) => {
                    p.attempts += 1;
                    p.last_error = Some(err.clone());
                    if p.attempts >= self.args.attempts {
                        let why = format!("{} converges failed; the last: {err}", p.attempts);
                        self.answer(&p, "ABANDON", &why);
                    } else {
                        self.state.launching.insert(id, p);
                    }
                }
                // Not in the inventory yet (no address, not running): keep it open.
                None => {
                    self.state.launching.insert(id, p);
                }
            }
        }
    }

    /// Sends one answer (once: the token is remembered whatever the API says, except when it
    /// asks to slow down).
    fn answer(&mut self, p: &Pending, result: &str, why: &str) {
        let latency = now_secs().saturating_sub(p.since);
        let answer = match &self.aws {
            Some(aws) => aws.complete(&p.action, result),
            None => Answer::Failed("no queue configured: nothing to answer with".into()),
        };
        if let Answer::Retry(e) = &answer {
            self.log.record(
                "lifecycle_retry",
                &format!(
                    "answering {} for {} was throttled ({e}); next reconcile",
                    result, p.action.instance
                ),
                json!({"instance": p.action.instance, "token": p.action.token, "error": e}),
            );
            let map = if result == "CONTINUE" && why == "decommissioned" {
                &mut self.state.terminating
            } else {
                &mut self.state.launching
            };
            map.insert(p.action.instance.clone(), p.clone());
            return;
        }
        self.state.mark_answered(&p.action.token);
        self.log.record(
            "lifecycle_complete",
            &format!(
                "answered {result} for {} ({why}; {}s after the event): {answer:?}",
                p.action.instance, latency
            ),
            json!({"instance": p.action.instance, "token": p.action.token, "hook": p.action.hook,
                   "group": p.action.group, "result": result, "why": why, "since_event_ms": latency * 1000,
                   "api": format!("{answer:?}")}),
        );
        self.save();
    }

    /// Drops what no longer exists: leaving workers gone from the inventory (a decommissioned
    /// one stays out while its instance still runs), sessions to hosts that left.
    fn forget_gone(&mut self, inventory: &Inventory) {
        let present: Vec<&str> = inventory.workers.iter().map(|w| w.name.as_str()).collect();
        self.state
            .leaving
            .retain(|name, _| present.contains(&name.as_str()));
        self.nodes
            .retain(|name, n| n.host.role == NodeRole::Master || present.contains(&name.as_str()));
    }
}

/// Records an action owed an answer (the first event wins; a repeated one changes nothing).
fn owe(map: &mut BTreeMap<String, Pending>, a: &Action) {
    map.entry(a.instance.clone()).or_insert_with(|| Pending {
        action: a.clone(),
        since: now_secs(),
        attempts: 0,
        last_error: None,
    });
}

/// What a batch of messages asked for, least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Heard {
    Nothing,
    Launch,
    Urgent,
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Launching(_) => "launch lifecycle action",
        Event::Terminating(_) => "terminate lifecycle action",
        Event::Interruption { .. } => "spot interruption warning",
        Event::Rebalance { .. } => "rebalance recommendation",
        Event::Test => "test notification",
    }
}

struct Heartbeats {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeats {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread {
            let _ = t.join();
        }
    }
}
