//! `sparkboot watch` on a lab with a static inventory: nobody runs converge, yet a worker that
//! `lab add` creates registers, one that `lab remove` takes away leaves the master, a reconcile
//! with nothing to do costs one command per host and no handshake, a second watcher refuses,
//! and SIGTERM stops it cleanly.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A `sparkboot watch --json` child, its log in a file; killed by PID when dropped.
pub struct Watcher {
    pub child: Child,
    pub log: PathBuf,
}

impl Watcher {
    pub fn start(cmd: &mut Command, config: &Path, log: PathBuf, extra: &[&str]) -> Watcher {
        let out = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .args([
                "watch",
                "--json",
                "--config",
                config.to_str().expect("utf-8"),
            ])
            .args(extra)
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start watch");
        Watcher { child, log }
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a log entry matching `pred` that comes after the first `skip` entries.
    pub fn wait_for(&self, skip: usize, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(e) = self.events().into_iter().skip(skip).find(|e| pred(e)) {
                return e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "no such watch event within {secs}s; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn signal(&self, sig: libc_signal::Signal) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc_signal::kill(self.child.id() as i32, sig as i32) };
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The two signals the tests send, without another crate.
pub mod libc_signal {
    #[derive(Clone, Copy)]
    pub enum Signal {
        Term = 15,
        Kill = 9,
    }
    extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
    }
}

/// The workers the master's status page lists ALIVE (read from this machine: the lab's master
/// UI listens on its loopback address).
pub fn alive(master: &str) -> BTreeSet<String> {
    let Ok(resp) = ureq::get(&format!("http://{master}:8080/json/"))
        .timeout(Duration::from_secs(5))
        .call()
    else {
        return BTreeSet::new();
    };
    let doc: Value = resp
        .into_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    doc["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter(|w| w["state"] == "ALIVE")
                .filter_map(|w| w["host"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn until(secs: u64, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    started.elapsed()
}

#[test]
fn watch_joins_and_drops_lab_workers_with_nobody_running_converge() {
    let lab = Lab::up_with_spark(163, 1);
    let cfg = lab.path().join("sparkboot.toml");
    std::fs::write(
        &cfg,
        format!(
            "inventory = {inv:?}\n[cluster]\nname = \"watched\"\nstate_dir = {state:?}\n[spark]\n{src}registration_timeout_secs = 120\n",
            inv = lab.inventory(),
            state = lab.path().join("state"),
            src = lab.spark_source_lines(),
        ),
    )
    .expect("config");
    let master = lab.address("lab-master");
    let w = Watcher::start(
        &mut Command::new(BIN),
        &cfg,
        lab.path().join("watch.log"),
        &["--interval", "15", "--batch-window", "1"],
    );
    // The first reconcile converges the whole lab from nothing.
    let first = w.wait_for(0, 300, |e| e["event"] == "reconcile");
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(first["trigger"], "start");
    assert!(alive(&master).contains(&lab.address("lab-worker-1")));

    // One watcher per cluster: a second refuses, naming the first.
    let second = sparkboot(["watch", "--once", "--config", cfg.to_str().expect("utf-8")]);
    assert_eq!(second.status.code(), Some(6), "{}", text(&second));
    assert!(
        text(&second).contains(&format!("pid {}", w.child.id())),
        "{}",
        text(&second)
    );

    // lab add: the new worker registers, nobody runs converge.
    let seen = w.events().len();
    let added = Instant::now();
    assert!(lab.lab(&["add"]).status.success());
    let new = lab.address("lab-worker-2");
    let took = until(120, "the added worker is ALIVE", || {
        alive(&master).contains(&new)
    });
    eprintln!(
        "watch: lab add -> ALIVE in {:.1}s",
        added.elapsed().as_secs_f64()
    );
    let joined = w.wait_for(seen, 60, |e| {
        e["event"] == "reconcile" && e["trigger"] == "inventory file changed"
    });
    assert_eq!(joined["failed"], 0, "{joined}");
    assert!(joined["changed"].as_u64().unwrap_or(0) > 0, "{joined}");
    assert!(took < Duration::from_secs(120));

    // A reconcile with nothing to do: one command per host, no handshake (kept sessions).
    let seen = w.events().len();
    let idle = w.wait_for(seen, 60, |e| {
        e["event"] == "reconcile" && e["trigger"] == "interval"
    });
    assert_eq!(
        (&idle["handshakes"], &idle["commands"], &idle["changed"]),
        (&0.into(), &3.into(), &0.into()),
        "{idle}"
    );

    // lab remove: the master's side follows, and the master stops listing the worker.
    let seen = w.events().len();
    assert!(lab.lab(&["remove", "lab-worker-2"]).status.success());
    let dropped = w.wait_for(seen, 60, |e| {
        e["event"] == "reconcile" && e["trigger"] == "inventory file changed"
    });
    assert_eq!(dropped["failed"], 0, "{dropped}");
    let workers_file = lab.sh(&cfg, "lab-master", "cat /opt/spark/conf/workers");
    assert!(!workers_file.contains(&new), "{workers_file}");
    until(
        150,
        "the removed worker leaves the master's ALIVE list",
        || !alive(&master).contains(&new),
    );

    // SIGTERM: the watcher finishes its step, logs, and exits 0.
    w.signal(libc_signal::Signal::Term);
    let mut w = w;
    let status = {
        let started = Instant::now();
        loop {
            if let Some(s) = w.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(status.code(), Some(0));
    assert!(w.events().iter().any(|e| e["event"] == "stop"));
}
