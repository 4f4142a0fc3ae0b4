//! Shared harness: a lab per test (its own directory and loopback range, so tests run in
//! parallel), the sparkboot binary, and small helpers to read its JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sparkboot");

/// The Spark release a lab builds and a config without `[spark] version` installs (sparkboot's
/// default, src/spark/release.rs).
pub const SPARK_VERSION: &str = "4.3.0";

/// The lab's tarball of the default release: `spark-<version>-bin-hadoop3.tgz`.
pub fn spark_tarball() -> String {
    format!("spark-{SPARK_VERSION}-bin-hadoop3.tgz")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs sparkboot with `args` and returns its output (never panics on a non-zero exit).
pub fn sparkboot<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run sparkboot")
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)))
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc_geteuid() };
    assert_eq!(
        euid, 0,
        "these integration tests create lab nodes with namespaces and must run as root (CI does)"
    );
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The stdout of a one-host `sparkboot exec --json`, after asserting the command succeeded.
pub fn exec_stdout(out: &Output, host: &str, script: &str) -> String {
    let doc = json(out);
    let h = &doc["hosts"][0];
    assert_eq!(
        h["exit_status"],
        0,
        "`{script}` on {host} failed:\n{}",
        text(out)
    );
    h["stdout"].as_str().unwrap_or_default().to_string()
}

/// The two kinds of lab node: plain (sshd as the init of a namespace) and systemd (systemd as
/// PID 1 in a container, as on an EC2 instance). A fault case that does not depend on the init
/// system runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Plain,
    Systemd,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Plain => "plain",
            Flavour::Systemd => "systemd",
        }
    }

    /// The path, relative to a node dir, of the host-side file holding the node's `path`
    /// (an absolute path under /opt): the upper layer of its overlay.
    pub fn upper(self, path: &str) -> String {
        match self {
            Flavour::Plain => format!(
                "fs/opt.upper/{}",
                path.strip_prefix("/opt/").expect("a path under /opt")
            ),
            Flavour::Systemd => format!("fs/root.upper{path}"),
        }
    }
}

/// A lab that is torn down when dropped, even when the test fails.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub first_address: String,
}

impl Lab {
    /// A lab without the Spark server. `slot` picks a private /16 (127.<slot>.0.0) so parallel
    /// tests never share an address.
    pub fn up(slot: u8, workers: usize) -> Lab {
        Lab::start(slot, workers, &["--no-spark"])
    }

    /// A lab whose HTTP server serves the Spark tarball built from pyspark (cached).
    pub fn up_with_spark(slot: u8, workers: usize) -> Lab {
        Lab::start(slot, workers, &[])
    }

    /// A lab whose HTTP server serves (and whose sparkboot.toml names) this Spark release.
    pub fn up_with_spark_version(slot: u8, workers: usize, version: &str) -> Lab {
        Lab::start(slot, workers, &["--spark-version", version])
    }

    /// A lab whose nodes boot systemd from the Debian image of scripts/debian-rootfs, with the
    /// Spark server.
    pub fn up_systemd(slot: u8, workers: usize) -> Lab {
        Lab::start(slot, workers, &["--systemd"])
    }

    /// A lab of the given flavour, with or without the Spark server.
    pub fn up_as(flavour: Flavour, slot: u8, workers: usize, spark: bool) -> Lab {
        let mut extra = Vec::new();
        if flavour == Flavour::Systemd {
            extra.push("--systemd");
        }
        if !spark {
            extra.push("--no-spark");
        }
        Lab::start(slot, workers, &extra)
    }

    fn start(slot: u8, workers: usize, extra: &[&str]) -> Lab {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("sparkboot-test-")
            .tempdir()
            .expect("tempdir");
        let lab = Lab {
            dir,
            first_address: format!("127.{slot}.0.2"),
        };
        let workers = workers.to_string();
        let mut args = vec![
            "up",
            "--workers",
            &workers,
            "--first-address",
            &lab.first_address,
        ];
        args.extend_from_slice(extra);
        let out = lab.lab(&args);
        assert!(out.status.success(), "lab up failed:\n{}", text(&out));
        lab
    }

