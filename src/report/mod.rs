//! What the operator sees: one progress line per host while the run goes (with bytes, rate and
//! time left while a host downloads or uploads the Spark archive) under an overall "N/M hosts
//! done" line, then a recap table, or one JSON object with `--json`. Progress goes to stderr,
//! only when it is a terminal and never with `--json` (the caller decides: `Progress::new`).
//!
//! The JSON shape is a documented contract (README, "JSON output"): bump `schema` when it
//! changes incompatibly.

pub mod transfer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::plan::StepReport;

/// Progress for the whole run; hidden with `--json` or when stderr is not a terminal.
pub struct Progress {
    multi: MultiProgress,
    enabled: bool,
    /// The overall line (first on screen), made when the first pass over hosts begins.
    overall: Mutex<Option<ProgressBar>>,
    stage: Mutex<String>,
}

/// One host's progress line. Cheap to clone and safe to move into blocking tasks.
#[derive(Clone)]
pub struct HostBar {
    bar: Option<ProgressBar>,
}

/// Counts the hosts of one pass (probing, a phase) that are done, on the overall line.
#[derive(Clone)]
pub struct PassCounter {
    bar: Option<ProgressBar>,
    stage: Arc<str>,
}

impl PassCounter {
    pub fn host_done(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
            let (done, total) = (b.position(), b.length().unwrap_or(0));
            b.set_message(transfer::hosts_line(&self.stage, done, total));
        }
    }
}

impl Progress {
    /// `enabled` is the command's wish (no `--json`); nothing is drawn, and no progress is
    /// tracked, unless stderr is also a terminal.
    pub fn new(enabled: bool) -> Self {
        let enabled = enabled && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            enabled,
            overall: Mutex::new(None),
            stage: Mutex::new(String::new()),
        }
    }

    /// Names what the next passes over hosts do (`probing`, `phase 1`) on the overall line.
    pub fn stage(&self, name: &str) {
        if let Ok(mut s) = self.stage.lock() {
            *s = name.to_string();
        }
    }

    /// Starts a pass over `hosts` hosts: the overall line reads `<stage>: 0/<hosts> hosts done`.
    pub fn pass(&self, hosts: usize) -> PassCounter {
        let stage: Arc<str> = self
            .stage
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
            .into();
        if !self.enabled {
            return PassCounter { bar: None, stage };
        }
        let Ok(mut overall) = self.overall.lock() else {
            return PassCounter { bar: None, stage };
        };
        let bar = overall.get_or_insert_with(|| {
            let style = ProgressStyle::with_template("{msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = self.multi.insert(0, ProgressBar::new(0).with_style(style));
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        bar.set_length(hosts as u64);
        bar.set_position(0);
        bar.set_message(transfer::hosts_line(&stage, 0, hosts as u64));
        PassCounter {
            bar: Some(bar.clone()),
            stage,
        }
    }

    pub fn host(&self, name: &str) -> HostBar {
        if !self.enabled {
            return HostBar { bar: None };
        }
        let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style)
                .with_prefix(name.to_string()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        HostBar { bar: Some(bar) }
    }

    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl HostBar {
    pub fn set(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    pub fn finish(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.finish_with_message(msg.to_string());
        }
    }

    /// Removes the line (a controller-side task that is over).
    pub fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Whether anything is drawn (stderr a terminal, no `--json`): watchers skip their work
    /// otherwise.
    pub fn shown(&self) -> bool {
        self.bar.is_some()
    }

    /// A transfer's progress on this host's line, for example `downloading 120.0 MiB /
    /// 316.2 MiB (37%), 12.0 MiB/s, 17 s left`; once all of a known total has arrived, the
    /// step's own label again with what the transfer took (the step goes on: verifying and
    /// unpacking take seconds more).
    pub fn transfer(
        &self,
        step: &str,
        verb: (&str, &str),
        done: u64,
        total: Option<u64>,
        started: Instant,
    ) {
        if let Some(b) = &self.bar {
            let elapsed = started.elapsed();
            b.set_message(match total {
                Some(t) if done >= t => {
                    format!("{step}: {}", transfer::transfer_done(verb.1, done, elapsed))
                }
                _ => format!(
                    "{} {}",
                    verb.0,
                    transfer::transfer_line(done, total, elapsed)
                ),
            });
        }
    }
}

/// A transfer the controller makes itself before any node is touched (caching the Spark
/// archive or a connector jar, staging the archive in S3): from a slow mirror or uplink these
/// are the longest waits of a first converge. It gets a `controller` line with bytes, rate and
/// time left, redrawn at most five times a second (reads come in KiB) and at the end, and
/// removed when the transfer is over, also when it fails. Nothing is drawn when progress is
/// hidden.
pub struct ControllerTransfer<'a> {
    progress: &'a Progress,
    step: String,
    verbs: (&'static str, &'static str),
    started: Instant,
    drawn: Option<Instant>,
    bar: Option<HostBar>,
}

impl<'a> ControllerTransfer<'a> {
    /// `verbs`: the running and the finished form, `("uploading", "uploaded")`.
    pub fn new(progress: &'a Progress, step: &str, verbs: (&'static str, &'static str)) -> Self {
        ControllerTransfer {
            progress,
            step: step.to_string(),
            verbs,
            started: Instant::now(),
            drawn: None,
            bar: None,
        }
    }

    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.progress.enabled {
            return;
        }
        let now = Instant::now();
        let end = total.is_some_and(|t| done >= t);
        if !end
            && self
                .drawn
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return;
        }
        self.drawn = Some(now);
        let progress = self.progress;
        self.bar
            .get_or_insert_with(|| progress.host("controller"))
            .transfer(&self.step, self.verbs, done, total, self.started);
    }

    /// Whether the line is drawn: a note printed meanwhile would garble it.
    pub fn shown(&self) -> bool {
        self.progress.enabled
    }

    /// Prints `text` on stderr above the drawn lines (they are lifted off for it).
    pub fn note(&self, text: &str) {
        self.progress.multi.suspend(|| eprintln!("{text}"));
    }
}

