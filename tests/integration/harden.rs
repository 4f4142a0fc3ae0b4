//! `sparkboot harden` on a real lab (1 master, 1 worker, real sshd, real Spark): nodes are first
//! put into the state an image's user-data leaves (a shared key pair authorized on the node,
//! password login on, Spark without authentication and with the REST server on, loose modes);
//! then `--check` must list it all, `harden` must fix it without locking anyone out, a real job
//! must still run while a client without the secret is refused, nothing may flip-flop with
//! converge, and a drop-in that locks the login out must be rolled back. One test, because each
//! step builds on the cluster the last one left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::common::*;

const SEED_IDS: [&str; 12] = [
    "ssh-password-auth",
    "ssh-forwarding",
    "ssh-max-auth-tries",
    "ssh-client-alive",
    "ssh-seed-keys",
    "ssh-file-perms",
    "spark-file-perms",
    "spark-auth",
    "spark-rpc-encryption",
    "spark-io-encryption",
    "spark-rest-server",
    "spark-ui-kill",
];

/// What user-data leaves on every node: a key pair whose public half is authorized (for
/// ec2-user and, to prove the operator's own line survives the rewrite, for root, the user
/// sparkboot logs in as), password login through an image drop-in that sorts after ours, and a
/// loose authorized_keys mode.
const SEED_NODE: &str = r#"set -e
h=/home/ec2-user/.ssh
ssh-keygen -q -t rsa -b 2048 -N '' -C seed@user-data -f $h/id_rsa
chown ec2-user:ec2-user $h/id_rsa $h/id_rsa.pub
cat $h/id_rsa.pub >> $h/authorized_keys
cat $h/id_rsa.pub >> /root/.ssh/authorized_keys
chmod 0644 $h/authorized_keys
sed -i '/^PasswordAuthentication/d;/^KbdInteractiveAuthentication/d' /etc/ssh/sshd_config.d/00-lab.conf
printf 'PasswordAuthentication yes\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf
kill -HUP "$(cat /run/sshd.pid)"
printf 'spark.master spark://%s:7077\nspark.master.rest.enabled true\n' "$MASTER" > /opt/spark/conf/spark-defaults.conf
chmod 0644 /opt/spark/conf/spark-defaults.conf
"#;

const MASTER_CLASS: &str = "org.apache.spark.deploy.master.Master";
const WORKER_CLASS: &str = "org.apache.spark.deploy.worker.Worker";

struct Fixture {
    lab: Lab,
    cfg: PathBuf,
    master: String,
    worker: String,
}

