//! The Spark converge end to end on a lab: 1 master and 2 workers, the lab's Spark served over
//! HTTP and verified by its published .sha512, a real spark-sql job, then re-runs, a config
//! change, scale out and in, a dead daemon, a bad checksum, push mode without the server, and a
//! sweep for leaked secrets. One test, because each step builds on the cluster the last left.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::common::*;
use crate::leaks::ArgvSampler;

struct Cluster {
    lab: Lab,
    outputs: Vec<String>,
}

impl Cluster {
    fn config(&self, name: &str, spark_extra: &str) -> std::path::PathBuf {
        self.config_from(name, &self.lab.spark_source(), spark_extra)
    }

    fn config_from(&self, name: &str, source: &str, spark_extra: &str) -> std::path::PathBuf {
        // The lab serves plain http, so its checksum is pinned unless the case pins its own.
        let pin = if spark_extra.contains("sha512 =") {
            String::new()
        } else {
            format!("sha512 = {:?}\n", self.lab.spark_sha512())
        };
        let body = format!(
            "inventory = {inv:?}\n[cluster]\nname = \"e2e\"\nstate_dir = {state:?}\n[spark]\nsource = {src:?}\nregistration_timeout_secs = 120\n{pin}{spark_extra}",
            inv = self.lab.inventory(),
            state = self.lab.path().join("state"),
            src = source,
        );
        let path = self.lab.path().join(name);
        std::fs::write(&path, body).expect("write config");
        path
    }

    fn sparkboot(&mut self, args: &[&str]) -> Output {
        let out = sparkboot(args);
        self.outputs.push(text(&out));
        out
    }

    fn converge(&mut self, cfg: &Path) -> serde_json::Value {
        let out = self.sparkboot(&[
            "converge",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--json",
        ]);
        let mut doc = json(&out);
        doc["exit"] = out.status.code().into();
        doc
    }

    fn sh(&mut self, cfg: &Path, host: &str, script: &str) -> String {
        let out = self.sparkboot(&[
            "exec",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--limit",
            host,
            "--json",
            "--",
            "sh",
            "-c",
            script,
        ]);
        exec_stdout(&out, host, script)
    }

    fn pids(&mut self, cfg: &Path, hosts: &[&str]) -> BTreeMap<String, String> {
        hosts
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    self.sh(cfg, h, "cat /var/lib/spark/run/*.pid"),
                )
            })
            .collect()
    }
}

fn changed(doc: &serde_json::Value) -> BTreeMap<String, u64> {
    counts(doc)
        .into_iter()
        .map(|(name, _, changed, _, _)| (name, changed))
        .collect()
}

fn assert_converged(doc: &serde_json::Value, what: &str) {
    assert_eq!(doc["exit"], 0, "{what}: {doc:#}");
    for (name, _, _, failed, unreachable) in counts(doc) {
        assert_eq!((failed, unreachable), (0, 0), "{what}: {name}");
    }
}

