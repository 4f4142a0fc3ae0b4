//! The converge engine against real lab nodes, with the fixture role `demo`.

use crate::common::*;

#[test]
fn first_run_changes_then_second_run_changes_nothing() {
    let lab = Lab::up(121, 2);
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    let first = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    for (name, _ok, changed, failed, unreachable) in counts(&json(&first)) {
        assert!(changed >= 5, "{name} should report its first changes");
        assert_eq!((failed, unreachable), (0, 0), "{name}");
    }
    let pid_before = lab.sh(&cfg, "lab-worker-1", "cat /run/demo.pid");
    let second = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    for (name, ok, changed, _, _) in counts(&json(&second)) {
        assert_eq!(
            changed,
            0,
            "{name} changed on a no-op run:\n{}",
            text(&second)
        );
        assert_eq!(ok, 5, "{name}");
    }
    for h in json(&second)["hosts"].as_array().expect("hosts") {
        assert_eq!(
            (&h["handshakes"], &h["commands"]),
            (&1.into(), &1.into()),
            "{h}"
        );
    }
    assert_eq!(
        lab.sh(&cfg, "lab-worker-1", "cat /run/demo.pid"),
        pid_before,
        "a no-op run must not restart the daemon"
    );
    let conf = lab.sh(&cfg, "lab-worker-2", "cat /opt/demo/demo.conf");
    assert!(conf.starts_with("# Managed by sparkboot"), "{conf}");
    assert!(
        conf.contains("host=lab-worker-2\n")
            && conf.contains("workers=lab-worker-1,lab-worker-2\n"),
        "{conf}"
    );
    assert_eq!(
        lab.sh(&cfg, "lab-master", "stat -c %a /opt/demo/secret")
            .trim(),
        "600"
    );
}

