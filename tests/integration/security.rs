//! Root never acts through what a job controls, host keys fail closed, and sparkboot logs in
//! only where the inventory (or its own known_hosts) says. Each case plants what an attacker
//! would and checks the end state on real lab nodes, not only the exit code.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// Every file under these trees outside the spark home, with owner, mode and content hash:
/// what a root escalation would change.
/// harden's own sshd drop-in (and its backup) is the one expected change under /etc.
const SNAPSHOT: &str = r#"cd / && find /etc /root /home /opt /var/lib /usr/local -xdev \( -path /var/lib/spark -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /etc/ssh/sshd_config.d \) -prune -o \( -type f -o -type d -o -type l \) -printf '%p %u:%g %m %l\n' 2>/dev/null | sort; find /etc /root /opt/spark/conf -xdev -path /etc/ssh/sshd_config.d -prune -o -type f -exec sha256sum {} + 2>/dev/null | sort"#;

struct Case {
    lab: Lab,
    /// master + worker-1 only: lab-worker-2 plays a host that is not the operator's.
    inventory: PathBuf,
}

impl Case {
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let state = self.lab.path().join("state");
        self.config_in(
            &self.lab.path().join(name),
            state.to_str().expect("utf-8"),
            &self.inventory,
            extra,
        )
    }

    /// A config at `path`; a relative `state` is relative to the config file.
    fn config_in(&self, path: &Path, state: &str, inventory: &Path, extra: &str) -> PathBuf {
        let body = format!(
            "inventory = {inv:?}\n[cluster]\nname = \"sec\"\nstate_dir = {state:?}\n[spark]\n{src}registration_timeout_secs = 120\n{extra}",
            inv = inventory,
            src = self.lab.spark_source_lines(),
        );
        std::fs::write(path, body).expect("write config");
        path.to_path_buf()
    }

    fn run(&self, cfg: &Path, args: &[&str]) -> (Value, i32, String) {
        let mut all = vec![args[0], "--config", cfg.to_str().expect("utf-8"), "--json"];
        all.extend_from_slice(&args[1..]);
        let out = sparkboot(&all);
        (json(&out), out.status.code().unwrap_or(-1), text(&out))
    }

    fn sh(&self, cfg: &Path, host: &str, script: &str) -> String {
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

    /// Runs `script` on `host` as the spark user, as a Spark job would.
    fn as_spark(&self, cfg: &Path, host: &str, script: &str) -> String {
        self.sh(
            cfg,
            host,
            &format!("cd / && runuser -u spark -- sh -c {}", shell_word(script)),
        )
    }
}

/// Fails with only the lines that differ (the snapshots are long).
fn assert_same(before: &str, after: &str, what: &str) {
    let a: std::collections::BTreeSet<&str> = before.lines().collect();
    let b: std::collections::BTreeSet<&str> = after.lines().collect();
    let gone: Vec<&&str> = a.difference(&b).collect();
    let new: Vec<&&str> = b.difference(&a).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "{what}: files outside the home changed\nbefore: {gone:#?}\nafter: {new:#?}"
    );
}

fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The lab's inventory without `drop`: a node the operator does not own.
fn inventory_without(lab: &Lab, drop: &str, to: &Path) {
    let text = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let mut doc: toml::Table = toml::from_str(&text).expect("toml");
    if let Some(toml::Value::Array(workers)) = doc.get_mut("workers") {
        workers.retain(|w| w.get("name").and_then(|n| n.as_str()) != Some(drop));
    }
    std::fs::write(to, toml::to_string(&doc).expect("toml")).expect("write inventory");
}

/// Accepts and counts every TCP connection to `address:22` until dropped.
struct Tripwire {
    hits: Arc<AtomicUsize>,
}

impl Tripwire {
    fn bind(address: &str) -> Tripwire {
        let listener = TcpListener::bind((address, 22)).expect("bind the tripwire");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut c) = conn {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = c.read(&mut [0u8; 64]);
                }
            }
        });
        Tripwire { hits }
    }
}

