//! Turning the ledgers into findings, the human report, the `--json` document (schema in the
//! module doc of `crate::harden`) and the exit code.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::checks::{Fix, CHECKS};
use super::{HostLedger, Status, Verdict};
use crate::error::{EXIT_CHANGES_PENDING, EXIT_HOST_FAILED};
use crate::inventory::Host;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: &'static str,
    pub status: Status,
    pub title: &'static str,
    pub detail: String,
    pub fix: &'static str,
    /// Whether harden can fix it by itself (not serialised: the exit code uses it).
    #[serde(skip)]
    pub automatic: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub role: &'static str,
    pub reachable: bool,
    pub failed: bool,
    pub error: Option<String>,
    pub changed: u32,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub pass: u32,
    pub fail: u32,
    pub fixed: u32,
    pub not_applicable: u32,
    pub skipped: u32,
    pub changed: u32,
    pub failed_hosts: u32,
    pub unreachable_hosts: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub command: &'static str,
    pub check: bool,
    pub elapsed_ms: u128,
    pub hosts: Vec<HostReport>,
    pub notes: Vec<String>,
    pub summary: Summary,
}

fn status_of(v: &Verdict) -> Status {
    match v {
        Verdict::Pass(_) => Status::Pass,
        Verdict::Fail(_) => Status::Fail,
        Verdict::NotApplicable(_) => Status::NotApplicable,
    }
}

/// One host's findings: skips first win, then the re-audit (when there was one) decides between
/// pass, fixed and fail; without one, the first audit stands.
pub fn findings(ledger: &HostLedger, skip: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in CHECKS {
        let Some(before) = ledger.before.get(c.id) else {
            continue;
        };
        let after = ledger.after.get(c.id);
        let (status, mut detail) = if let Some(reason) = skip.get(c.id) {
            (
                Status::Skipped,
                format!("skipped in sparkboot.toml: {reason}"),
            )
        } else {
            match after {
                Some(a) if before.failed() && !a.failed() && status_of(a) == Status::Pass => (
                    Status::Fixed,
                    format!("was: {}; now: {}", before.detail(), a.detail()),
                ),
                Some(a) => (status_of(a), a.detail().to_string()),
                None => (status_of(before), before.detail().to_string()),
            }
        };
        if status == Status::Fail {
            if let Some(e) = ledger.fix_errors.get(c.id) {
                detail = format!("{detail} (fix: {e})");
            }
        }
        out.push(Finding {
            id: c.id,
            severity: c.severity.as_str(),
            status,
            title: c.title,
            detail,
            fix: c.fix_text,
            automatic: c.fix != Fix::Manual,
        });
    }
    out
}

pub fn host_report(
    host: &Host,
    ledger: &HostLedger,
    skip: &BTreeMap<String, String>,
) -> HostReport {
    HostReport {
        name: host.name.clone(),
        address: host.address.clone(),
        role: host.role.as_str(),
        reachable: !ledger.unreachable,
        failed: ledger.error.is_some(),
        error: ledger.error.clone(),
        changed: ledger.changed,
        findings: findings(ledger, skip),
    }
}

impl Report {
    pub fn new(check: bool, elapsed: Duration, hosts: Vec<HostReport>, notes: Vec<String>) -> Self {
        let mut s = Summary {
            hosts: hosts.len(),
            ..Summary::default()
        };
        for h in &hosts {
            s.changed += h.changed;
            s.failed_hosts += u32::from(h.failed);
            s.unreachable_hosts += u32::from(!h.reachable);
            for f in &h.findings {
                match f.status {
                    Status::Pass => s.pass += 1,
                    Status::Fail => s.fail += 1,
                    Status::Fixed => s.fixed += 1,
                    Status::NotApplicable => s.not_applicable += 1,
                    Status::Skipped => s.skipped += 1,
                }
            }
        }
        Report {
            schema: 1,
            command: "harden",
            check,
            elapsed_ms: elapsed.as_millis(),
            hosts,
            notes,
            summary: s,
        }
    }

