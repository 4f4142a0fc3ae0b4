//! Integration tests for `sparkboot lab`: real namespaces, real sshd, real `ssh` client.
//!
//! They need root (CI runs as root) and fail with a clear message otherwise; none is skipped.
//! Each test has its own lab dir (a temp dir) and its own loopback range 127.1xx.0.0/16, so the
//! tests run in parallel without clashing. Every address is loopback: no packet leaves the
//! machine. A guard runs `lab down` when a test ends, whether it passed or not.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sparkboot");

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the lab tests need root (they create namespaces, mounts and sshd processes); run `cargo test` as root, as CI does");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One lab under test, ended by `lab down` when dropped.
struct Lab {
    root: tempfile::TempDir,
    dir: PathBuf,
    range: u8,
}

impl Lab {
    fn new(range: u8) -> Lab {
        require_root();
        let root = tempfile::tempdir().expect("create a temp dir");
        let dir = root.path().join("lab");
        Lab { root, dir, range }
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    fn key(&self) -> PathBuf {
        self.dir().join("id_ed25519")
    }

    fn addr(&self, last: u8) -> String {
        format!("127.{}.0.{last}", self.range)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("lab")
            .arg("--dir")
            .arg(self.dir())
            .args(args)
            .output()
            .expect("run sparkboot")
    }

    /// Runs a lab command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sparkboot lab {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn up(&self, workers: usize) -> String {
        let first = self.addr(2);
        self.ok(&[
            "up",
            "--workers",
            &workers.to_string(),
            "--no-spark",
            "--first-address",
            &first,
        ])
    }

    fn state(&self) -> serde_json::Value {
        let raw = std::fs::read_to_string(self.dir().join("state.json")).expect("read state.json");
        serde_json::from_str(&raw).expect("parse state.json")
    }

    fn inventory(&self) -> toml::Value {
        let raw = std::fs::read_to_string(self.dir().join("inventory.toml"))
            .expect("read inventory.toml");
        toml::from_str(&raw).expect("parse inventory.toml")
    }