#[test]
fn a_job_cannot_turn_converge_or_harden_into_root_and_fake_workers_are_never_contacted() {
    let lab = Lab::up_with_spark(160, 2);
    let inventory = lab.path().join("inventory-owned.toml");
    inventory_without(&lab, "lab-worker-2", &inventory);
    let case = Case { lab, inventory };
    let cfg = case.config("sparkboot.toml", "");
    let (first, code, out) = case.run(&cfg, &["converge"]);
    assert_eq!(code, 0, "first converge:\n{out}");
    assert_eq!(first["summary"]["hosts"], 2, "{first:#}");

    // The daemons' files are root's, readable by the spark group, so a job cannot edit them.
    let modes = case.sh(
        &cfg,
        "lab-worker-1",
        "stat -c '%U:%G %a %n' /opt/spark/conf/spark-env.sh /opt/spark/conf/spark-defaults.conf",
    );
    assert_eq!(
        modes.trim(),
        "root:spark 640 /opt/spark/conf/spark-env.sh\nroot:spark 640 /opt/spark/conf/spark-defaults.conf"
    );
    let denied = case.as_spark(
        &cfg,
        "lab-worker-1",
        "echo x >> /opt/spark/conf/spark-env.sh 2>/dev/null && echo wrote || echo denied",
    );
    assert_eq!(denied.trim(), "denied");

    // 1. A worker registered by someone holding the secret, at an address the operator never
    //    configured (lab-worker-2, converged with a copy of the secret and its own state), is
    //    never logged in to: not even a TCP connection.
    let attacker_state = case.lab.path().join("attacker-state");
    let full = case.config_in(
        &case.lab.path().join("attacker.toml"),
        attacker_state.to_str().expect("utf-8"),
        &case.lab.inventory(),
        "",
    );
    let secret_dir = case.lab.path().join("attacker-state/sec");
    std::fs::create_dir_all(&secret_dir).expect("mkdir");
    std::fs::copy(
        case.lab.path().join("state/sec/spark-auth-secret"),
        secret_dir.join("spark-auth-secret"),
    )
    .expect("copy the secret");
    let (_, code, out) = case.run(&full, &["converge", "--limit", "lab-worker-2"]);
    assert_eq!(code, 0, "the fake worker's converge:\n{out}");
    let fake = case.lab.address("lab-worker-2");
    let master = case.lab.address("lab-master");
    let registered = case.sh(
        &cfg,
        "lab-master",
        &format!("for i in $(seq 120); do curl -fsS http://{master}:8080/json/ | grep -q '\"host\" : \"{fake}\"' && echo yes && break; sleep 0.5; done"),
    );
    assert_eq!(
        registered.trim(),
        "yes",
        "the fake worker registered with the master"
    );
    assert!(case.lab.lab(&["stop", "lab-worker-2"]).status.success());
    let tripwire = Tripwire::bind(&fake);
    let (doc, code, out) = case.run(&cfg, &["converge"]);
    assert_eq!(code, 0, "{out}");
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains(&fake) && notes.contains("not connecting"),
        "the fake worker is reported, not contacted: {notes}"
    );
    assert_eq!(
        tripwire.hits.load(Ordering::SeqCst),
        0,
        "sparkboot connected to {fake}, which is not in the inventory"
    );

    // 2. Links planted by the spark user in its own home, and a deleted key line that forces
    //    the authorized_keys rewrite. A decoy directory and file stand for /etc.
    let w = "lab-worker-1";
    case.sh(
        &cfg,
        w,
        "mkdir -p /etc/decoy && echo original > /etc/decoy/authorized_keys && chmod 0644 /etc/decoy/authorized_keys && rm -f /etc/ld.so.preload",
    );
    let before = case.sh(&cfg, w, SNAPSHOT);
    case.as_spark(
        &cfg,
        w,
        "cd ~/.ssh && sed -i /sparkboot-cluster/d authorized_keys && ln -s /etc/ld.so.preload authorized_keys.sparkboot-tmp && ln -s /etc/decoy/authorized_keys authorized_keys.sparkboot-prev",
    );
    let (doc, code, out) = case.run(&cfg, &["converge"]);
    assert_eq!(
        code, 0,
        "a planted temporary name is removed, not followed:\n{out}"
    );
    let host = doc["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == w))
        .expect("worker in report");
    assert_eq!(host["changed"], 1, "the key line was restored: {host:#}");
    assert!(case
        .as_spark(&cfg, w, "cat ~/.ssh/authorized_keys")
        .contains("sparkboot-cluster"));
    assert_same(&before, &case.sh(&cfg, w, SNAPSHOT), "after converge");

    // ~/.ssh itself replaced by a link to a root-owned directory: refused with a clear message.
    case.as_spark(&cfg, w, "mv ~/.ssh ~/.ssh.moved && ln -s /etc/decoy ~/.ssh");
    let (doc, code, out) = case.run(&cfg, &["converge"]);
    assert_eq!(code, 2, "{out}");
    let err = doc["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == w))
        .and_then(|h| h["error"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_same(
        &before,
        &case.sh(&cfg, w, SNAPSHOT),
        "after the ~/.ssh link",
    );

    // 3. harden: a seed key in the spark home (its private half next to its authorized line)
    //    is removed by the spark user's own hand; planted backup and temporary names are
    //    removed, not followed.
    case.as_spark(
        &cfg,
        w,
        "rm ~/.ssh && mv ~/.ssh.moved ~/.ssh && cd ~/.ssh && ssh-keygen -q -t ed25519 -N '' -C seed -f id_seed && cat id_seed.pub >> authorized_keys && ln -sfn /etc/ld.so.preload authorized_keys.sparkboot-tmp && ln -sfn /etc/decoy/authorized_keys authorized_keys.sparkboot-prev",
    );
    let (doc, code, out) = case.run(&cfg, &["harden", "--limit", w]);
    assert!(code == 0 || code == 3, "harden:\n{out}");
    let seed = doc["hosts"][0]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == "ssh-seed-keys"))
        .expect("seed finding")
        .clone();
    assert_eq!(seed["status"], "fixed", "{seed:#}");
    let left = case.as_spark(
        &cfg,
        w,
        "ls -A ~/.ssh; grep -c seed ~/.ssh/authorized_keys || true",
    );
    assert!(!left.contains("id_seed"), "{left}");
    assert_same(&before, &case.sh(&cfg, w, SNAPSHOT), "after harden");

    // 4. From another directory, the same --config finds the same known_hosts and secret.
    let secret =
        std::fs::read(case.lab.path().join("state/sec/spark-auth-secret")).expect("secret");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let relative = case.config_in(
        &case.lab.path().join("relative.toml"),
        "state",
        &case.inventory,
        "",
    );
    let out = Command::new(BIN)
        .current_dir(elsewhere.path())
        .args([
            "converge",
            "--config",
            relative.to_str().expect("utf-8"),
            "--json",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("new known_hosts") && !stderr.contains("new Spark secret"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(elsewhere.path())
            .expect("ls")
            .next()
            .is_none(),
        "nothing is created in the working directory"
    );
    assert_eq!(
        std::fs::read(case.lab.path().join("state/sec/spark-auth-secret")).expect("secret"),
        secret
    );
    assert!(json(&out)["summary"]["changed"] == 0, "{}", text(&out));
}

fn converge_json(lab: &Lab, cfg: &Path) -> (Value, Option<i32>, String) {
    let out = lab.run("converge", cfg, &["--json"]);
    (json(&out), out.status.code(), text(&out))
}

fn error_of(doc: &Value, host: &str) -> String {
    doc["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == host))
        .and_then(|h| h["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn known_hosts_that_cannot_be_read_or_that_refuse_a_key_fail_closed() {
    let lab = Lab::up(161, 2);
    let cfg = lab.config(
        "kh.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    let known = lab.path().join("state/sparkboot/known_hosts");
    let (_, code, out) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(0), "{out}");
    let mode = std::fs::metadata(&known).expect("known_hosts");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    let pinned = std::fs::read_to_string(&known).expect("read");
    let w1 = lab.address("lab-worker-1");
    // The key libssh2 negotiated and sparkboot pinned for worker-1 (`type base64`).
    let key = pinned
        .lines()
        .find(|l| l.starts_with(&format!("{w1} ")))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .expect("worker-1 pinned");

    // A line that is not UTF-8: every host is refused (the file cannot be trusted), naming the
    // file and the line.
    let mut bytes = pinned.clone().into_bytes();
    bytes.extend_from_slice(b"127.9.9.9 ssh-ed25519 \xff\xfe\n");
    std::fs::write(&known, &bytes).expect("write");
    let (doc, code, out) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(2), "{out}");
    let line = pinned.lines().count() + 1;
    for h in ["lab-master", "lab-worker-1", "lab-worker-2"] {
        let e = error_of(&doc, h);
        assert!(
            e.contains(&known.display().to_string()) && e.contains(&format!("line {line}")),
            "{h}: {e}"
        );
    }

    // A hashed entry (written by OpenSSH's own ssh-keygen -H) pins another key for worker-1.
    let other = lab.path().join("other");
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .expect("ssh-keygen");
    assert!(gen.status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let without_w1: String = pinned
        .lines()
        .filter(|l| !l.starts_with(&format!("{w1} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &known,
        format!("{w1} {}\n{without_w1}", other_key.join(" ")),
    )
    .expect("write");
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known)
        .output()
        .expect("ssh-keygen -H");
    assert!(
        hashed.status.success(),
        "{}",
        String::from_utf8_lossy(&hashed.stderr)
    );
    let text_now = std::fs::read_to_string(&known).expect("read");
    assert!(text_now.starts_with("|1|"), "{text_now}");
    let (doc, code, out) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(2), "{out}");
    let e = error_of(&doc, "lab-worker-1");
    assert!(
        e.contains("HOST KEY CHANGED") && e.contains("line 1"),
        "{e}"
    );
    assert!(
        error_of(&doc, "lab-master").is_empty(),
        "only worker-1 fails: {doc:#}"
    );

    // An @revoked line holding worker-1's real key.
    std::fs::write(&known, format!("{pinned}@revoked * {key}\n")).expect("write");
    let (doc, code, out) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(2), "{out}");
    let e = error_of(&doc, "lab-worker-1");
    let revoked_line = pinned.lines().count() + 1;
    assert!(
        e.contains("REVOKED") && e.contains(&format!("line {revoked_line}")),
        "{e}"
    );
    assert!(error_of(&doc, "lab-worker-2").is_empty(), "{doc:#}");

    // An @cert-authority line for a host with no pinned key of its own.
    std::fs::write(
        &known,
        format!("{without_w1}@cert-authority {w1} {}\n", other_key.join(" ")),
    )
    .expect("write");
    let (doc, code, _) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(2));
    assert!(
        error_of(&doc, "lab-worker-1").contains("certificate authority"),
        "{doc:#}"
    );

    // An unreadable file (a directory in its place) is an error, not an empty file.
    std::fs::remove_file(&known).expect("rm");
    std::fs::create_dir(&known).expect("mkdir");
    let (_, code, out) = converge_json(&lab, &cfg);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("cannot use known_hosts"), "{out}");
    std::fs::remove_dir(&known).expect("rmdir");
}

fn refused(config_body: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = dir.path().join("inventory.toml");
    // Never contacted: the config is refused first.
    std::fs::write(&inv, "[master]\nname = \"m\"\naddress = \"127.161.9.9\"\n").expect("write");
    let cfg = dir.path().join("sparkboot.toml");
    std::fs::write(
        &cfg,
        format!("inventory = \"inventory.toml\"\n{config_body}"),
    )
    .expect("write");
    let out: Output = sparkboot(["converge", "--config", cfg.to_str().expect("utf-8")]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn values_that_would_break_daemon_config_or_open_the_cluster_are_refused() {
    let pin = format!("sha512 = \"{}\"\n", "a".repeat(128));
    let (code, err) = refused(&format!(
        "[spark]\nsource = \"http://127.0.0.1:9/s.tgz\"\n{pin}[spark.defaults]\n\"spark.executor.extraJavaOptions\" = \"-Dx=1\\rspark.authenticate false\"\n"
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("spark.defaults") && err.contains("control character"),
        "{err}"
    );
    let (code, err) = refused(&format!(
        "[spark]\nsource = \"http://127.0.0.1:9/s.tgz\"\n{pin}[spark.defaults]\n\"spark.authenticate\" = false\n"
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("authenticate = false"), "{err}");
    let (code, err) = refused("[spark]\nsource = \"http://127.0.0.1:9/spark-{version}.tgz\"\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("spark.sha512") && err.contains("plain http"),
        "{err}"
    );
}