#[test]
fn spark_cluster_end_to_end() {
    let mut c = Cluster {
        lab: Lab::up_with_spark(131, 2),
        outputs: Vec::new(),
    };
    let cfg = c.config("sparkboot.toml", "");
    let master = c.lab.address("lab-master");

    // 1. Converge, then a real job that runs executors on the workers. Meanwhile every process
    //    on the machine is sampled: the secret this run creates is never in anyone's argv.
    let argv = ArgvSampler::start();
    let first = c.converge(&cfg);
    let argv = argv.finish();
    assert_converged(&first, "first converge");
    let secret = std::fs::read_to_string(c.lab.path().join("state/e2e/spark-auth-secret"))
        .expect("the cluster's secret");
    assert!(
        argv.len() > 50,
        "the sampler saw {} command lines",
        argv.len()
    );
    assert!(
        argv.iter().all(|a| !a.contains(secret.trim())),
        "the secret was in a process's argv"
    );
    let sql = format!("/opt/spark/bin/spark-sql --master spark://{master}:7077 -e 'SELECT sum(id) FROM range(10000000)' 2>/dev/null");
    assert_eq!(c.sh(&cfg, "lab-master", &sql).trim(), "49999995000000");
    for w in ["lab-worker-1", "lab-worker-2"] {
        let apps = c.sh(&cfg, w, "ls /var/lib/spark/work | grep -c '^app-' || true");
        assert!(
            apps.trim().parse::<u32>().unwrap_or(0) >= 1,
            "{w} ran no executor"
        );
    }

    // 2. A second converge changes nothing and restarts nothing.
    let all = ["lab-master", "lab-worker-1", "lab-worker-2"];
    let pids = c.pids(&cfg, &all);
    let second = c.converge(&cfg);
    assert_converged(&second, "no-op converge");
    assert!(
        changed(&second).values().all(|n| *n == 0),
        "no-op run changed something: {second:#}"
    );
    // One handshake and one round trip per host, the master included (its probe carries the
    // exported key and the status page).
    for h in second["hosts"].as_array().expect("hosts") {
        assert_eq!(
            (&h["handshakes"], &h["commands"]),
            (&1.into(), &1.into()),
            "{h}"
        );
    }
    assert_eq!(c.pids(&cfg, &all), pids, "a no-op run restarted a daemon");

    // 3. A worker-only property restarts only the workers.
    let cleanup = c.config(
        "cleanup.toml",
        "[spark.defaults]\n\"spark.worker.cleanup.enabled\" = true\n",
    );
    let third = c.converge(&cleanup);
    assert_converged(&third, "spark-defaults change");
    let after = c.pids(&cleanup, &all);
    assert_eq!(
        after["lab-master"], pids["lab-master"],
        "the master does not read spark.worker.*"
    );
    assert_ne!(
        after["lab-worker-1"], pids["lab-worker-1"],
        "worker 1 restarted"
    );
    assert_ne!(
        after["lab-worker-2"], pids["lab-worker-2"],
        "worker 2 restarted"
    );
    assert_eq!(changed(&third)["lab-master"], 0, "{third:#}");

    // 4. Scale out: only the new worker and the master's conf/workers change; scale in drops it.
    assert!(c.lab.lab(&["add"]).status.success());
    // The new worker's plan with --diff shows its whole spark-defaults.conf, the auth secret
    // only as the redaction marker (the sweep in 8 checks every output, this one included, for
    // the secret itself).
    let planned = c.sparkboot(&[
        "converge",
        "--config",
        cleanup.to_str().expect("utf-8"),
        "--limit",
        "lab-worker-3",
        "--check",
        "--diff",
        "--json",
    ]);
    assert_eq!(planned.status.code(), Some(3), "{}", text(&planned));
    let planned = String::from_utf8_lossy(&planned.stdout).into_owned();
    assert!(
        planned.contains("+spark.authenticate.secret           <redacted by sparkboot>"),
        "{planned}"
    );
    let grown = c.converge(&cleanup);
    assert_converged(&grown, "scale out");
    let ch = changed(&grown);
    assert_eq!(
        (ch["lab-worker-1"], ch["lab-worker-2"]),
        (0, 0),
        "{grown:#}"
    );
    assert_eq!(
        ch["lab-master"], 1,
        "only conf/workers changes on the master: {grown:#}"
    );
    assert!(ch["lab-worker-3"] > 0);
    assert_eq!(
        c.pids(&cleanup, &["lab-master"])["lab-master"],
        pids["lab-master"],
        "the master was not restarted"
    );
    let added = c.lab.address("lab-worker-3");
    assert!(c
        .sh(&cleanup, "lab-master", "cat /opt/spark/conf/workers")
        .contains(&added));
    assert!(c.lab.lab(&["remove", "lab-worker-3"]).status.success());
    let shrunk = c.converge(&cleanup);
    assert_converged(&shrunk, "scale in");
    assert!(
        !c.sh(&cleanup, "lab-master", "cat /opt/spark/conf/workers")
            .contains(&added),
        "scale-in leaves conf/workers"
    );

    // 5. A dead worker daemon is started again.
    let before = c.sh(&cleanup, "lab-worker-1", "cat /var/lib/spark/run/*.pid");
    c.sh(
        &cleanup,
        "lab-worker-1",
        "kill -9 $(cat /var/lib/spark/run/*.pid)",
    );
    let revived = c.converge(&cleanup);
    assert_converged(&revived, "dead daemon");
    let now = c.sh(&cleanup, "lab-worker-1", "cat /var/lib/spark/run/*.pid");
    assert_ne!(now, before);
    assert_eq!(
        c.sh(
            &cleanup,
            "lab-worker-1",
            "kill -0 $(cat /var/lib/spark/run/*.pid) && echo alive"
        )
        .trim(),
        "alive"
    );

    // 5b. A dead master daemon: the next converge starts it again, and every worker registers
    //     with it again (the registration check passes only when all are ALIVE).
    let before = c.sh(&cleanup, "lab-master", "cat /var/lib/spark/run/*.pid");
    c.sh(
        &cleanup,
        "lab-master",
        "kill -9 $(cat /var/lib/spark/run/*.pid)",
    );
    let started = std::time::Instant::now();
    let revived = c.converge(&cleanup);
    let took = started.elapsed();
    assert_converged(&revived, "dead master daemon");
    let counts_after = changed(&revived);
    assert!(counts_after["lab-master"] >= 1, "{revived:#}");
    assert_eq!(counts_after["lab-worker-1"], 0, "{revived:#}");
    assert_eq!(counts_after["lab-worker-2"], 0, "{revived:#}");
    assert_ne!(
        c.sh(&cleanup, "lab-master", "cat /var/lib/spark/run/*.pid"),
        before
    );
    let status = c.sparkboot(&[
        "status",
        "--config",
        cleanup.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status = json(&status);
    assert_eq!(status["healthy"], true, "{status:#}");
    assert_eq!(
        status["master"]["alive_workers"].as_array().map(Vec::len),
        Some(2),
        "{status:#}"
    );
    crate::reliability::record(crate::reliability::Row {
        id: "master-daemon-killed",
        fault: "the master's Spark daemon dies between two converges",
        injected: "`kill -9` of the Master JVM",
        exit: revived["exit"].as_i64().map(|e| e as i32),
        failed_host: "(the master) daemon started again; its other steps unchanged",
        rest: "workers unchanged and ALIVE on the new master (registration checked)",
        rerun: "(this run is the re-run) `status` healthy, both workers listed",
        took,
    });

    // 6. A wrong checksum fails cleanly and keeps the installed Spark.
    let link = c.sh(
        &cleanup,
        "lab-worker-2",
        "readlink /opt/spark; cat /opt/spark/.sparkboot-sha512",
    );
    let bad = c.config(
        "bad.toml",
        &format!(
            "sha512 = \"{}\"\n[spark.defaults]\n\"spark.worker.cleanup.enabled\" = true\n",
            "0".repeat(128)
        ),
    );
    let started = std::time::Instant::now();
    let failed = c.converge(&bad);
    let took = started.elapsed();
    assert_eq!(failed["exit"], 2, "{failed:#}");
    let real = c.lab.spark_sha512();
    for h in failed["hosts"].as_array().expect("hosts") {
        let err = h["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("checksum mismatch")
                && err.contains(&"0".repeat(128))
                && err.contains(&real),
            "both hashes: {h}"
        );
    }
    assert_eq!(
        c.sh(
            &cleanup,
            "lab-worker-2",
            "readlink /opt/spark; cat /opt/spark/.sparkboot-sha512"
        ),
        link,
        "previous install intact"
    );
    assert!(
        c.sh(
            &cleanup,
            "lab-worker-2",
            "ls -A /opt | grep -c sparkboot-dl || true"
        )
        .trim()
            == "0",
        "no partial download left"
    );
    let healed = c.converge(&cleanup);
    assert_converged(&healed, "after the bad checksum");
    assert!(changed(&healed).values().all(|n| *n == 0), "{healed:#}");
    crate::reliability::record(crate::reliability::Row {
        id: "corrupt-archive",
        fault: "the archive's bytes differ from the published checksum",
        injected: "a config pinning a different SHA-512 (a Spark upgrade)",
        exit: failed["exit"].as_i64().map(|e| e as i32),
        failed_host: "every node: failed, both hashes in the message; the previous Spark still linked and running; no partial download left",
        rest: "(all nodes fail alike: nothing installed anywhere)",
        rerun: "with the right checksum: changed nothing",
        took,
    });

    // 7. Push mode works with the lab's HTTP server stopped.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.lab.lab_dir().join("state.json")).expect("state"),
    )
    .expect("json");
    let server_pid = state["spark"]["pid"].as_u64().expect("server pid");
    let served = state["spark"]["directory"]
        .as_str()
        .expect("server dir")
        .to_string();
    // SAFETY-free: plain kill of the lab's own HTTP server, by the PID the lab recorded.
    assert!(std::process::Command::new("kill")
        .arg(server_pid.to_string())
        .status()
        .expect("kill")
        .success());
    let sha =
        std::fs::read_to_string(Path::new(&served).join(format!("{}.sha512", spark_tarball())))
            .expect("sha");
    let sha = sha.split_whitespace().next().expect("hex").to_string();
    // A fresh address: a new node at a removed node's address has a new host key, which
    // sparkboot rightly refuses (see a_changed_host_key_fails_only_that_host).
    let fresh = format!("{}.9", master.rsplit_once('.').expect("dotted").0);
    assert!(c.lab.lab(&["add", "--address", &fresh]).status.success());
    let push = c.config_from(
        "push.toml",
        &format!("file://{served}/spark-{{version}}-{{package}}.tgz"),
        &format!("distribution = \"push\"\nsha512 = \"{sha}\"\n[spark.defaults]\n\"spark.worker.cleanup.enabled\" = true\n"),
    );
    let pushed = c.converge(&push);
    assert_converged(&pushed, "push mode with the server down");
    let status = c.sparkboot(&[
        "status",
        "--config",
        push.to_str().expect("utf-8"),
        "--json",
    ]);
    let st = json(&status);
    assert_eq!(
        st["master"]["alive_workers"].as_array().map(Vec::len),
        Some(3),
        "{st:#}"
    );

    // 8. No file on any node and no output holds the secret or the private key, except the
    //    files meant to hold them (never world-readable).
    let secret =
        std::fs::read_to_string(c.lab.path().join("state/e2e/spark-auth-secret")).expect("secret");
    let secret = secret.trim().to_string();
    // Read on the test's side (not through sparkboot, whose outputs are checked below).
    let key_file = c.lab.lab_dir().join("nodes/lab-master");
    let found = std::process::Command::new("find")
        .arg(&key_file)
        .args(["-path", "*var*/lib/spark/.ssh/id_ed25519"])
        .output()
        .expect("find");
    let key_path = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .expect("the master's private key")
        .to_string();
    let key = std::fs::read_to_string(&key_path).expect("key");
    // Line 2 of every OpenSSH key starts with the same format header; line 4 is key material.
    let key = key.lines().nth(3).expect("key body").trim().to_string();
    assert!(secret.len() >= 32 && key.len() >= 32);
    // spark-defaults.conf is root's and readable by the spark group (the daemons and their
    // executors need the secret; a job must not be able to change the file); the key is 0600.
    for (needle, allowed, want) in [
        (&secret, "spark-defaults.conf", 0o640),
        (&key, "id_ed25519", 0o600),
    ] {
        let out = std::process::Command::new("grep")
            .args(["-rlF", "--exclude=*.jar", "--exclude=*.zip", needle])
            .arg(c.lab.lab_dir().join("nodes"))
            .output()
            .expect("grep");
        let files = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            !files.trim().is_empty(),
            "the sweep found the {allowed} files at all"
        );
        for f in files.lines() {
            assert!(f.ends_with(allowed), "{f} holds a secret");
            let mode = std::fs::metadata(f)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                .expect("stat");
            assert_eq!(mode, want, "{f}");
        }
        for o in &c.outputs {
            assert!(
                !o.contains(needle.as_str()),
                "sparkboot printed a secret:\n{o}"
            );
        }
    }
}
