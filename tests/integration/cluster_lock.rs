//! Two runs against one cluster: the one that changes things holds the cluster lock on the
//! master; a second run refuses with one sentence naming the holder, or with `--wait` waits,
//! probes again and does only what is left (nothing, here); a holder killed with SIGKILL never
//! blocks the next run; and a no-op run takes no lock at all (still one command per host).
//!
//! The fixture role `demo` plus a role whose one step takes 10 s, so a run is reliably in
//! progress while the second one starts. Plain nodes (lab 127.164.0.0/16) and systemd nodes
//! (127.192.0.0/16).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const SLOW: &str = r#"description = "A step that takes a while, to overlap two runs"

[[step]]
name = "Take a while"
command = { run = "sleep 10; date > /opt/slow-stamp", creates = "/opt/slow-stamp" }
"#;

fn roles(lab: &Lab) -> PathBuf {
    let dir = lab.path().join("roles");
    std::fs::create_dir_all(dir.join("slow")).expect("mkdir");
    std::fs::create_dir_all(dir.join("demo")).expect("mkdir");
    std::fs::copy(
        fixtures().join("roles/demo/role.toml"),
        dir.join("demo/role.toml"),
    )
    .expect("copy demo");
    std::fs::write(dir.join("slow/role.toml"), SLOW).expect("write slow");
    dir
}

fn config(lab: &Lab) -> PathBuf {
    let body = format!(
        "roles_dir = {:?}\ntemplates_dir = {:?}\nroles = [\"demo\", \"slow\"]\n[vars]\ndemo_secret = \"lock-secret-0123456789\"\n[cluster]\nstate_dir = {:?}\n",
        roles(lab),
        fixtures().join("templates"),
        lab.path().join("state"),
    );
    let path = lab.path().join("sparkboot.toml");
    std::fs::write(&path, body).expect("write config");
    path
}

fn start(lab: &Lab, cfg: &Path, extra: &[&str]) -> Child {
    let mut args = vec![
        "converge".to_string(),
        "--config".into(),
        cfg.display().to_string(),
        "--inventory".into(),
        lab.inventory().display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start converge")
}

/// Root's view of the lock's holder file on the master (empty when there is none).
fn holder(lab: &Lab, cfg: &Path) -> String {
    let script = "cat /var/lib/sparkboot/holder 2>/dev/null; true";
    let out = lab.run(
        "exec",
        cfg,
        &[
            "--limit",
            "lab-master",
            "--sudo",
            "--json",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    exec_stdout(&out, "lab-master", script)
}

/// Waits until the run with controller pid `pid` holds the lock.
fn wait_for_holder(lab: &Lab, cfg: &Path, pid: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = holder(lab, cfg);
        if h.contains(&format!("pid={pid}\n")) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "run {pid} never took the lock: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().expect("wait for converge")
}

fn total_changed(out: &std::process::Output) -> u64 {
    counts(&json(out)).iter().map(|c| c.2).sum()
}

#[test]
fn a_second_run_waits_or_refuses_and_a_dead_holder_never_blocks() {
    two_runs(Flavour::Plain, 164);
}

#[test]
fn systemd_second_run_waits_or_refuses_and_a_dead_holder_never_blocks() {
    two_runs(Flavour::Systemd, 192);
}

fn two_runs(flavour: Flavour, slot: u8) {
    let lab = Lab::up_as(flavour, slot, 2, false);
    let cfg = config(&lab);

    // 1. A second run while the first holds the lock: one sentence naming the holder, exit 6,
    //    and nothing changed by it.
    let first = start(&lab, &cfg, &[]);
    let pid = first.id();
    let h = wait_for_holder(&lab, &cfg, pid);
    assert!(h.contains("command=converge\n"), "{h}");
    let second = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(second.status.code(), Some(6), "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "the cluster is locked by sparkboot converge (pid {pid} on "
        )) && stderr.contains("pass --wait SECONDS"),
        "{stderr}"
    );
    let first = finish(first);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(total_changed(&first) > 0);
    let refused = second.status.code();

    // 2. With --wait the second run waits for the first, probes again, and finds nothing left
    //    to do (the daemons are not restarted, no step runs twice).
    lab.sh(
        &cfg,
        "lab-worker-1",
        "sudo rm -f /opt/slow-stamp || rm -f /opt/slow-stamp",
    );
    let pid_before = lab.sh(&cfg, "lab-worker-2", "cat /run/demo.pid");
    let third = start(&lab, &cfg, &[]);
    wait_for_holder(&lab, &cfg, third.id());
    let waited = Instant::now();
    let fourth = lab.run("converge", &cfg, &["--json", "--wait", "60"]);
    let waited = waited.elapsed();
    let third = finish(third);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert_eq!(fourth.status.code(), Some(0), "{}", text(&fourth));
    assert_eq!(total_changed(&third), 1, "{}", text(&third));
    assert_eq!(
        total_changed(&fourth),
        0,
        "the waiting run redid work:\n{}",
        text(&fourth)
    );
    assert!(
        waited > Duration::from_secs(3),
        "it did not wait: {waited:?}"
    );
    crate::reliability::record_on(flavour, crate::reliability::Row {
        id: "two-runs",
        fault: "two runs against one cluster at once",
        injected: "a second converge while the first holds the cluster lock",
        exit: refused,
        failed_host: "(the second run) refused at once, naming the first run's command, pid, host and start; changed nothing",
        rest: "the first run converged undisturbed",
        rerun: "with `--wait 60`: waited, probed again, changed 0 (no step ran twice, no daemon restarted)",
        took: waited,
    });
    assert_eq!(
        lab.sh(&cfg, "lab-worker-2", "cat /run/demo.pid"),
        pid_before
    );

    // 3. A holder killed with SIGKILL mid-run: its session dies, its lock with it, and the next
    //    run (no --wait) takes over and finishes the work.
    lab.sh(
        &cfg,
        "lab-worker-2",
        "sudo rm -f /opt/slow-stamp || rm -f /opt/slow-stamp",
    );
    let mut killed = start(&lab, &cfg, &[]);
    wait_for_holder(&lab, &cfg, killed.id());
    killed.kill().expect("SIGKILL the holder");
    let _ = killed.wait();
    let next = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let stamp = lab.sh(&cfg, "lab-worker-2", "test -s /opt/slow-stamp && echo done");
    assert_eq!(stamp.trim(), "done");

    // 4. A no-op takes no lock: one command per host, the master included.
    let noop = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(noop.status.code(), Some(0), "{}", text(&noop));
    for h in json(&noop)["hosts"].as_array().expect("hosts") {
        assert_eq!(
            (&h["changed"], &h["commands"]),
            (&0.into(), &1.into()),
            "{h}"
        );
    }
    // Nothing of the lock's holders is left running on the master.
    let left = lab.sh(
        &cfg,
        "lab-master",
        "ps -eo args | grep -c '[/]proc/.*stat' || true",
    );
    assert_eq!(left.trim(), "0", "a lock holder outlived its run");
}
