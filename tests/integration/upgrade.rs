//! A rolling upgrade and its rollback on a 1+2 lab with real Spark: 3.5.7 converged, then the
//! lab's sparkboot.toml set to the default 4.x. `--check` shows the stages and changes nothing.
//! A first attempt loses lab-worker-1 (its sshd killed) after the master's stage: the upgrade
//! stops at that batch and lab-worker-2 keeps running 3.5.7, untouched. The re-run goes on: the
//! master (already done) first, then one worker per batch, each registered before the next,
//! while a loop of `submit`ted jobs runs: jobs finish on 3.5.7 before, on the new version
//! between batches, and after. Setting 3.5.7 back rolls back the same way with no download: the
//! archive's step is unchanged on every host and the lab's HTTP server sees no request for it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const OLD: &str = "3.5.7";
const ANSWER: &str = "499999500000";

/// One submitted job: when it ran, and the Spark version it printed (None: it failed).
#[derive(Debug, Clone)]
struct Job {
    started: Instant,
    ended: Instant,
    version: Option<String>,
}

/// The lab's config for its current version, with one worker per batch and a pause between
/// batches long enough for a job to run on the upgraded part of the cluster.
fn config_copy(lab: &Lab, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.lab_dir().join("sparkboot.toml")).expect("config");
    assert_eq!(
        text.lines().rfind(|l| l.starts_with('[')),
        Some("[spark]"),
        "the lines go into the last table"
    );
    let path = lab.lab_dir().join(name);
    std::fs::write(
        &path,
        format!("{text}upgrade_batch = 1\nupgrade_pause_secs = 25\n"),
    )
    .expect("write config");
    path
}

/// Submits the app with a deadline (a job sent while the master restarts may wait for workers
/// forever); the version it printed when it answered right.
fn submit_once(cfg: &Path, app: &Path) -> Option<String> {
    let mut child = Command::new(BIN)
        .args(["submit", "--config"])
        .arg(cfg)
        .arg(app)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("submit");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        if Instant::now() > deadline {
            // SIGTERM: submit ends its remote job and cleans up.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("submit output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut words = stdout.split_whitespace();
    match (out.status.success(), words.next(), words.next()) {
        (true, Some(v), Some(ANSWER)) => Some(v.to_string()),
        _ => None,
    }
}

fn converge(cfg: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "converge",
        "--json",
        "--config",
        cfg.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let out = sparkboot(args);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("converge --json: {e}\n{}", text(&out)));
    (out.status.code(), doc)
}

fn stage_hosts(doc: &Value) -> Vec<(String, Vec<String>, String)> {
    doc["upgrade"]["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no upgrade stages: {doc:#}"))
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or_default().to_string(),
                s["hosts"]
                    .as_array()
                    .expect("hosts")
                    .iter()
                    .map(|h| h.as_str().unwrap_or_default().to_string())
                    .collect(),
                s["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn expected_stages(status: &str) -> Vec<(String, Vec<String>, String)> {
    [
        ("first", "lab-master"),
        ("batch", "lab-worker-1"),
        ("batch", "lab-worker-2"),
    ]
    .iter()
    .map(|(k, h)| (k.to_string(), vec![h.to_string()], status.to_string()))
    .collect()
}

fn home_link(lab: &Lab, node: &str) -> String {
    lab.in_node(node, "readlink /opt/spark").trim().to_string()
}

/// The worker daemon's pid on a node (empty when none runs).
fn worker_pid(lab: &Lab, node: &str) -> String {
    lab.in_node(
        node,
        "cat /var/lib/spark/run/spark-spark-org.apache.spark.deploy.worker.Worker-1.pid 2>/dev/null; true",
    )
    .trim()
    .to_string()
}

/// Kills every sshd process of a node (its listener and the run's session), by the pids its
/// own /proc lists: the node is gone for SSH until `lab up` starts its sshd again.
const KILL_SSHD: &str = r#"for d in /proc/[0-9]*; do c=$(cat "$d/comm" 2>/dev/null) || continue; case "$c" in sshd|sshd-session) kill -9 "${d#/proc/}";; esac; done"#;