impl Drop for ControllerTransfer<'_> {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.clear();
        }
    }
}

/// One host's line in the recap and in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct HostRecap {
    pub name: String,
    pub address: String,
    pub role: String,
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub unreachable: u32,
    pub skipped: u32,
    /// What the run cost this host: SSH handshakes and remote commands (a no-op is 1 and 1).
    pub handshakes: u32,
    pub commands: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepReport>,
}

/// The `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub command: String,
    pub check: bool,
    pub elapsed_ms: u128,
    pub hosts: Vec<HostRecap>,
    /// Cluster-level actions that are not a host's step (for example stopping a removed worker).
    pub notes: Vec<String>,
    /// A rolling Spark upgrade this converge made (or would make, with `--check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<crate::spark::upgrade::UpgradeReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub unreachable: u32,
}

impl RunReport {
    pub fn new(command: &str, check: bool, elapsed: Duration, hosts: Vec<HostRecap>) -> Self {
        let mut s = Summary {
            hosts: hosts.len(),
            ..Summary::default()
        };
        for h in &hosts {
            s.ok += h.ok;
            s.changed += h.changed;
            s.failed += h.failed;
            s.unreachable += h.unreachable;
        }
        RunReport {
            schema: 1,
            command: command.to_string(),
            check,
            elapsed_ms: elapsed.as_millis(),
            hosts,
            notes: Vec::new(),
            upgrade: None,
            summary: s,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
    }

    /// The human report: changes (or every step with -v), errors, then the recap table.
    pub fn to_text(&self, verbose: u8, diff: bool) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            for s in &h.steps {
                if s.changed || verbose > 0 {
                    let mark = match (s.changed, self.check) {
                        (true, true) => "would change",
                        (true, false) => "changed",
                        (false, _) => "ok",
                    };
                    out.push_str(&format!(
                        "{:<14} {}: {} — {}\n",
                        mark, h.name, s.step, s.reason
                    ));
                }
                if diff {
                    if let Some(d) = &s.diff {
                        out.push_str(d);
                        if !d.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                }
            }
            if let Some(e) = &h.error {
                let kind = if h.unreachable > 0 {
                    "UNREACHABLE"
                } else {
                    "FAILED"
                };
                out.push_str(&format!("{kind:<14} {}: {e}\n", h.name));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note           {n}\n"));
        }
        let width = self
            .hosts
            .iter()
            .map(|h| h.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "\nRECAP{}\n{:<width$}  {:>4} {:>7} {:>6} {:>11} {:>7}\n",
            if self.check {
                " (check mode: nothing was changed)"
            } else {
                ""
            },
            "host",
            "ok",
            "changed",
            "failed",
            "unreachable",
            "skipped"
        ));
        for h in &self.hosts {
            out.push_str(&format!(
                "{:<width$}  {:>4} {:>7} {:>6} {:>11} {:>7}\n",
                h.name, h.ok, h.changed, h.failed, h.unreachable, h.skipped
            ));
        }
        out.push_str(&format!(
            "{} host(s) in {:.1}s\n",
            self.hosts.len(),
            self.elapsed_ms as f64 / 1000.0
        ));
        out
    }
}
