//! RPC encryption per Spark release, on real clusters: the default release (4.3.0) carries
//! SPARK-56227, so its nodes render AES-GCM and a job runs with it across the workers while a
//! client without the secret is refused; a pinned 3.5.7 converges as before with AES-CTR, since
//! its GCM drops every message after the first (src/spark/release.rs holds the table).

use std::path::PathBuf;

use crate::common::*;

/// A config for `lab`'s nodes and Spark server with these extra `[spark]` lines, its state in
/// the test's dir. Built-in roles (not the fixtures'), as a user's config would have.
fn config(lab: &Lab, name: &str, spark_extra: &str) -> PathBuf {
    let body = format!(
        "inventory = {inv:?}\n[cluster]\nname = \"cipher\"\nstate_dir = {state:?}\n[spark]\nregistration_timeout_secs = 120\n{src}{spark_extra}",
        inv = lab.inventory(),
        state = lab.path().join("state"),
        src = lab.spark_source_lines(),
    );
    let path = lab.path().join(name);
    std::fs::write(&path, body).expect("write config");
    path
}

fn converge(lab: &Lab, cfg: &std::path::Path) {
    let out = lab.run("converge", cfg, &["--json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (name, _, _, failed, unreachable) in counts(&doc) {
        assert_eq!((failed, unreachable), (0, 0), "{name}: {}", text(&out));
    }
}

/// `SET` shows the job's own value of the cipher, then the sum runs tasks on the workers'
/// executors, so every RPC of the job (driver, master, executors, block transfers) went through
/// that cipher.
fn job(master: &str) -> String {
    format!(
        "/opt/spark/bin/spark-sql --master spark://{master}:7077 -e 'SET spark.network.crypto.cipher; SELECT sum(id) FROM range(10000000)' 2>/dev/null"
    )
}

#[test]
fn the_default_spark_runs_jobs_over_aes_gcm_and_refuses_a_client_without_the_secret() {
    let lab = Lab::up_with_spark(60, 2);
    let cfg = config(&lab, "default.toml", "");
    converge(&lab, &cfg);
    let master = lab.address("lab-master");
    for node in ["lab-master", "lab-worker-1", "lab-worker-2"] {
        let conf = lab.sh(
            &cfg,
            node,
            "cat /opt/spark/conf/spark-defaults.conf; readlink /opt/spark",
        );
        assert!(
            conf.contains("spark.network.crypto.enabled        true\n")
                && conf.contains("spark.network.crypto.cipher         AES/GCM/NoPadding\n"),
            "{node}: {conf}"
        );
        assert!(
            conf.contains(&format!("/opt/spark-{SPARK_VERSION}-bin-hadoop3")),
            "{node} runs the default Spark: {conf}"
        );
    }
    let out = lab.sh(&cfg, "lab-master", &job(&master));
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"spark.network.crypto.cipher\tAES/GCM/NoPadding")
            && lines.contains(&"49999995000000"),
        "the job ran with GCM and finished: {out}"
    );
    let apps = lab.sh(
        &cfg,
        "lab-worker-1",
        "ls /var/lib/spark/work | grep -c '^app-' || true",
    );
    assert!(
        apps.trim().parse::<u32>().unwrap_or(0) >= 1,
        "the job's executors ran on the workers: {apps}"
    );
    assert_refused(&lab.sh(&cfg, "lab-master", &no_secret_client_script(&master)));
}

#[test]
fn a_pinned_spark_3_5_7_still_converges_and_keeps_aes_ctr() {
    let lab = Lab::up_with_spark_version(61, 1, "3.5.7");
    let cfg = config(&lab, "pinned.toml", "version = \"3.5.7\"\n");
    converge(&lab, &cfg);
    let master = lab.address("lab-master");
    let conf = lab.sh(
        &cfg,
        "lab-worker-1",
        "cat /opt/spark/conf/spark-defaults.conf; readlink /opt/spark",
    );
    assert!(
        conf.contains("spark.network.crypto.cipher         AES/CTR/NoPadding\n")
            && conf.contains("/opt/spark-3.5.7-bin-hadoop3"),
        "{conf}"
    );
    let out = lab.sh(&cfg, "lab-master", &job(&master));
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"spark.network.crypto.cipher\tAES/CTR/NoPadding")
            && lines.contains(&"49999995000000"),
        "{out}"
    );
}
