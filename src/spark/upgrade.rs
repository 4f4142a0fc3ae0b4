//! Rolling upgrades (and rollbacks) of a running cluster, as a plan: which hosts go first and
//! which workers go in which batch. Pure: the engine reads each host's facts (where the Spark
//! home link points, whether its worker daemon runs) and carries the plan out in
//! `engine::rolling`.
//!
//! A change of `[spark] version` on a cluster whose workers run is rolled: the master (with
//! every host that runs no worker on another version) first, then the running workers in
//! batches, each batch registered with the master before the next starts. Versions unpack into
//! their own directories and the home link moves, so the version before stays installed and
//! setting it back rolls back the same way, without a download.

use serde::Serialize;

/// One host as the probe saw it.
#[derive(Debug, Clone)]
pub struct HostVersion {
    pub name: String,
    pub master: bool,
    /// Where the Spark home link points (`None`: no link, or the host was not probed).
    pub installed: Option<String>,
    /// The worker daemon runs (so replacing its Spark interrupts executors).
    pub worker_running: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradePlan {
    /// The versions being replaced (from the install directories' names).
    pub from: Vec<String>,
    pub to: String,
    pub batch_size: usize,
    /// The first stage: the master and every host that is not part of a batch.
    pub first: Vec<String>,
    /// Running workers on another version, in inventory order.
    pub batches: Vec<Vec<String>>,
}

/// The rolling plan, or `None` when no running worker is on another version than `target`
/// (then a converge runs every host at once, as always). `batch`: workers per batch; by
/// default a quarter of the workers (rounded up), at least one.
pub fn plan(hosts: &[HostVersion], target: &str, batch: Option<usize>) -> Option<UpgradePlan> {
    let moving: Vec<&HostVersion> = hosts
        .iter()
        .filter(|h| !h.master && h.worker_running)
        .filter(|h| h.installed.as_deref().is_some_and(|d| d != target))
        .collect();
    if moving.is_empty() {
        return None;
    }
    let workers = hosts.iter().filter(|h| !h.master).count();
    let size = batch.unwrap_or(workers.div_ceil(4)).max(1);
    let mut from: Vec<String> = Vec::new();
    for h in hosts {
        if let Some(v) = h
            .installed
            .as_deref()
            .filter(|d| *d != target)
            .map(version_of)
        {
            if !from.contains(&v) {
                from.push(v);
            }
        }
    }
    let batches: Vec<Vec<String>> = moving
        .chunks(size)
        .map(|c| c.iter().map(|h| h.name.clone()).collect())
        .collect();
    let first = hosts
        .iter()
        .filter(|h| !moving.iter().any(|m| m.name == h.name))
        .map(|h| h.name.clone())
        .collect();
    Some(UpgradePlan {
        from,
        to: version_of(target),
        batch_size: size,
        first,
        batches,
    })
}

/// `3.5.7` from `/opt/spark-3.5.7-bin-hadoop3`; the directory's name when it is not shaped so.
pub fn version_of(dir: &str) -> String {
    let name = dir.trim_end_matches('/').rsplit('/').next().unwrap_or(dir);
    name.strip_prefix("spark-")
        .and_then(|rest| rest.split('-').next())
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_string)
        .unwrap_or_else(|| name.to_string())
}

impl UpgradePlan {
    /// The plan in words, one line per stage, for `--check` and the report.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "rolling upgrade of Spark {} -> {}: {} batch(es) of up to {} worker(s), each registered before the next",
            self.from.join(", "),
            self.to,
            self.batches.len(),
            self.batch_size
        )];
        lines.push(format!("stage 1: {}", self.first.join(", ")));
        for (i, b) in self.batches.iter().enumerate() {
            lines.push(format!(
                "stage {} (batch {}): {}",
                i + 2,
                i + 1,
                b.join(", ")
            ));
        }
        lines
    }
}