#[test]
fn a_config_change_restarts_the_daemon_once_and_check_mode_writes_nothing() {
    let lab = Lab::up(122, 1);
    let base = "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n";
    let cfg = lab.config("sparkboot.toml", base);
    assert!(lab.run("converge", &cfg, &[]).status.success());
    let snapshot = "find /opt/demo -type f | sort | xargs sha256sum; stat -c '%n %a %U %Y' /opt/demo/*; cat /run/demo.pid";
    let before = lab.sh(&cfg, "lab-worker-1", snapshot);

    let changed = lab.config("changed.toml", "roles = [\"demo\"]\n[vars]\ndemo_secret = \"second-secret-9876543210\"\ngreeting = \"hi\"\n");
    let check = lab.run("converge", &changed, &["--check", "--diff"]);
    assert_eq!(
        check.status.code(),
        Some(3),
        "--check with pending changes exits 3:\n{}",
        text(&check)
    );
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        shown.contains("+greeting=hi"),
        "the diff shows the change:\n{shown}"
    );
    assert!(
        !shown.contains("second-secret") && !shown.contains("first-secret"),
        "secrets never appear in --diff:\n{shown}"
    );
    assert_eq!(
        lab.sh(&cfg, "lab-worker-1", snapshot),
        before,
        "--check must leave files and daemons untouched"
    );

    let apply = lab.run("converge", &changed, &["--json"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let doc = json(&apply);
    let worker = doc["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == "lab-worker-1")
        .expect("worker")
        .clone();
    let restarts = worker["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == "Restart demo")
        .count();
    assert_eq!(
        restarts, 1,
        "the handler restarts the daemon exactly once: {worker}"
    );
    assert_ne!(
        lab.sh(&cfg, "lab-worker-1", "cat /run/demo.pid"),
        before.lines().last().unwrap_or_default().to_string() + "\n"
    );
    assert!(
        !String::from_utf8_lossy(&apply.stdout).contains("second-secret"),
        "secrets stay out of --json"
    );
}

#[test]
fn a_changed_host_key_fails_only_that_host() {
    changed_host_key(Flavour::Plain, 123);
}

#[test]
fn systemd_changed_host_key_fails_only_that_host() {
    changed_host_key(Flavour::Systemd, 191);
}

/// A node rebuilt at a known address (on systemd nodes: a new container from the image, as a
/// replaced instance that reuses a private IP).
fn changed_host_key(flavour: Flavour, slot: u8) {
    let lab = Lab::up_as(flavour, slot, 2, false);
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    assert!(lab.run("converge", &cfg, &[]).status.success());
    // Rebuild worker 2 at the same address: new node, new host keys.
    let inv = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let addr = inv
        .split("name = \"lab-worker-2\"")
        .nth(1)
        .and_then(|s| s.split('"').nth(1))
        .expect("worker-2 address")
        .to_string();
    assert!(lab.lab(&["remove", "lab-worker-2"]).status.success());
    let add = lab.lab(&["add", "--name", "lab-worker-2", "--address", &addr]);
    assert!(add.status.success(), "{}", text(&add));

    let started = std::time::Instant::now();
    let out = lab.run("converge", &cfg, &["--json"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let doc = json(&out);
    for h in doc["hosts"].as_array().expect("hosts") {
        if h["name"] == "lab-worker-2" {
            assert_eq!(h["failed"], 1, "{h}");
            let error = h["error"].as_str().unwrap_or_default();
            assert!(error.contains("HOST KEY CHANGED"), "{h}");
            assert_eq!(
                error.matches("SHA256:").count(),
                2,
                "both fingerprints: {error}"
            );
            assert_eq!(
                h["changed"], 0,
                "nothing may run on a host with a changed key"
            );
        } else {
            assert_eq!(
                (h["failed"].as_u64(), h["unreachable"].as_u64()),
                (Some(0), Some(0)),
                "{h}"
            );
        }
    }
    // The pinned key was not replaced behind the operator's back.
    let again = lab.run("converge", &cfg, &["--limit", "lab-worker-2"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("sparkboot known-hosts forget"),
        "the refusal names the command to run: {}",
        text(&again)
    );
    // The operator confirms the rebuild and forgets the old key: the next run records the new
    // one and converges the node; the other hosts' keys stay.
    let forget = lab.run("known-hosts", &cfg, &["forget", "lab-worker-2"]);
    assert_eq!(forget.status.code(), Some(0), "{}", text(&forget));
    assert!(text(&forget).contains(&addr), "{}", text(&forget));
    let healed = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(healed.status.code(), Some(0), "{}", text(&healed));
    let known = std::fs::read_to_string(lab.path().join("state/sparkboot/known_hosts"))
        .expect("known_hosts");
    assert_eq!(known.lines().count(), 3, "one line per host: {known}");
    crate::reliability::record_on(flavour, crate::reliability::Row {
        id: "host-key-changed",
        fault: "a node rebuilt at a known address",
        injected: "`lab remove` + `lab add` at the same address (new host keys)",
        exit: out.status.code(),
        failed_host: "failed, nothing run on it; the error shows both fingerprints and `sparkboot known-hosts forget HOST`",
        rest: "converged",
        rerun: "refused again until `known-hosts forget`; then recorded the new key and converged",
        took,
    });
    let nothing = lab.run("known-hosts", &cfg, &["forget", &format!("127.{slot}.9.9")]);
    assert_eq!(nothing.status.code(), Some(1), "{}", text(&nothing));
}

#[test]
fn a_sudo_user_converges_like_root() {
    let lab = Lab::up(125, 1);
    let inv = std::fs::read_to_string(lab.inventory()).expect("inventory");
    std::fs::write(
        lab.inventory(),
        inv.replace("user = \"root\"", "user = \"ec2-user\""),
    )
    .expect("rewrite inventory");
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    let first = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    for (name, _, changed, _, _) in counts(&json(&second)) {
        assert_eq!(changed, 0, "{name}");
    }
    assert_eq!(
        lab.sh(&cfg, "lab-worker-1", "id -un").trim(),
        "ec2-user",
        "logged in as ec2-user"
    );
    assert_eq!(
        lab.sh(&cfg, "lab-worker-1", "stat -c '%U %a' /opt/demo/secret")
            .trim(),
        "root 600",
        "written through sudo as root"
    );
}

#[test]
fn bad_config_and_inventory_fail_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[ssh]\nforks = 0\n").expect("write");
    let inv = dir.path().join("inv.toml");
    // An address nobody serves: a connection attempt would show up as unreachable, not exit 1.
    std::fs::write(&inv, "[master]\nname = \"m\"\naddress = \"127.126.0.2\"\n").expect("write");
    let out = sparkboot([
        "converge",
        "--config",
        cfg.to_str().expect("utf-8"),
        "--inventory",
        inv.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`ssh.forks`"),
        "{}",
        text(&out)
    );

    std::fs::write(&cfg, "").expect("write");
    std::fs::write(&inv, "[master]\nname = \"m\"\nadress = \"127.126.0.2\"\n").expect("write");
    let out = sparkboot([
        "converge",
        "--config",
        cfg.to_str().expect("utf-8"),
        "--inventory",
        inv.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("inv.toml") && err.contains("adress"),
        "names the file and the field: {err}"
    );
}

#[test]
fn hosts_are_reached_through_a_jump_host() {
    let lab = Lab::up(126, 2);
    let master = lab.address("lab-master");
    let worker = lab.address("lab-worker-2");
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    // Make the master's sshd log forwarded connections, so the test can see the tunnel.
    lab.sh(&cfg, "lab-master", "echo 'LogLevel DEBUG1' > /etc/ssh/sshd_config.d/01-debug.conf && kill -HUP $(cat /run/sshd.pid) && sleep 0.5");
    let inv = std::fs::read_to_string(lab.inventory()).expect("inventory");
    // Every host, the master included, is reached through the master's sshd (direct-tcpip).
    let jumped = inv.replacen(
        "[defaults]\n",
        &format!("[defaults]\njump_host = \"root@{master}\"\n"),
        1,
    );
    std::fs::write(lab.inventory(), jumped).expect("rewrite inventory");
    let out = lab.run("converge", &cfg, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (name, _, changed, _, _) in counts(&json(&out)) {
        assert!(changed >= 5, "{name} converged through the jump host");
    }
    // The tunnel really went through the master: its sshd logged the forwarded connection.
    let log = lab.sh(
        &cfg,
        "lab-master",
        "grep direct_tcpip /var/log/sshd-lab.log || true",
    );
    assert!(
        log.contains(&format!("target {worker} port 22")),
        "no tunnel to {worker} in the master's sshd log:\n{log}"
    );
}

#[test]
fn forks_beyond_the_open_file_limit_degrade_instead_of_crashing() {
    let lab = Lab::up(127, 2);
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    // A hard limit of 70 descriptors leaves room for one host at a time (64 are kept in reserve).
    let script = format!(
        "ulimit -Sn 70 && ulimit -Hn 70 && exec {BIN} converge --config {} --inventory {} --forks 500 --json",
        cfg.display(),
        lab.inventory().display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("open-file limit"),
        "a note explains the cap:\n{}",
        text(&out)
    );
    for (name, _, changed, failed, unreachable) in counts(&json(&out)) {
        assert_eq!((failed, unreachable), (0, 0), "{name}");
        assert!(changed >= 5, "{name}");
    }
}

#[test]
fn ssh_agent_authentication_works_without_a_key_file() {
    let lab = Lab::up(128, 1);
    let sock = lab.path().join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .spawn()
        .expect("ssh-agent");
    // End the agent we started, by its PID, whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Reap(agent);
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let key = lab.lab_dir().join("id_ed25519");
    let add = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    assert!(add.status.success(), "{}", text(&add));
    let inv = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let without_key: String = inv
        .lines()
        .filter(|l| !l.starts_with("identity_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(lab.inventory(), without_key).expect("rewrite");
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    let run = |agent: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "converge",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--inventory",
            lab.inventory().to_str().expect("utf-8"),
            "--json",
        ]);
        cmd.env_remove("SSH_AUTH_SOCK");
        if agent {
            cmd.env("SSH_AUTH_SOCK", &sock);
        }
        cmd.output().expect("converge")
    };
    let without = run(false);
    assert_eq!(
        without.status.code(),
        Some(2),
        "no key and no agent fails:\n{}",
        text(&without)
    );
    assert!(
        String::from_utf8_lossy(&without.stdout).contains("authentication as root failed"),
        "{}",
        text(&without)
    );
    let with = run(true);
    assert_eq!(with.status.code(), Some(0), "{}", text(&with));
}

/// When the master's plan starts no daemon and changes no export, a host does not wait at each
/// phase for the slowest host: a fast worker finishes its later phase while a slow one is still
/// in its first.
#[test]
fn hosts_run_their_phases_back_to_back_when_the_master_settles_nothing() {
    let lab = Lab::up(172, 2);
    let dir = lab.path().join("roles");
    for (role, body) in [
        (
            "slow",
            "description = \"phase 0: slow on lab-worker-1\"\nphase = 0\n[[step]]\nname = \"Install\"\ncommand = { run = \"if [ \\\"$(hostname)\\\" = lab-worker-1 ]; then sleep 6; fi; date +%s.%N > /opt/installed\", creates = \"/opt/installed\" }\n",
        ),
        (
            "start",
            "description = \"phase 1\"\nphase = 1\n[[step]]\nname = \"Start\"\ncommand = { run = \"date +%s.%N > /opt/started\", creates = \"/opt/started\" }\n",
        ),
    ] {
        std::fs::create_dir_all(dir.join(role)).expect("mkdir");
        std::fs::write(dir.join(role).join("role.toml"), body).expect("role");
    }
    let cfg = lab.path().join("sparkboot.toml");
    std::fs::write(
        &cfg,
        format!(
            "roles_dir = {dir:?}\ntemplates_dir = {:?}\nroles = [\"slow\", \"start\"]\n[cluster]\nstate_dir = {:?}\n",
            fixtures().join("templates"),
            lab.path().join("state"),
        ),
    )
    .expect("config");
    let time = |host: &str, file: &str| -> f64 {
        lab.sh(&cfg, host, &format!("cat /opt/{file}"))
            .trim()
            .parse()
            .expect("a timestamp")
    };
    let run = || {
        let out = lab.run("converge", &cfg, &["--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    // The master runs these roles too, but they start no daemon and export nothing, so no
    // host has anything to wait for. (With the Spark roles the master exports its key: the
    // first converge keeps the barriers, or no worker could authorize it; see spark.rs.)
    run();
    let fast_started = time("lab-worker-2", "started");
    let slow_installed = time("lab-worker-1", "installed");
    assert!(
        fast_started + 3.0 < slow_installed,
        "lab-worker-2 waited for lab-worker-1's first phase: started {fast_started}, the slow install ended {slow_installed}"
    );
}