    /// The Spark URL template the lab's sparkboot.toml names.
    pub fn spark_source(&self) -> String {
        let cfg = std::fs::read_to_string(self.lab_dir().join("sparkboot.toml"))
            .expect("lab sparkboot.toml");
        cfg.lines()
            .find_map(|l| l.strip_prefix("source = "))
            .map(|v| v.trim_matches('"').to_string())
            .expect("source line")
    }

    /// The archive's SHA-512 that the lab's sparkboot.toml pins (its server speaks plain http).
    pub fn spark_sha512(&self) -> String {
        let cfg = std::fs::read_to_string(self.lab_dir().join("sparkboot.toml"))
            .expect("lab sparkboot.toml");
        cfg.lines()
            .find_map(|l| l.strip_prefix("sha512 = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| {
                // A lab from before the pin: the checksum the lab wrote beside its tarball.
                let cache = std::env::var("SPARKBOOT_CACHE")
                    .unwrap_or_else(|_| "/var/cache/sparkboot".into());
                let f = Path::new(&cache)
                    .join("lab-spark")
                    .join(format!("{}.sha512", spark_tarball()));
                std::fs::read_to_string(&f)
                    .expect("the lab's .sha512")
                    .split_whitespace()
                    .next()
                    .expect("checksum")
                    .to_string()
            })
    }

    /// The `[spark]` lines that point a test config at the lab's server: its source and pinned
    /// checksum.
    pub fn spark_source_lines(&self) -> String {
        format!(
            "source = {:?}\nsha512 = {:?}\n",
            self.spark_source(),
            self.spark_sha512()
        )
    }