#[test]
fn a_version_change_rolls_over_the_workers_and_rolls_back_without_a_download() {
    let started = Instant::now();
    let lab = Lab::up_with_spark_version(62, 2, OLD);
    let old_cfg = config_copy(&lab, "old.toml");
    let (code, doc) = converge(&old_cfg, &[]);
    assert_eq!(code, Some(0), "{doc:#}");
    let app = lab.path().join("version.py");
    std::fs::write(
        &app,
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.appName('rolling').getOrCreate()\n\
         print(spark.version, spark.range(1000000).selectExpr('sum(id)').collect()[0][0])\n\
         spark.stop()\n",
    )
    .expect("write app");
    let job_started = Instant::now();
    let before = Job {
        version: submit_once(&old_cfg, &app),
        started: job_started,
        ended: Instant::now(),
    };
    assert_eq!(before.version.as_deref(), Some(OLD));

    // The lab serves the default version beside the old one and names it in sparkboot.toml.
    let first = format!("127.{}.0.2", 62);
    let up = lab.lab(&[
        "up",
        "--workers",
        "2",
        "--first-address",
        &first,
        "--spark-version",
        SPARK_VERSION,
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let new_cfg = config_copy(&lab, "new.toml");
    let new_dir = format!("/opt/spark-{SPARK_VERSION}-bin-hadoop3");
    let old_dir = format!("/opt/spark-{OLD}-bin-hadoop3");

    // --check: the plan, and nothing changed.
    let (code, plan) = converge(&new_cfg, &["--check"]);
    assert_eq!(code, Some(3), "changes pending: {plan:#}");
    assert_eq!(plan["upgrade"]["applied"], false, "{plan:#}");
    assert_eq!(plan["upgrade"]["from"], serde_json::json!([OLD]));
    assert_eq!(plan["upgrade"]["to"], SPARK_VERSION);
    assert_eq!(stage_hosts(&plan), expected_stages("planned"));
    for node in ["lab-master", "lab-worker-1", "lab-worker-2"] {
        assert_eq!(home_link(&lab, node), old_dir, "{node} after --check");
    }

    // A first attempt: lab-worker-1 is lost once the master's stage is done (during the pause
    // before its batch). The upgrade stops there; lab-worker-2 is not touched.
    let w2_pid = worker_pid(&lab, "lab-worker-2");
    assert!(!w2_pid.is_empty(), "lab-worker-2 runs a worker");
    let attempt = Command::new(BIN)
        .args(["converge", "--json", "--config"])
        .arg(&new_cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("converge");
    let deadline = Instant::now() + Duration::from_secs(300);
    while home_link(&lab, "lab-master") != new_dir {
        assert!(
            Instant::now() < deadline,
            "the master never moved to {new_dir}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    lab.in_node("lab-worker-1", KILL_SSHD);
    let out = attempt.wait_with_output().expect("converge");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("converge --json: {e}\n{}", text(&out)));
    assert_eq!(out.status.code(), Some(2), "{doc:#}");
    assert_eq!(doc["upgrade"]["completed"], false, "{doc:#}");
    let statuses: Vec<String> = stage_hosts(&doc).into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(statuses, ["done", "failed", "not run"], "{doc:#}");
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains("stopped at stage 2 of 3: lab-worker-1 failed; lab-worker-2 still run Spark 3.5.7 and were not touched"),
        "{notes}"
    );
    assert_eq!(home_link(&lab, "lab-worker-2"), old_dir);
    assert_eq!(
        worker_pid(&lab, "lab-worker-2"),
        w2_pid,
        "lab-worker-2's worker restarted"
    );
    assert_eq!(home_link(&lab, "lab-worker-1"), old_dir);
    // lab-worker-1 comes back (`lab up` starts its sshd again).
    let up = lab.lab(&[
        "up",
        "--workers",
        "2",
        "--first-address",
        &first,
        "--spark-version",
        SPARK_VERSION,
    ]);
    assert!(up.status.success(), "{}", text(&up));

    // The re-run goes on, with a loop of jobs running through it. The master, upgraded by the
    // first attempt, has no worker until the first batch registers.
    let jobs: Arc<Mutex<Vec<Job>>> = Arc::new(Mutex::new(vec![before]));
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let (jobs, stop, cfg, app) = (jobs.clone(), stop.clone(), new_cfg.clone(), app.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let version = submit_once(&cfg, &app);
                let failed = version.is_none();
                jobs.lock().expect("jobs").push(Job {
                    started,
                    ended: Instant::now(),
                    version,
                });
                if failed {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
    };
    let upgrade_started = Instant::now();
    let (code, doc) = converge(&new_cfg, &[]);
    let upgrade_ended = Instant::now();
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["upgrade"]["applied"], true, "{doc:#}");
    assert_eq!(doc["upgrade"]["completed"], true, "{doc:#}");
    assert_eq!(stage_hosts(&doc), expected_stages("done"));
    // One more job after the upgrade, then the loop ends.
    let after = jobs.lock().expect("jobs").len();
    let deadline = Instant::now() + Duration::from_secs(240);
    while !jobs.lock().expect("jobs")[after..]
        .iter()
        .any(|j| j.version.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "no job finished after the upgrade"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    looper.join().expect("job loop");
    let jobs = jobs.lock().expect("jobs").clone();
    let summary: Vec<String> = jobs
        .iter()
        .map(|j| {
            format!(
                "{:>6.1}..{:>6.1} s {:?}",
                j.started.duration_since(started).as_secs_f64(),
                j.ended.duration_since(started).as_secs_f64(),
                j.version
            )
        })
        .collect();
    eprintln!(
        "upgrade {:.1}..{:.1} s; jobs:\n{}",
        upgrade_started.duration_since(started).as_secs_f64(),
        upgrade_ended.duration_since(started).as_secs_f64(),
        summary.join("\n")
    );
    assert!(
        jobs.iter()
            .any(|j| j.version.as_deref() == Some(OLD) && j.ended <= upgrade_started),
        "no job on {OLD} before the upgrade:\n{}",
        summary.join("\n")
    );
    assert!(
        jobs.iter()
            .any(|j| j.version.as_deref() == Some(SPARK_VERSION)
                && j.started >= upgrade_started
                && j.ended <= upgrade_ended),
        "no job on {SPARK_VERSION} between batches:\n{}",
        summary.join("\n")
    );
    assert!(
        jobs.iter()
            .any(|j| j.version.as_deref() == Some(SPARK_VERSION) && j.started >= upgrade_ended),
        "no job on {SPARK_VERSION} after the upgrade:\n{}",
        summary.join("\n")
    );
    // Every node runs the new version; the old one stays installed beside it, still verified.
    for node in ["lab-master", "lab-worker-1", "lab-worker-2"] {
        assert_eq!(home_link(&lab, node), new_dir, "{node}");
        let kept = lab.sh(&new_cfg, node, &format!("cat {old_dir}/.sparkboot-sha512"));
        assert_eq!(kept.trim().len(), 128, "{node} kept {old_dir}: {kept}");
    }

    // Rollback: the old version again, rolled the same way, with no download.
    let http_log = lab.lab_dir().join("http.log");
    let log_before = std::fs::metadata(&http_log).map(|m| m.len()).unwrap_or(0);
    let (code, back) = converge(&old_cfg, &[]);
    assert_eq!(code, Some(0), "{back:#}");
    assert_eq!(back["upgrade"]["from"], serde_json::json!([SPARK_VERSION]));
    assert_eq!(back["upgrade"]["to"], OLD);
    assert_eq!(stage_hosts(&back), expected_stages("done"));
    for h in back["hosts"].as_array().expect("hosts") {
        let install = h["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["step"] == format!("Ensure Spark {OLD} is installed and verified"))
            .unwrap_or_else(|| panic!("no install step: {h:#}"));
        assert_eq!(install["changed"], false, "{}: {install}", h["name"]);
    }
    let log = std::fs::read(&http_log).unwrap_or_default();
    let since = String::from_utf8_lossy(&log[log_before as usize..]);
    assert!(
        !since.contains(&format!("spark-{OLD}-bin-hadoop3.tgz")),
        "the rollback downloaded:\n{since}"
    );
    for node in ["lab-master", "lab-worker-1", "lab-worker-2"] {
        assert_eq!(home_link(&lab, node), old_dir, "{node} after rollback");
    }
    assert_eq!(submit_once(&old_cfg, &app).as_deref(), Some(OLD));
    eprintln!("upgrade test took {:.1} s", started.elapsed().as_secs_f64());
}