    /// 2: a host failed, or (apply) an automatic fix left its check failing; 3: failing checks
    /// remain (any with --check; only manual ones otherwise); 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        let fails = || {
            self.hosts
                .iter()
                .flat_map(|h| &h.findings)
                .filter(|f| f.status == Status::Fail)
        };
        if self.hosts.iter().any(|h| h.failed) || (!self.check && fails().any(|f| f.automatic)) {
            EXIT_HOST_FAILED
        } else if fails().next().is_some() {
            EXIT_CHANGES_PENDING
        } else {
            0
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
    }

    /// Per host, one line per check (`status severity id detail`) and, for anything not
    /// passing, the fix on the next line; then a recap.
    pub fn to_text(&self, verbose: u8) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            out.push_str(&format!("{} ({}, {})\n", h.name, h.address, h.role));
            if let Some(e) = &h.error {
                let kind = if h.reachable { "FAILED" } else { "UNREACHABLE" };
                out.push_str(&format!("  {kind}: {e}\n"));
            }
            for f in &h.findings {
                let quiet = matches!(f.status, Status::Pass | Status::NotApplicable);
                let line = format!("  {:<14} {:<8} {:<21}", f.status.as_str(), f.severity, f.id);
                if quiet && verbose == 0 {
                    out.push_str(line.trim_end());
                } else {
                    out.push_str(&format!("{line} {}", f.detail));
                }
                out.push('\n');
                if !quiet {
                    out.push_str(&format!("  {:<14} fix: {}\n", "", f.fix));
                }
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "\n{}: {} host(s), {} pass, {} fixed, {} FAIL, {} not applicable, {} skipped; {} change(s){}{} in {:.1}s\n",
            if self.check { "harden --check (nothing was changed)" } else { "harden" },
            s.hosts, s.pass, s.fixed, s.fail, s.not_applicable, s.skipped, s.changed,
            if s.failed_hosts > 0 { format!(", {} host(s) FAILED", s.failed_hosts) } else { String::new() },
            if s.unreachable_hosts > 0 { format!(" ({} unreachable)", s.unreachable_hosts) } else { String::new() },
            self.elapsed_ms as f64 / 1000.0
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(before: &[(&'static str, Verdict)], after: &[(&'static str, Verdict)]) -> HostLedger {
        HostLedger {
            before: before.iter().cloned().collect(),
            after: after.iter().cloned().collect(),
            ..HostLedger::default()
        }
    }

    fn report(check: bool, l: &HostLedger, skip: &BTreeMap<String, String>) -> Report {
        let host = Host::new(
            "m".into(),
            "192.0.2.1".into(),
            22,
            "root".into(),
            None,
            None,
            crate::inventory::NodeRole::Master,
            Default::default(),
        )
        .expect("host");
        Report::new(
            check,
            Duration::ZERO,
            vec![host_report(&host, l, skip)],
            vec![],
        )
    }

    #[test]
    fn statuses_and_exit_codes() {
        let fail = |d: &str| Verdict::Fail(d.into());
        let pass = |d: &str| Verdict::Pass(d.into());
        let l = ledger(
            &[
                ("ssh-password-auth", fail("yes")),
                ("imds-v2", Verdict::NotApplicable("x".into())),
            ],
            &[],
        );
        let r = report(true, &l, &BTreeMap::new());
        assert_eq!(r.hosts[0].findings[0].status, Status::Fail);
        assert_eq!(r.exit_code(), 3);
        assert_eq!(r.summary.not_applicable, 1);

        let fixed = ledger(
            &[("ssh-password-auth", fail("yes"))],
            &[("ssh-password-auth", pass("no"))],
        );
        let r = report(false, &fixed, &BTreeMap::new());
        assert_eq!(r.hosts[0].findings[0].status, Status::Fixed);
        assert_eq!(r.exit_code(), 0);

        let stuck = ledger(
            &[("ssh-password-auth", fail("yes"))],
            &[("ssh-password-auth", fail("yes"))],
        );
        assert_eq!(
            report(false, &stuck, &BTreeMap::new()).exit_code(),
            2,
            "a fix that did not work"
        );
        let manual = ledger(&[("imds-v2", fail("v1"))], &[("imds-v2", fail("v1"))]);
        assert_eq!(
            report(false, &manual, &BTreeMap::new()).exit_code(),
            3,
            "nothing harden can do"
        );

        let skip: BTreeMap<String, String> =
            [("ssh-password-auth".to_string(), "bastion".to_string())].into();
        let r = report(true, &stuck, &skip);
        assert_eq!(r.hosts[0].findings[0].status, Status::Skipped);
        assert!(r.hosts[0].findings[0].detail.contains("bastion"));
        assert_eq!(r.exit_code(), 0);
        let text = r.to_text(0);
        assert!(
            text.contains("skipped") && text.contains("ssh-password-auth"),
            "{text}"
        );

        let down = HostLedger {
            error: Some("unreachable".into()),
            unreachable: true,
            ..HostLedger::default()
        };
        let r = report(true, &down, &BTreeMap::new());
        assert_eq!(r.exit_code(), 2);
        assert!(r.to_json().contains("\"unreachable_hosts\": 1"));
    }
}
