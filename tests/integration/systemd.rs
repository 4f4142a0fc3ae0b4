//! The production path on nodes that boot systemd as PID 1 (`lab up --systemd`: systemd-nspawn
//! on a debootstrapped Debian 12, as an EC2 instance boots its image): Java installed by apt,
//! Spark under its systemd units, `status` without pidfiles, and the faults an operator meets
//! there (a daemon killed, a daemon stopped by hand, sshd down, a worker dropped from the
//! inventory, a node added, an archive that does not match its checksum). The built-in roles and the lab's own sparkboot.toml, as a user would run them.
//! One test, because each step builds on the cluster the last left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::reliability::{record_on, Row};

struct Cluster {
    lab: Lab,
    config: PathBuf,
}

impl Cluster {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![args[0], "--config", self.config.to_str().expect("utf-8")];
        all.extend_from_slice(&args[1..]);
        sparkboot(all)
    }

    fn converge(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["converge", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let mut doc = json(&out);
        doc["exit"] = out.status.code().into();
        doc
    }

    fn sh(&self, host: &str, script: &str) -> String {
        let out = self.run(&["exec", "--limit", host, "--json", "--", "sh", "-c", script]);
        exec_stdout(&out, host, script).trim().to_string()
    }

    fn status(&self) -> (Option<i32>, serde_json::Value) {
        let out = self.run(&["status", "--json"]);
        (out.status.code(), json(&out))
    }
}

fn host<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

fn assert_converged(doc: &serde_json::Value, what: &str) {
    assert_eq!(doc["exit"], 0, "{what}: {doc:#}");
    for (name, _, _, failed, unreachable) in counts(doc) {
        assert_eq!((failed, unreachable), (0, 0), "{what}: {name}");
    }
}

/// True when no host of a converge report changed anything.
fn changed_nothing(doc: &serde_json::Value) -> bool {
    counts(doc)
        .iter()
        .all(|(_, _, changed, _, _)| *changed == 0)
}