impl Fixture {
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let body = format!(
            "inventory = {inv:?}\n[cluster]\nname = \"harden\"\nstate_dir = {state:?}\n[spark]\n{src}registration_timeout_secs = 120\n{extra}",
            inv = self.lab.inventory(),
            state = self.lab.path().join("state"),
            src = self.lab.spark_source_lines(),
        );
        let path = self.lab.path().join(name);
        std::fs::write(&path, body).expect("write config");
        path
    }

    fn sparkboot(&self, cfg: &Path, cmd: &str, args: &[&str]) -> (Value, i32, String) {
        let mut all = vec![cmd, "--config", cfg.to_str().expect("utf-8"), "--json"];
        all.extend_from_slice(args);
        let out = sparkboot(&all);
        (json(&out), out.status.code().unwrap_or(-1), text(&out))
    }

    fn sh(&self, host: &str, script: &str) -> String {
        let out = sparkboot([
            "exec",
            "--config",
            self.cfg.to_str().expect("utf-8"),
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

    /// The system OpenSSH client with the lab key, as an operator would log in.
    fn ssh(&self, user: &str, address: &str, extra: &[&str]) -> std::process::Output {
        let key = self.lab.lab_dir().join("id_ed25519");
        Command::new("ssh")
            .args(["-i", key.to_str().expect("utf-8")])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .args(["-o", "ConnectTimeout=10"])
            .args(extra)
            .arg(format!("{user}@{address}"))
            .arg("true")
            .output()
            .expect("run ssh")
    }

    fn restart(&self, host: &str, class: &str, args: &str) {
        self.sh(
            host,
            &format!(
                "cd /; d=/opt/spark/sbin/spark-daemon.sh; runuser -u spark -- $d stop {class} 1; runuser -u spark -- $d start {class} 1 {args} </dev/null >/dev/null 2>&1"
            ),
        );
    }

    fn pids(&self) -> (String, String) {
        let pid = "cat /var/lib/spark/run/*.pid";
        (self.sh("lab-master", pid), self.sh("lab-worker-1", pid))
    }

    /// The HTTP status of the master's REST port (`000`: nothing listens). A daemon just
    /// started may need a few seconds, so with `wait_up` it polls until something answers.
    fn rest_status(&self, wait_up: bool) -> String {
        let m = &self.master;
        let tries = if wait_up { 60 } else { 1 };
        self.sh(
            "lab-master",
            &format!(
                "i=0; while :; do c=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://{m}:6066/); \
                 i=$((i+1)); if [ \"$c\" != 000 ] || [ $i -ge {tries} ]; then echo \"$c\"; break; fi; sleep 0.5; done"
            ),
        )
        .trim()
        .to_string()
    }
}

/// `host -> id -> (status, detail)` from a harden report.
fn statuses(doc: &Value) -> BTreeMap<String, BTreeMap<String, (String, String)>> {
    let mut out = BTreeMap::new();
    for h in doc["hosts"].as_array().expect("hosts") {
        let mut m = BTreeMap::new();
        for f in h["findings"].as_array().expect("findings") {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            m.insert(s("id"), (s("status"), s("detail")));
        }
        out.insert(h["name"].as_str().unwrap_or_default().to_string(), m);
    }
    out
}

fn changed(doc: &Value) -> BTreeMap<String, u64> {
    counts(doc)
        .into_iter()
        .map(|(n, _, c, _, _)| (n, c))
        .collect()
}

#[test]
fn harden_fixes_a_seeded_cluster_and_never_locks_the_operator_out() {
    let t0 = Instant::now();
    let lab = Lab::up_with_spark(140, 1);
    let (master, worker) = (lab.address("lab-master"), lab.address("lab-worker-1"));
    let mut fx = Fixture {
        lab,
        cfg: PathBuf::new(),
        master,
        worker,
    };
    fx.cfg = fx.config("sparkboot.toml", "");
    let cfg = fx.cfg.clone();
    let (doc, code, out) = fx.sparkboot(&cfg, "converge", &[]);
    assert_eq!(code, 0, "first converge: {out}");
    let cluster_key = fx.sh("lab-master", "cat /var/lib/spark/.ssh/id_ed25519.pub");
    assert!(doc["summary"]["changed"].as_u64() > Some(0));

    // 1. The seed state, with the daemons restarted on the unauthenticated config.
    for host in ["lab-master", "lab-worker-1"] {
        fx.sh(host, &format!("MASTER={}\n{SEED_NODE}", fx.master));
    }
    let m = fx.master.clone();
    fx.restart(
        "lab-master",
        MASTER_CLASS,
        &format!("--host {m} --port 7077 --webui-port 8080"),
    );
    fx.restart(
        "lab-worker-1",
        WORKER_CLASS,
        &format!("--webui-port 8081 spark://{m}:7077"),
    );
    assert_ne!(
        fx.rest_status(true),
        "000",
        "the seeded master serves REST on 6066"
    );

    // 2. --check lists every seeded finding and exits 3, changing nothing.
    let (doc, code, out) = fx.sparkboot(&cfg, "harden", &["--check"]);
    assert_eq!(code, 3, "{out}");
    for (host, found) in statuses(&doc) {
        for id in SEED_IDS {
            assert_eq!(found[id].0, "fail", "{host} {id}: {out}");
        }
        assert_eq!(
            found["imds-v2"].0, "not-applicable",
            "{host}: a lab node is not EC2"
        );
        assert!(
            found["ssh-seed-keys"]
                .1
                .contains("/home/ec2-user/.ssh/id_rsa"),
            "{out}"
        );
        assert!(found["ssh-password-auth"]
            .1
            .contains("passwordauthentication is yes"));
    }
    assert_eq!(doc["summary"]["changed"], 0);

    // 3. harden fixes everything; the re-audit says so.
    let (doc, code, out) = fx.sparkboot(&cfg, "harden", &[]);
    assert_eq!(code, 0, "{out}");
    for (host, found) in statuses(&doc) {
        for id in SEED_IDS {
            assert_eq!(found[id].0, "fixed", "{host} {id}: {out}");
        }
        assert!(found.values().all(|(s, _)| s != "fail"), "{host}: {out}");
    }
    assert!(doc["summary"]["changed"].as_u64() > Some(0));
    let (doc, code, out) = fx.sparkboot(&cfg, "harden", &["--check"]);
    assert_eq!(
        (code, doc["summary"]["fail"].as_u64()),
        (0, Some(0)),
        "{out}"
    );

    // 4. The operator still logs in with the system client (root, whose authorized_keys was
    //    rewritten, and ec2-user), the seed key is gone everywhere, password login is refused.
    let lab_key = std::fs::read_to_string(fx.lab.lab_dir().join("id_ed25519.pub")).expect("key");
    for address in [fx.master.clone(), fx.worker.clone()] {
        for user in ["root", "ec2-user"] {
            let o = fx.ssh(user, &address, &[]);
            assert!(
                o.status.success(),
                "{user}@{address}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let o = fx.ssh(
            "ec2-user",
            &address,
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("(publickey)"),
            "password login: {err}"
        );
    }
    for host in ["lab-master", "lab-worker-1"] {
        let keys = fx.sh(host, "cat /home/ec2-user/.ssh/authorized_keys; echo ==; cat /root/.ssh/authorized_keys; ls /home/ec2-user/.ssh");
        assert!(
            !keys.contains("seed@user-data") && !keys.contains("id_rsa"),
            "{host}: {keys}"
        );
        assert_eq!(
            keys.matches(lab_key.trim()).count(),
            2,
            "{host}: the operator key stays: {keys}"
        );
    }
    let rotated = fx.sh("lab-master", "cat /var/lib/spark/.ssh/id_ed25519.pub");
    assert_ne!(rotated, cluster_key, "the cluster key was rotated");
    let authorized = fx.sh("lab-worker-1", "cat /var/lib/spark/.ssh/authorized_keys");
    assert!(
        authorized.contains(rotated.split_whitespace().nth(1).expect("blob")),
        "{authorized}"
    );

    // 5. A real job runs with the secret; a client without it is refused; REST is off.
    let sql = format!("/opt/spark/bin/spark-sql --master spark://{m}:7077 -e 'SELECT sum(id) FROM range(10000000)' 2>/dev/null");
    assert_eq!(fx.sh("lab-master", &sql).trim(), "49999995000000");
    assert_refused(&fx.sh("lab-master", &no_secret_client_script(&m)));
    assert_eq!(fx.rest_status(false), "000", "the REST server is off");

    // 6. No flip-flop: converge and a second harden change nothing and restart nothing.
    let pids = fx.pids();
    let (doc, code, out) = fx.sparkboot(&cfg, "converge", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        changed(&doc).values().all(|n| *n == 0),
        "converge after harden: {out}"
    );
    let (doc, code, out) = fx.sparkboot(&cfg, "harden", &[]);
    assert_eq!(
        (code, doc["summary"]["changed"].as_u64()),
        (0, Some(0)),
        "{out}"
    );
    assert_eq!(doc["summary"]["fixed"], 0, "{out}");
    assert_eq!(fx.pids(), pids, "nothing restarted a daemon");

    // 7. A drop-in that passes `sshd -t` but locks the login out is rolled back: on the master
    //    there was no drop-in before (it is removed again), on the worker an older one (it is
    //    put back as it was). Both nodes stay reachable and are reported failed.
    let d = "/etc/ssh/sshd_config.d/10-sparkboot-harden.conf";
    let older = "# an older drop-in\nX11Forwarding yes\n";
    let hup = "kill -HUP \"$(cat /run/sshd.pid)\"; sleep 1";
    fx.sh("lab-master", &format!("rm {d}; {hup}"));
    fx.sh("lab-worker-1", &format!("printf '{older}' > {d}; {hup}"));
    let lockout = fx.config(
        "lockout.toml",
        "[harden]\nsshd_extra = [\"AllowUsers nobody\"]\n",
    );
    let (doc, code, out) = fx.sparkboot(&lockout, "harden", &[]);
    assert_eq!(code, 2, "{out}");
    for host in doc["hosts"].as_array().expect("hosts") {
        assert_eq!(
            (host["failed"].as_bool(), host["reachable"].as_bool()),
            (Some(true), Some(true)),
            "{out}"
        );
        let error = host["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("fresh login failed") && error.contains("works again"),
            "{out}"
        );
    }
    for (name, address) in [("lab-master", &fx.master), ("lab-worker-1", &fx.worker)] {
        let o = fx.ssh("root", address, &[]);
        assert!(
            o.status.success(),
            "{name} is still reachable: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let state = fx.sh(
            name,
            &format!("ls /etc/ssh/sshd_config.d; cat {d} 2>/dev/null; sshd -T | grep -E '^(passwordauthentication|allowusers|x11forwarding)'"),
        );
        assert!(
            state.contains("passwordauthentication yes") && !state.contains("allowusers"),
            "{name}: the old config is back: {state}"
        );
        assert!(!state.contains("sparkboot-prev"), "{name}: {state}");
        if name == "lab-master" {
            assert!(!state.contains("10-sparkboot-harden"), "{name}: {state}");
        } else {
            assert!(
                state.contains(older) && state.contains("x11forwarding yes"),
                "{name}: the older drop-in is back as it was: {state}"
            );
        }
    }
    eprintln!("harden end-to-end took {:.1}s", t0.elapsed().as_secs_f64());
}