    /// Runs `command` on a node with the system ssh client and the lab key.
    fn ssh(&self, user: &str, address: &str, command: &str) -> Output {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(self.key())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.root.path().join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .args([
                "-o",
                "KexAlgorithms=curve25519-sha256",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("{user}@{address}"))
            .arg(command)
            .output()
            .expect("run ssh")
    }

    /// Like [`Lab::ssh`] but the command must succeed; returns trimmed stdout.
    fn ssh_ok(&self, user: &str, address: &str, command: &str) -> String {
        let out = self.ssh(user, address, command);
        assert!(
            out.status.success(),
            "ssh {user}@{address} {command:?} failed ({}): {}",
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// Every PID the lab recorded, plus the children of each node's init (sshd and so on).
    fn recorded_pids(&self) -> Vec<u32> {
        let state = self.state();
        let mut pids = Vec::new();
        for node in state["nodes"].as_array().expect("nodes") {
            let init = node["init_pid"].as_u64().expect("init_pid") as u32;
            pids.push(init);
            pids.push(node["unshare_pid"].as_u64().expect("unshare_pid") as u32);
            let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                .unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        if let Some(pid) = state["spark"]["pid"].as_u64() {
            pids.push(pid as u32);
        }
        pids
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!(
                "lab down for {} failed: {}",
                self.dir().display(),
                text(&out.stderr)
            );
        }
    }
}

fn accepts(address: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{address}:{port}").parse().expect("socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// The base64 blob of a node's ed25519 host key, read with ssh-keyscan (loopback only).
fn host_key(address: &str) -> String {
    let out = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-T", "5", address])
        .output()
        .expect("run ssh-keyscan");
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap_or_default()
        .to_string();
    line.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no host key from {address}: {stdout}"))
        .to_string()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    let dir = dir.to_string_lossy().into_owned();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn up_gives_nodes_with_root_and_ec2_user_logins_and_passwordless_sudo() {
    let lab = Lab::new(101);
    lab.up(2);
    for (last, name) in [(2, "lab-master"), (3, "lab-worker-1"), (4, "lab-worker-2")] {
        let address = lab.addr(last);
        assert_eq!(lab.ssh_ok("root", &address, "hostname"), name);
        assert_eq!(lab.ssh_ok("root", &address, "id -un"), "root");
        assert_eq!(
            lab.ssh_ok("ec2-user", &address, "id -un; echo $HOME"),
            "ec2-user\n/home/ec2-user"
        );
        assert_eq!(
            lab.ssh_ok("ec2-user", &address, "sudo -n true && sudo -n id -un"),
            "root"
        );
    }
    let inventory = lab.inventory();
    assert_eq!(inventory["defaults"]["user"].as_str(), Some("root"));
    let key = inventory["defaults"]["identity_file"]
        .as_str()
        .expect("identity_file");
    assert!(
        Path::new(key).is_absolute() && Path::new(key) == lab.key(),
        "identity_file {key} must be the lab key's absolute path"
    );
    assert_eq!(inventory["master"]["name"].as_str(), Some("lab-master"));
    assert_eq!(
        inventory["master"]["address"].as_str(),
        Some(lab.addr(2).as_str())
    );
    assert_eq!(inventory["workers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn nodes_have_own_hostnames_host_keys_and_private_opt() {
    let lab = Lab::new(102);
    lab.up(2);
    let addresses: Vec<String> = (2..=4).map(|l| lab.addr(l)).collect();
    let mut names: Vec<String> = addresses
        .iter()
        .map(|a| lab.ssh_ok("root", a, "hostname"))
        .collect();
    let mut keys: Vec<String> = addresses.iter().map(|a| host_key(a)).collect();
    let host_pub = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub").unwrap_or_default();
    for key in &keys {
        assert!(
            !host_pub.contains(key.as_str()),
            "a node reuses this machine's host key"
        );
    }
    names.sort();
    names.dedup();
    keys.sort();
    keys.dedup();
    assert_eq!(names.len(), 3, "hostnames must differ: {names:?}");
    assert_eq!(keys.len(), 3, "host keys must differ");

    let marker = format!("lab-test-{}", std::process::id());
    let path = format!("/opt/{marker}");
    let quoted = shlex::try_quote(&path).expect("quote").into_owned();
    lab.ssh_ok("root", &addresses[0], &format!("echo written > {quoted}"));
    assert_eq!(
        lab.ssh_ok("root", &addresses[0], &format!("cat {quoted}")),
        "written"
    );
    for other in &addresses[1..] {
        let seen = lab.ssh_ok(
            "root",
            other,
            &format!("test -e {quoted} && echo present || echo absent"),
        );
        assert_eq!(
            seen, "absent",
            "{path} written on the master is visible on {other}"
        );
    }
    assert!(
        !Path::new(&path).exists(),
        "{path} written on a node is visible on the host"
    );
}

#[test]
fn up_twice_keeps_the_same_nodes_and_host_keys() {
    let lab = Lab::new(103);
    lab.up(1);
    let pids = |s: &serde_json::Value| -> Vec<u64> {
        s["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["init_pid"].as_u64().expect("pid"))
            .collect()
    };
    let before = pids(&lab.state());
    let keys_before: Vec<String> = [2, 3].iter().map(|l| host_key(&lab.addr(*l))).collect();
    let second = lab.up(1);
    assert!(
        second.contains("0 created, 2 kept"),
        "second up should keep both nodes: {second}"
    );
    assert_eq!(
        pids(&lab.state()),
        before,
        "a second `lab up` must keep the running nodes"
    );
    let keys_after: Vec<String> = [2, 3].iter().map(|l| host_key(&lab.addr(*l))).collect();
    assert_eq!(keys_before, keys_after);
    assert_eq!(lab.ssh_ok("root", &lab.addr(3), "hostname"), "lab-worker-1");
}

#[test]
fn add_and_remove_change_the_inventory() {
    let lab = Lab::new(104);
    lab.up(1);
    let names = |lab: &Lab| -> Vec<String> {
        let inv = lab.inventory();
        let workers = inv["workers"].as_array().cloned().unwrap_or_default();
        workers
            .iter()
            .map(|w| {
                format!(
                    "{}@{}",
                    w["name"].as_str().unwrap_or(""),
                    w["address"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    lab.ok(&["add"]);
    assert_eq!(
        names(&lab),
        vec![
            format!("lab-worker-1@{}", lab.addr(3)),
            format!("lab-worker-2@{}", lab.addr(4))
        ]
    );
    assert_eq!(lab.ssh_ok("root", &lab.addr(4), "hostname"), "lab-worker-2");

    // A node at a given address, as when it plays an instance that the AWS emulator reported.
    let emulated = format!("127.{}.1.4", lab.range);
    lab.ok(&["add", "--address", &emulated, "--name", "emu-1"]);
    assert!(names(&lab).contains(&format!("emu-1@{emulated}")));
    assert_eq!(lab.ssh_ok("ec2-user", &emulated, "hostname"), "emu-1");

    let removed = lab.state()["nodes"][2]["init_pid"].as_u64().expect("pid");
    lab.ok(&["remove", "lab-worker-2"]);
    assert_eq!(
        names(&lab),
        vec![
            format!("lab-worker-1@{}", lab.addr(3)),
            format!("emu-1@{emulated}")
        ]
    );
    assert!(
        !Path::new(&format!("/proc/{removed}")).exists(),
        "the removed node's init still runs"
    );
    assert!(!accepts(&lab.addr(4), 22));
    assert!(!lab.dir().join("nodes/lab-worker-2").exists());

    let out = lab.run(&["remove", "lab-master"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot be removed alone"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn down_leaves_no_process_mount_or_state() {
    let lab = Lab::new(105);
    lab.up(2);
    let pids = lab.recorded_pids();
    assert!(
        pids.len() >= 9,
        "expected init, unshare and sshd per node: {pids:?}"
    );
    lab.ok(&["down"]);
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of the lab is still there after down"
        );
    }
    assert_eq!(mounts_under(&lab.dir()), Vec::<String>::new());
    assert!(
        !lab.dir().exists(),
        "lab down must remove the lab dir and its state"
    );
    for last in 2..=4 {
        assert!(!accepts(&lab.addr(last), 22));
    }
    // A second down is harmless.
    lab.ok(&["down"]);
}

#[test]
fn stop_and_start_toggle_one_node_sshd() {
    let lab = Lab::new(107);
    lab.up(1);
    let (master, worker) = (lab.addr(2), lab.addr(3));
    let stopped = lab.ok(&["stop", "lab-worker-1"]);
    assert!(
        stopped.contains("stopped sshd of lab-worker-1"),
        "{stopped}"
    );
    assert!(
        !accepts(&worker, 22),
        "port 22 of a stopped node must refuse connections"
    );
    assert!(
        accepts(&master, 22),
        "stopping one node must not touch another"
    );
    let status = lab.run(&["status", "--json"]);
    assert_eq!(
        status.status.code(),
        Some(2),
        "status exits 2 while a node's sshd is down"
    );
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let row = doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "lab-worker-1")
        .cloned()
        .expect("row");
    assert_eq!(row["running"], true);
    assert_eq!(row["sshd_listening"], false);

    lab.ok(&["start", "lab-worker-1"]);
    assert!(accepts(&worker, 22));
    assert_eq!(lab.ssh_ok("root", &worker, "hostname"), "lab-worker-1");
    assert_eq!(lab.run(&["status"]).status.code(), Some(0));
}

#[test]
fn non_loopback_addresses_are_refused_before_anything_happens() {
    let lab = Lab::new(110);
    for args in [
        vec!["add", "--address", "10.0.0.5"], // refused before any packet is sent
        vec!["up", "--no-spark", "--first-address", "192.168.1.2"], // refused before any packet is sent
    ] {
        let out = lab.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?} must be refused");
        let err = text(&out.stderr);
        assert!(
            err.contains("127.0.0.0/8") && err.contains("network-safety"),
            "unclear error: {err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "the error must be one sentence: {err}"
        );
    }
    assert!(
        !lab.dir().exists(),
        "a refused address must not create anything"
    );
}

#[test]
fn an_address_in_use_is_refused_and_leaves_nothing_running() {
    let lab = Lab::new(108);
    let busy =
        TcpListener::bind(format!("{}:22", lab.addr(3))).expect("bind a test listener on loopback");
    let first = lab.addr(2);
    let out = lab.run(&[
        "up",
        "--workers",
        "1",
        "--no-spark",
        "--first-address",
        &first,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "address {}:22 is already in use by another process; pick another with --address",
            lab.addr(3)
        )),
        "{err}"
    );
    let state = lab.dir().join("state.json");
    assert!(
        !state.exists() || lab.state()["nodes"].as_array().is_some_and(Vec::is_empty),
        "no node may be recorded"
    );
    assert!(!accepts(&first, 22), "the master must not be left running");

    lab.up(0);
    let out = lab.run(&["add", "--address", &lab.addr(3)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already in use by another process"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        lab.inventory()
            .get("workers")
            .and_then(|w| w.as_array())
            .map_or(0, Vec::len),
        0
    );
    drop(busy);
}

#[test]
fn spark_tarball_is_served_with_a_matching_sha512() {
    let lab = Lab::new(106);
    let first = lab.addr(2);
    let out = lab.ok(&["up", "--workers", "0", "--first-address", &first]);
    let v = crate::common::SPARK_VERSION;
    let url = format!(
        "http://127.{}.255.254:8000/spark-{v}-bin-hadoop3.tgz",
        lab.range
    );
    assert!(out.contains(&url), "up should print the Spark URL: {out}");
    let sample = std::fs::read_to_string(lab.dir().join("sparkboot.toml")).expect("sample config");
    assert!(sample.contains("spark-{version}-{package}.tgz"), "{sample}");
    let q = |s: &str| shlex::try_quote(s).expect("quote").into_owned();
    let script = format!(
        "set -e; cd /tmp; curl -fsSO {tgz}; curl -fsSO {sha}; sha512sum -c spark-{v}-bin-hadoop3.tgz.sha512; \
         tar xzf spark-{v}-bin-hadoop3.tgz; cd spark-{v}-bin-hadoop3; \
         test -x bin/spark-submit; test -x sbin/spark-daemon.sh; test -d conf; test -f RELEASE; ls jars | wc -l",
        tgz = q(&url),
        sha = q(&format!("{url}.sha512")),
    );
    let jars: usize = lab
        .ssh_ok("root", &first, &script)
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .expect("jar count");
    assert!(jars > 100, "expected Spark's jars, found {jars}");
    let server = lab.state()["spark"]["pid"].as_u64().expect("spark pid");
    lab.ok(&["down"]);
    assert!(
        !Path::new(&format!("/proc/{server}")).exists(),
        "the Spark HTTP server outlived lab down"
    );
}

/// Unmounts a test's own mount when dropped (declared before the lab, so it drops after it).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_node_that_cannot_start_is_undone_and_its_console_explains_why() {
    // An overlayfs cannot serve as another overlay's upper dir, so a lab dir inside one makes
    // every node's lab-init fail at its first overlay mount: a deterministic start failure.
    let scratch = tempfile::tempdir().expect("temp dir");
    let layers: Vec<PathBuf> = ["lower", "upper", "work", "merged"]
        .iter()
        .map(|d| scratch.path().join(d))
        .collect();
    for dir in &layers {
        std::fs::create_dir_all(dir).expect("create overlay layer");
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        layers[0].display(),
        layers[1].display(),
        layers[2].display()
    );
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&layers[3])
        .status()
        .expect("run mount");
    assert!(mounted.success(), "could not mount a test overlay");
    let _unmount = Unmount(layers[3].clone());
    let mut lab = Lab::new(109);
    lab.dir = layers[3].join("lab");

    let first = lab.addr(2);
    let out = lab.run(&[
        "up",
        "--workers",
        "2",
        "--no-spark",
        "--first-address",
        &first,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("removed again") && err.contains("mount the overlays"),
        "the error must carry the console's reason: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(
        lab.state()["nodes"].as_array().is_some_and(Vec::is_empty),
        "no node may stay recorded"
    );
    let lab_dir = lab.dir().to_string_lossy().into_owned();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&lab_dir))
        .collect();
    assert!(
        left.is_empty(),
        "processes of the failed lab are still running: {left:?}"
    );
    for last in 2..=4 {
        assert!(!accepts(&lab.addr(last), 22));
    }
}

#[test]
fn not_root_is_refused_in_one_sentence() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new(111);
    // A copy of the binary in a world-readable dir, wherever the checkout lives.
    let bin_dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let bin = bin_dir.path().join("sparkboot");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["lab", "--dir"])
        .arg(lab.dir())
        .args(["up", "--no-spark"])
        .current_dir("/")
        .output()
        .expect("run setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("must run as root") && err.contains("sudo"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(!lab.dir().exists());
}