fn running(status: &serde_json::Value, node: &str) -> bool {
    status["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["name"] == node))
        .map(|n| n["daemon_running"] == true)
        .unwrap_or_else(|| panic!("{node} not in {status:#}"))
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn systemd_nodes_run_spark_under_units_with_java_from_apt() {
    let lab = Lab::up_systemd(180, 2);
    let c = Cluster {
        config: lab.lab_dir().join("sparkboot.toml"),
        lab,
    };
    let all = ["lab-master", "lab-worker-1", "lab-worker-2"];
    let workers = ["lab-worker-1", "lab-worker-2"];

    // 0. Each node is a booted systemd (PID 1 inside it) with no Java yet.
    for h in all {
        assert_eq!(c.sh(h, "readlink /proc/1/exe"), "/usr/lib/systemd/systemd");
        let state = c.sh(h, "systemctl is-system-running --wait 2>/dev/null || true");
        assert!(
            matches!(state.as_str(), "running" | "degraded"),
            "{h}: {state}"
        );
        assert_eq!(c.sh(h, "command -v java || echo none"), "none", "{h}");
    }

    // 1. Converge: Java from apt (the image's local repository), Spark under its units.
    let first = c.converge(&[]);
    assert_converged(&first, "first converge");
    for h in all {
        let java = c.sh(
            h,
            "dpkg-query -W -f '${Status}' openjdk-17-jre-headless; echo; java -version 2>&1 | head -1",
        );
        assert!(java.starts_with("install ok installed"), "{h}: {java}");
        assert!(java.contains("17."), "{h}: {java}");
    }
    let unit_state = |h: &str, unit: &str| {
        c.sh(
            h,
            &format!("systemctl is-active {unit} || true; systemctl is-enabled {unit} || true"),
        )
    };
    assert_eq!(unit_state("lab-master", "spark-master"), "active\nenabled");
    for w in workers {
        assert_eq!(unit_state(w, "spark-worker"), "active\nenabled", "{w}");
        assert_eq!(unit_state(w, "spark-master"), "inactive", "{w}");
    }
    // Daemons started by systemd write no spark-daemon.sh pidfiles: status cannot lean on them.
    for h in all {
        assert_eq!(
            c.sh(h, "ls -A /var/lib/spark/run | wc -l"),
            "0",
            "{h} has pidfiles"
        );
    }
    let master = c.lab.address("lab-master");
    let sql = format!(
        "runuser -u spark -- /opt/spark/bin/spark-sql --master spark://{master}:7077 -e 'SELECT sum(id) FROM range(10000000)' 2>/dev/null"
    );
    assert_eq!(c.sh("lab-master", &sql), "49999995000000");
    let (code, status) = c.status();
    assert_eq!(code, Some(0), "{status:#}");
    assert!(all.iter().all(|h| running(&status, h)), "{status:#}");
    // The history server runs under its own unit on the master and lists that application
    // (run as the spark user, as jobs are: a root driver's event log is root's, which the
    // history server, running as spark, cannot read).
    assert_eq!(unit_state("lab-master", "spark-history"), "active\nenabled");
    let on_master = status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "lab-master"))
        .unwrap_or_else(|| panic!("no master in {status:#}"));
    assert_eq!(on_master["history_running"], true, "{status:#}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let listed = ureq::get(&format!("http://{master}:18080/api/v1/applications"))
            .timeout(std::time::Duration::from_secs(5))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default();
        if listed.contains("\"completed\" : true") || listed.contains("\"completed\":true") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the history server never listed the finished application: {listed}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    // Under systemd the daemons' output goes to the journal: the cluster secret is in neither
    // the journal nor any process's argv (read back here, searched in the test, so the search
    // itself puts no secret in an argv).
    let secret = std::fs::read_to_string(c.lab.lab_dir().join("state/lab/spark-auth-secret"))
        .expect("the cluster's secret");
    let secret = secret.trim();
    assert!(secret.len() >= 32, "secret too short to search for");
    for h in all {
        let seen = c.sh(h, "ps -eo args; journalctl --no-pager -o cat 2>&1");
        assert!(seen.lines().count() > 20, "{h}: {seen}");
        assert!(
            !seen.contains(secret),
            "{h}: the secret is in argv or the journal"
        );
    }

    // 2. A re-run changes nothing and restarts nothing.
    let main_pid =
        |h: &str, unit: &str| c.sh(h, &format!("systemctl show -p MainPID --value {unit}"));
    let master_pid = main_pid("lab-master", "spark-master");
    let second = c.converge(&[]);
    assert_converged(&second, "no-op");
    assert!(changed_nothing(&second), "{second:#}");
    assert_eq!(main_pid("lab-master", "spark-master"), master_pid);

    // 3. A worker daemon stopped by hand: status sees it (no pidfile to go stale), converge
    //    starts the unit again and the worker registers.
    c.sh("lab-worker-2", "systemctl stop spark-worker");
    let (status_code, status) = c.status();
    assert_ne!(status_code, Some(0), "{status:#}");
    assert!(!running(&status, "lab-worker-2"), "{status:#}");
    assert!(running(&status, "lab-worker-1"), "{status:#}");
    let started = Instant::now();
    let restarted = c.converge(&[]);
    let took = started.elapsed();
    assert_converged(&restarted, "start the stopped worker");
    assert_eq!(
        host(&restarted, "lab-worker-2")["changed"],
        1,
        "{restarted:#}"
    );
    assert_eq!(
        host(&restarted, "lab-worker-1")["changed"],
        0,
        "{restarted:#}"
    );
    assert_eq!(
        host(&restarted, "lab-master")["changed"],
        0,
        "{restarted:#}"
    );
    assert_eq!(
        unit_state("lab-worker-2", "spark-worker"),
        "active\nenabled"
    );
    assert_eq!(c.status().0, Some(0));
    record_on(
        Flavour::Systemd,
        Row {
            id: "systemd-unit-stopped",
            fault: "a worker daemon stopped by hand on a systemd node (no pidfile exists there)",
            injected: "`systemctl stop spark-worker` on one worker",
            exit: restarted["exit"].as_i64().map(|e| e as i32),
            failed_host: &format!(
            "`status` said stopped (exit {}); converge started the unit (1 change), it registered",
            status_code.map_or("none".into(), |c| c.to_string())
        ),
            rest: "unchanged (0 changes), nothing restarted",
            rerun: "(this run is the re-run) `status` healthy",
            took,
        },
    );

    // 4. The master's JVM killed: systemd's Restart= brings it back, and the workers register
    //    with the new process (converge's registration check, then status).
    let started = Instant::now();
    c.sh("lab-master", &format!("kill -9 {master_pid}"));
    wait_for("the master unit restarted by systemd", 30, || {
        let pid = main_pid("lab-master", "spark-master");
        pid != "0" && pid != master_pid
    });
    let after_kill = c.converge(&[]);
    assert_converged(&after_kill, "after the master was killed");
    assert!(
        changed_nothing(&after_kill),
        "systemd had already restarted it: {after_kill:#}"
    );
    wait_for("both workers ALIVE at the new master", 60, || {
        let (code, status) = c.status();
        code == Some(0) && status["master"]["alive_workers"].as_array().map(Vec::len) == Some(2)
    });
    record_on(Flavour::Systemd, Row {
        id: "systemd-master-killed",
        fault: "the Master JVM dies on a systemd node",
        injected: "`kill -9` of spark-master's MainPID",
        exit: after_kill["exit"].as_i64().map(|e| e as i32),
        failed_host: "systemd restarted the unit by itself (Restart=on-failure, 5 s); converge found it running: 0 changes",
        rest: "both workers re-registered with the new master by themselves (registration checked)",
        rerun: "(this run is the re-run) `status` healthy, both workers listed",
        took: started.elapsed(),
    });

    // 5. sshd stopped on a worker (systemctl stop ssh): the others converge, the worker is
    //    unreachable (exit 2); started again, a re-run converges it and changes nothing.
    assert!(c.lab.lab(&["stop", "lab-worker-1"]).status.success());
    let partial = c.converge(&[]);
    assert_eq!(partial["exit"], 2, "{partial:#}");
    assert_eq!(
        host(&partial, "lab-worker-1")["unreachable"],
        1,
        "{partial:#}"
    );
    assert_eq!(host(&partial, "lab-worker-2")["failed"], 0, "{partial:#}");
    assert!(c.lab.lab(&["start", "lab-worker-1"]).status.success());
    let healed = c.converge(&[]);
    assert_converged(&healed, "after sshd came back");
    assert!(changed_nothing(&healed), "{healed:#}");

    // 6. Scale in: the inventory drops worker 2; converge stops its unit (the node stays up).
    let inventory = std::fs::read_to_string(c.lab.inventory()).expect("inventory");
    let smaller: String = inventory
        .split("[[workers]]")
        .filter(|part| !part.contains("\"lab-worker-2\""))
        .collect::<Vec<_>>()
        .join("[[workers]]");
    assert!(!smaller.contains("lab-worker-2") && smaller.contains("lab-worker-1"));
    let small = c.lab.path().join("two-nodes.toml");
    std::fs::write(&small, smaller).expect("write inventory");
    let shrunk = c.converge(&["--inventory", small.to_str().expect("utf-8")]);
    assert_converged(&shrunk, "scale in");
    assert_eq!(
        unit_state("lab-worker-2", "spark-worker"),
        "inactive\nenabled"
    );
    wait_for("the master to list one ALIVE worker", 30, || {
        let out = sparkboot([
            "status",
            "--config",
            c.config.to_str().expect("utf-8"),
            "--inventory",
            small.to_str().expect("utf-8"),
            "--json",
        ]);
        json(&out)["master"]["alive_workers"]
            .as_array()
            .map(Vec::len)
            == Some(1)
    });

    // 7. Scale out on systemd: a new node (booted from the image, no Java) gets Java from apt,
    //    Spark and its unit; worker 2, back in the inventory, starts again; three ALIVE.
    let added = c.lab.lab(&["add"]);
    assert!(added.status.success(), "{}", text(&added));
    let grown = c.converge(&[]);
    assert_converged(&grown, "scale out");
    assert_eq!(host(&grown, "lab-worker-1")["changed"], 0, "{grown:#}");
    assert!(
        host(&grown, "lab-worker-3")["changed"].as_u64() >= Some(10),
        "{grown:#}"
    );
    assert_eq!(
        unit_state("lab-worker-3", "spark-worker"),
        "active\nenabled"
    );
    assert_eq!(c.status().0, Some(0));

    // 8. A wrong checksum (an upgrade whose archive does not match): every node fails with both
    //    hashes, the installed Spark stays linked and its units keep running.
    let good = std::fs::read_to_string(&c.config).expect("config");
    let real = good
        .lines()
        .find_map(|l| l.strip_prefix("sha512 = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("pinned sha512");
    let bad_config = c.lab.path().join("bad-sum.toml");
    std::fs::write(
        &bad_config,
        good.replace(&real, &"0".repeat(128))
            .replace(
                "inventory = \"inventory.toml\"",
                &format!("inventory = {:?}", c.lab.inventory()),
            )
            .replace(
                "state_dir = \"state\"",
                &format!("state_dir = {:?}", c.lab.lab_dir().join("state")),
            ),
    )
    .expect("bad config");
    let link = c.sh("lab-worker-1", "readlink /opt/spark");
    let started = Instant::now();
    let out = sparkboot([
        "converge",
        "--config",
        bad_config.to_str().expect("utf-8"),
        "--json",
    ]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for h in json(&out)["hosts"].as_array().expect("hosts") {
        let err = h["error"].as_str().unwrap_or_default();
        assert!(
            err.contains(&"0".repeat(128)) && err.contains(&real),
            "both hashes: {h}"
        );
    }
    assert_eq!(c.sh("lab-worker-1", "readlink /opt/spark"), link);
    assert_eq!(c.status().0, Some(0), "the daemons kept running");
    for h in all.iter().chain(&["lab-worker-3"]) {
        assert_eq!(
            c.sh(h, "ls -A /opt | grep -c sparkboot-dl || true"),
            "0",
            "{h}: no partial download left"
        );
    }
    let healed = c.converge(&[]);
    assert_converged(&healed, "after the bad checksum");
    assert!(changed_nothing(&healed), "{healed:#}");
    record_on(
        Flavour::Systemd,
        Row {
            id: "corrupt-archive",
            fault: "the archive's bytes differ from the published checksum",
            injected: "a config pinning a different SHA-512 (a Spark upgrade)",
            exit: out.status.code(),
            failed_host: "every node: failed, both hashes in the message; the previous Spark still linked and running; no partial download left",
            rest: "(all nodes fail alike: nothing installed anywhere)",
            rerun: "with the right checksum: changed nothing",
            took,
        },
    );
    assert_image_untouched();

    // 9. Teardown leaves no process, cgroup or listener behind.
    let addresses: Vec<String> = all
        .iter()
        .chain(&["lab-worker-3"])
        .map(|h| c.lab.address(h))
        .collect();
    let down = c.lab.lab(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    for a in &addresses {
        for h in ["systemd", "unified", ""] {
            let group = Path::new("/sys/fs/cgroup")
                .join(h)
                .join("sparkboot-lab")
                .join(a);
            assert!(!group.exists(), "{} left behind", group.display());
        }
        let open = std::net::TcpStream::connect_timeout(
            &format!("{a}:22").parse().expect("socket address"),
            Duration::from_millis(300),
        );
        assert!(open.is_err(), "something still listens on {a}:22");
    }
}

/// The nodes wrote only to their own upper layers: the shared image is as scripts/debian-rootfs
/// left it (no Java, no Spark).
fn assert_image_untouched() {
    let cache = std::env::var("SPARKBOOT_CACHE").unwrap_or_else(|_| "/var/cache/sparkboot".into());
    let rootfs = Path::new(&cache).join("debian-12-rootfs");
    assert!(rootfs.join(".sparkboot-rootfs").is_file());
    assert!(
        !rootfs.join("opt/spark").exists(),
        "Spark landed in the image"
    );
    assert!(
        !rootfs.join("usr/lib/jvm").exists(),
        "Java landed in the image"
    );
}

#[test]
fn systemd_flag_refuses_a_missing_image_and_a_flavour_change() {
    // A plain lab cannot turn into a systemd one (or back) in place.
    let lab = Lab::up(183, 0);
    let out = lab.lab(&["up", "--workers", "0", "--systemd", "--no-spark"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("created without --systemd") && text(&out).contains("lab down"),
        "{}",
        text(&out)
    );
    // A missing image is named, with the command that builds it; nothing is created.
    let other = tempfile::tempdir().expect("tempdir");
    let dir = other.path().join("lab");
    let out = sparkboot([
        "lab",
        "--dir",
        dir.to_str().expect("utf-8"),
        "up",
        "--systemd",
        "--rootfs",
        "/nonexistent/debian-12-rootfs",
        "--first-address",
        "127.183.1.2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("/nonexistent/debian-12-rootfs")
            && text(&out).contains("scripts/debian-rootfs"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("nodes").exists(), "a node dir was created");
}