/// The `upgrade` object of the converge report.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    pub from: Vec<String>,
    pub to: String,
    pub batch_size: usize,
    /// False for `--check` (the plan only).
    pub applied: bool,
    /// Every stage ran and registered.
    pub completed: bool,
    pub stages: Vec<StageReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// `first` (the master and the hosts not in a batch) or `batch`.
    pub kind: &'static str,
    pub hosts: Vec<String>,
    /// `planned` (check mode), `done`, `failed`, or `not run` (an earlier stage failed).
    pub status: &'static str,
    pub seconds: f64,
}

impl UpgradeReport {
    /// The plan, as `--check` shows it.
    pub fn planned(plan: UpgradePlan) -> UpgradeReport {
        UpgradeReport {
            stages: stages(&plan)
                .map(|(kind, hosts)| StageReport {
                    kind,
                    hosts: hosts.clone(),
                    status: "planned",
                    seconds: 0.0,
                })
                .collect(),
            from: plan.from,
            to: plan.to,
            batch_size: plan.batch_size,
            applied: false,
            completed: false,
        }
    }
}

pub fn stages(plan: &UpgradePlan) -> impl Iterator<Item = (&'static str, &Vec<String>)> {
    std::iter::once(("first", &plan.first)).chain(plan.batches.iter().map(|b| ("batch", b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "/opt/spark-3.5.7-bin-hadoop3";
    const NEW: &str = "/opt/spark-4.3.0-bin-hadoop3";

    fn host(name: &str, installed: Option<&str>, running: bool) -> HostVersion {
        HostVersion {
            name: name.into(),
            master: name == "m",
            installed: installed.map(str::to_string),
            worker_running: running,
        }
    }

    #[test]
    fn running_workers_on_another_version_go_in_batches_after_the_master() {
        let hosts = vec![
            host("m", Some(OLD), false),
            host("w1", Some(OLD), true),
            host("w2", Some(OLD), true),
            host("w3", Some(NEW), true),
            host("w4", None, false),
            host("w5", Some(OLD), true),
        ];
        let p = plan(&hosts, NEW, Some(2)).expect("a rolling plan");
        assert_eq!(p.from, vec!["3.5.7"]);
        assert_eq!(p.to, "4.3.0");
        assert_eq!(p.first, vec!["m", "w3", "w4"]);
        assert_eq!(p.batches, vec![vec!["w1", "w2"], vec!["w5"]]);
        // By default a quarter of the 5 workers, rounded up.
        let p = plan(&hosts, NEW, None).expect("plan");
        assert_eq!(p.batch_size, 2);
        let lines = p.describe();
        assert_eq!(lines[1], "stage 1: m, w3, w4");
        assert_eq!(lines[2], "stage 2 (batch 1): w1, w2");
    }

    #[test]
    fn nothing_to_roll_when_no_running_worker_changes_version() {
        // A fresh cluster, a re-run, and an upgraded master whose workers are all stopped.
        let fresh = vec![host("m", None, false), host("w1", None, false)];
        assert_eq!(plan(&fresh, NEW, None), None);
        let done = vec![host("m", Some(NEW), false), host("w1", Some(NEW), true)];
        assert_eq!(plan(&done, NEW, None), None);
        let stopped = vec![host("m", Some(OLD), false), host("w1", Some(OLD), false)];
        assert_eq!(plan(&stopped, NEW, None), None);
    }

    #[test]
    fn a_rollback_is_a_rolling_upgrade_to_the_older_directory() {
        let hosts = vec![host("m", Some(NEW), false), host("w1", Some(NEW), true)];
        let p = plan(&hosts, OLD, Some(1)).expect("plan");
        assert_eq!(
            (p.from.clone(), p.to.clone()),
            (vec!["4.3.0".into()], "3.5.7".into())
        );
        assert_eq!(p.batches, vec![vec!["w1"]]);
    }

    #[test]
    fn versions_come_from_the_directory_name() {
        assert_eq!(version_of("/opt/spark-3.5.7-bin-hadoop3"), "3.5.7");
        assert_eq!(version_of("/opt/spark-4.0.0/"), "4.0.0");
        assert_eq!(version_of("/srv/custom"), "custom");
        assert_eq!(version_of("/opt/spark-x-y"), "spark-x-y");
    }
}