    /// Address of the node `name`, from the lab's inventory.
    pub fn address(&self, name: &str) -> String {
        let inv = std::fs::read_to_string(self.inventory()).expect("inventory");
        inv.split(&format!("name = \"{name}\""))
            .nth(1)
            .and_then(|s| s.split("address = \"").nth(1))
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{name} not in the inventory:\n{inv}"))
            .to_string()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host PID of the process that is PID 1 inside node `name`: the lab's init for a
    /// plain node, the container's systemd for a systemd one (lab-init runs systemd-nspawn,
    /// whose only child is the container's init).
    pub fn node_init(&self, name: &str) -> u32 {
        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(self.lab_dir().join("state.json")).expect("lab state.json"),
        )
        .expect("state.json");
        let node = state["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in the lab's state.json"))
            .clone();
        let init = node["init_pid"].as_u64().expect("node init pid") as u32;
        if node["systemd"] != true {
            return init;
        }
        let child = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or_else(|| panic!("{name}: no child of PID {pid}"))
        };
        child(child(init))
    }

    /// Runs `script` inside node `name`'s PID and mount namespaces, from the host (so it works
    /// while the node's sshd is stopped or paused), and returns its stdout.
    pub fn in_node(&self, name: &str, script: &str) -> String {
        let init = self.node_init(name);
        let out = Command::new("nsenter")
            .args(["--target", &init.to_string(), "--pid", "--mount", "--"])
            .args(["sh", "-c", script])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "`{script}` in {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn lab_dir(&self) -> PathBuf {
        self.path().join("lab")
    }

    pub fn inventory(&self) -> PathBuf {
        self.lab_dir().join("inventory.toml")
    }

    pub fn lab(&self, args: &[&str]) -> Output {
        let dir = self.lab_dir();
        let mut all = vec!["lab", "--dir", dir.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        sparkboot(all)
    }

    /// Writes a sparkboot.toml for this test: the fixture roles, state kept in the test's dir.
    pub fn config(&self, name: &str, body: &str) -> PathBuf {
        let fx = fixtures();
        let text = format!(
            "roles_dir = {:?}\ntemplates_dir = {:?}\n{body}\n[cluster]\nstate_dir = {:?}\n",
            fx.join("roles"),
            fx.join("templates"),
            self.path().join("state"),
        );
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// `sparkboot <cmd> --config C --inventory I <args>`.
    pub fn run(&self, cmd: &str, config: &Path, args: &[&str]) -> Output {
        let mut all = vec![
            cmd.to_string(),
            "--config".into(),
            config.display().to_string(),
            "--inventory".into(),
            self.inventory().display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        sparkboot(all)
    }

    /// Runs a shell command on one node through `sparkboot exec` and returns its stdout.
    pub fn sh(&self, config: &Path, host: &str, script: &str) -> String {
        let out = self.run(
            "exec",
            config,
            &["--limit", host, "--json", "--", "sh", "-c", script],
        );
        exec_stdout(&out, host, script)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.lab(&["down"]);
        if !out.status.success() {
            eprintln!("lab down failed:\n{}", text(&out));
        }
    }
}

/// Per-host counters from a converge `--json` report.
pub fn counts(doc: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    doc["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .map(|h| {
            let n = |k: &str| {
                h[k].as_u64()
                    .unwrap_or_else(|| panic!("{k} missing in {h}"))
            };
            (
                h["name"].as_str().unwrap_or_default().to_string(),
                n("ok"),
                n("changed"),
                n("failed"),
                n("unreachable"),
            )
        })
        .collect()
}

/// A script for the master that runs spark-sql against `spark://{master}:7077` *without* the
/// cluster's secret (its own properties file, authentication off) and prints what it saw; it
/// gives up after the master refuses it (or 150 s). See [`assert_refused`].
pub fn no_secret_client_script(master: &str) -> String {
    format!(
        "cd /tmp; printf 'spark.master spark://{master}:7077\\n' > noauth.conf
timeout 150 /opt/spark/bin/spark-sql --properties-file noauth.conf --conf spark.authenticate=false --master spark://{master}:7077 -e 'SELECT 6*7' > noauth.out 2>&1 &
pid=$!; i=0
while [ $i -lt 450 ] && kill -0 $pid 2>/dev/null && ! grep -qE 'SASL|Failed to connect to master' noauth.out; do sleep 0.3; i=$((i+1)); done
kill $pid 2>/dev/null; wait $pid 2>/dev/null; cat noauth.out"
    )
}

/// The output of [`no_secret_client_script`] shows the master refusing the client (SASL) and no
/// result.
pub fn assert_refused(output: &str) {
    assert!(
        output.contains("SASL") && !output.lines().any(|l| l.trim() == "42"),
        "a client without the secret was not refused:\n{output}"
    );
}

/// `script` (util-linux) running `sparkboot <args>` with stderr on a pseudo-terminal 160
/// columns wide, stdout to `stdout_file` when given. The caller may add environment, then runs
/// it with [`screen_of`].
pub fn in_terminal_command(args: &[String], stdout_file: Option<&Path>) -> Command {
    let mut command = format!("stty cols 160 rows 40; exec {}", BIN);
    for a in args {
        command.push_str(&format!(" '{a}'"));
    }
    if let Some(f) = stdout_file {
        command.push_str(&format!(" >'{}'", f.display()));
    }
    let mut script = Command::new("script");
    script
        .args(["-qfec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null());
    script
}

/// Runs an [`in_terminal_command`]: the exit status and what the terminal showed.
pub fn screen_of(mut script: Command) -> (Option<i32>, String) {
    let out: Output = script.output().expect("script (util-linux)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `sparkboot <args>` with stderr on a pseudo-terminal; see [`in_terminal_command`].
pub fn in_terminal(args: &[String], stdout_file: Option<&Path>) -> (Option<i32>, String) {
    screen_of(in_terminal_command(args, stdout_file))
}

/// Every line of the screen that mentions `word`, escape sequences removed, repeats dropped.
pub fn lines_with(screen: &str, word: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = screen.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one letter.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    let mut lines: Vec<String> = plain
        .split(['\r', '\n'])
        .filter(|l| l.contains(word))
        .map(|l| l.trim().to_string())
        .collect();
    lines.dedup();
    lines
}

/// A transfer line as `report::transfer` writes it: `<verb> 12.0 MiB / 316.2 MiB (3%), ...`.
pub fn shows_transfer(screen: &str, verb: &str) -> bool {
    screen.match_indices(verb).any(|(i, _)| {
        let rest = &screen[i + verb.len()..];
        let line = rest.split(['\r', '\n', '\x1b']).next().unwrap_or_default();
        line.contains(" MiB / ") && line.contains("%)") && line.contains("/s")
    })
}
