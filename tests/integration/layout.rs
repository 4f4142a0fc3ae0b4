//! The spark role's `[layout]` is the one source of Spark paths: a layout overridden through
//! `roles_dir` (another install dir, Spark home and pid dir) is followed by converge, status,
//! harden's rules and the scale-in stop alike.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

const INSTALL_ROOT: &str = "/srv/spark-versions";
const HOME: &str = "/srv/spark-current";
const PID_DIR: &str = "/var/lib/spark/pids";

/// The built-in spark role with its layout moved.
fn moved_roles(dir: &Path) -> PathBuf {
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("roles/spark/role.toml"),
    )
    .expect("built-in spark role");
    let moved = builtin
        .replace(
            "install_root = \"/opt\"",
            &format!("install_root = \"{INSTALL_ROOT}\""),
        )
        .replace("home = \"/opt/spark\"", &format!("home = \"{HOME}\""))
        .replace(
            "pid_dir = \"/var/lib/spark/run\"",
            &format!("pid_dir = \"{PID_DIR}\""),
        );
    assert_ne!(builtin, moved, "the layout lines were found");
    let roles = dir.join("roles");
    std::fs::create_dir_all(roles.join("spark")).expect("mkdir");
    std::fs::write(roles.join("spark/role.toml"), moved).expect("write role");
    roles
}

fn write_config(lab: &Lab, name: &str, inventory: &Path, roles: &Path) -> PathBuf {
    let body = format!(
        "inventory = {inventory:?}\nroles_dir = {roles:?}\n[cluster]\nname = \"moved\"\nstate_dir = {state:?}\n[spark]\n{src}registration_timeout_secs = 120\n",
        state = lab.path().join("state"),
        src = lab.spark_source_lines(),
    );
    let path = lab.path().join(name);
    std::fs::write(&path, body).expect("write config");
    path
}

fn run(cfg: &Path, args: &[&str]) -> (Value, i32, String) {
    let mut all = vec![args[0], "--config", cfg.to_str().expect("utf-8"), "--json"];
    all.extend_from_slice(&args[1..]);
    let out = sparkboot(&all);
    (json(&out), out.status.code().unwrap_or(-1), text(&out))
}

fn sh(cfg: &Path, host: &str, script: &str) -> String {
    let out = sparkboot([
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

#[test]
fn an_overridden_layout_moves_converge_status_harden_and_scale_in_together() {
    let lab = Lab::up_with_spark(162, 2);
    let roles = moved_roles(lab.path());
    let cfg = write_config(&lab, "sparkboot.toml", &lab.inventory(), &roles);

    let (doc, code, out) = run(&cfg, &["converge"]);
    assert_eq!(code, 0, "converge with the moved layout:\n{out}");
    assert_eq!(doc["summary"]["failed"], 0);
    let where_ = sh(
        &cfg,
        "lab-worker-1",
        &format!(
            "readlink {HOME}; ls {PID_DIR}; ls -d /opt/spark 2>/dev/null || echo no-opt-spark"
        ),
    );
    assert!(
        where_.contains(&format!("{INSTALL_ROOT}/spark-{SPARK_VERSION}-bin-hadoop3"))
            && where_.contains("Worker-1.pid")
            && where_.contains("no-opt-spark"),
        "{where_}"
    );

    // status reads the same layout: versions, daemons and registration.
    let (st, code, out) = run(&cfg, &["status"]);
    assert_eq!(code, 0, "status:\n{out}");
    assert_eq!(st["healthy"], true, "{st:#}");
    for n in st["nodes"].as_array().expect("nodes") {
        assert_eq!(n["daemon_running"], true, "{n}");
        assert_eq!(
            n["spark_version"],
            format!("spark-{SPARK_VERSION}-bin-hadoop3"),
            "{n}"
        );
    }

    // harden's rules follow it: a loosened conf file at the moved path fails spark-file-perms.
    sh(
        &cfg,
        "lab-worker-1",
        &format!("chmod 0644 {HOME}/conf/spark-defaults.conf"),
    );
    let (h, code, out) = run(&cfg, &["harden", "--check", "--limit", "lab-worker-1"]);
    assert_eq!(code, 3, "harden --check:\n{out}");
    let perms = h["hosts"][0]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == "spark-file-perms"))
        .expect("spark-file-perms")
        .clone();
    assert_eq!(perms["status"], "fail", "{perms:#}");
    assert!(
        perms["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{HOME}/conf/spark-defaults.conf")),
        "{perms:#}"
    );
    let (_, code, out) = run(&cfg, &["converge", "--limit", "lab-worker-1"]);
    assert_eq!(code, 0, "converge puts the mode back:\n{out}");

    // Scale-in: worker-2 leaves the inventory; its daemon is stopped through the moved layout.
    let owned = lab.path().join("inventory-1.toml");
    let text = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let mut inv: toml::Table = toml::from_str(&text).expect("toml");
    if let Some(toml::Value::Array(w)) = inv.get_mut("workers") {
        w.retain(|x| x.get("name").and_then(|n| n.as_str()) != Some("lab-worker-2"));
    }
    std::fs::write(&owned, toml::to_string(&inv).expect("toml")).expect("write");
    let shrunk = write_config(&lab, "shrunk.toml", &owned, &roles);
    let w2 = lab.address("lab-worker-2");
    let (doc, code, out) = run(&shrunk, &["converge"]);
    assert_eq!(code, 0, "{out}");
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains(&format!("stopped the worker daemon on {w2}")),
        "{notes}"
    );
    let left = sh(
        &cfg,
        "lab-worker-2",
        // The JVM takes a moment to exit after spark-daemon.sh signals it.
        &format!("ls {PID_DIR}; for i in $(seq 60); do pgrep -f '[o]rg.apache.spark.deploy.worker.Worker' >/dev/null || {{ echo no-worker; break; }}; sleep 0.5; done"),
    );
    assert!(left.contains("no-worker"), "{left}");
}
