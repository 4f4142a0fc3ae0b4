//! What the operator sees: one progress line per host while the run goes, then a recap table,
//! or one JSON object with `--json`.
//!
//! The JSON shape is a documented contract (README, "JSON output"): bump `schema` when it
//! changes incompatibly.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::plan::StepReport;

/// Progress for the whole run; hidden with `--json` or when stderr is not a terminal.
pub struct Progress {
    multi: MultiProgress,
    enabled: bool,
}

/// One host's progress line. Cheap to clone and safe to move into blocking tasks.
#[derive(Clone)]
pub struct HostBar {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            enabled,
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
