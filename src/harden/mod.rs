//! `sparkboot harden`: audit (and, without `--check`, fix) the security baseline of every node:
//! the SSH daemon, keys left behind by user-data, Spark's authentication and encryption, file
//! owners and modes, and the EC2 instance metadata service.
//!
//! Why a module of its own: the audit and the fix must agree on what "hardened" means, so every
//! check is defined once in [`checks::CHECKS`] (id, severity, a pure audit over the parsed probe
//! output, and which fix repairs it). The probe and fix scripts live in `crate::shell::harden`;
//! everything here except [`fix`], [`converge`] and [`operator`] is pure and unit-tested.
//!
//! # JSON output (`--json`), schema 1
//!
//! ```text
//! {
//!   "schema": 1,
//!   "command": "harden",
//!   "check": true,                       // true for --check (nothing was changed)
//!   "elapsed_ms": 5123,
//!   "hosts": [{
//!     "name": "lab-master", "address": "127.140.0.2", "role": "master",
//!     "reachable": true,                 // false: no SSH session could be opened
//!     "failed": false,                   // true: unreachable, a fix rolled back, converge failed
//!     "error": null,                     // one sentence when failed
//!     "changed": 3,                      // changes made on this host (0 with --check)
//!     "findings": [{
//!       "id": "ssh-password-auth",       // stable check id (see `checks::CHECKS`)
//!       "severity": "critical",          // critical | high | medium | low
//!       "status": "fail",                // pass | fail | fixed | not-applicable | skipped
//!       "title": "SSH password and keyboard-interactive login are off",
//!       "detail": "passwordauthentication is yes",  // what was seen (or the skip reason)
//!       "fix": "one line: what harden changes, or what to do by hand"
//!     }]
//!   }],
//!   "notes": ["rotated the cluster key: ..."],    // cluster-level actions
//!   "summary": {"hosts": 2, "pass": 20, "fail": 0, "fixed": 9, "not_applicable": 2,
//!               "skipped": 0, "changed": 12, "failed_hosts": 0, "unreachable_hosts": 0}
//! }
//! ```
//!
//! Exit codes: 0 every check passes (or was fixed, or is skipped / not applicable); 1 bad usage
//! or config; 2 a host failed or was unreachable, or an automatic fix did not make its check
//! pass; 3 failing checks remain: with `--check` any failing check, without it only checks that
//! harden cannot fix by itself (for example IMDSv2, or keys it does not own).

pub mod checks;
pub mod config;
pub mod converge;
pub mod facts;
pub mod fix;
pub mod imds;
pub mod keys;
pub mod operator;
pub mod perms;
pub mod report;
pub mod spark;
pub mod sshd;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HardenError {
    #[error("config {path}, field `harden`: {message}")]
    Config { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    Fixed,
    NotApplicable,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Fixed => "fixed",
            Status::NotApplicable => "not-applicable",
            Status::Skipped => "skipped",
        }
    }
}

/// What one audit saw for one check on one host.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass(String),
    Fail(String),
    NotApplicable(String),
}

impl Verdict {
    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Verdict::Pass(d) | Verdict::Fail(d) | Verdict::NotApplicable(d) => d,
        }
    }
}

/// Everything harden learns and does on one host across its phases.
#[derive(Debug, Default)]
pub struct HostLedger {
    pub facts: Option<facts::HostFacts>,
    /// Verdicts of the first audit, by check id.
    pub before: BTreeMap<&'static str, Verdict>,
    /// Verdicts of the audit after the fixes (apply only).
    pub after: BTreeMap<&'static str, Verdict>,
    /// Why a fix did not work, by check id.
    pub fix_errors: BTreeMap<&'static str, String>,
    pub changed: u32,
    pub error: Option<String>,
    pub unreachable: bool,
}

/// Per-host ledgers shared by the blocking host tasks (each task locks only briefly).
#[derive(Debug, Default)]
pub struct Ledgers(Mutex<BTreeMap<String, HostLedger>>);

impl Ledgers {
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, HostLedger>> {
        // A panicking host task is a bug that is re-raised anyway; the data stays usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn update<R>(&self, host: &str, f: impl FnOnce(&mut HostLedger) -> R) -> R {
        let mut map = self.lock();
        f(map.entry(host.to_string()).or_default())
    }
}
