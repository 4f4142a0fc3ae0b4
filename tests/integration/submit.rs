//! `sparkboot submit` and `sparkboot tunnel` on a converged 1+1 lab with real Spark: a Python
//! application's answer comes back on stdout, a failing one exits 7 with its traceback visible,
//! the secret is in no argv and no output, the upload dir is gone afterwards; the tunnel serves
//! the master UI's `/json/` on a local port and closes it when killed. In cluster mode the
//! driver runs on the worker and its final state (FINISHED, FAILED) decides the exit.
//!
//! The lab's Spark carries `python/lib/` (pyspark and py4j) as a release does, so a Python app
//! needs nothing more; `--py-files` ships a helper module the app imports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::leaks::ArgvSampler;

fn converged(slot: u8) -> (Lab, PathBuf) {
    let lab = Lab::up_with_spark(slot, 1);
    let cfg = lab.lab_dir().join("sparkboot.toml");
    let out = sparkboot(["converge", "--config", cfg.to_str().expect("utf-8")]);
    assert!(out.status.success(), "converge:\n{}", text(&out));
    (lab, cfg)
}

#[test]
fn submit_returns_the_answer_and_a_failing_app_exits_non_zero() {
    let (lab, cfg) = converged(70);
    let cfg = cfg.to_str().expect("utf-8").to_string();
    // A module the app imports, shipped with --py-files.
    let helper = lab.path().join("answer.py");
    std::fs::write(&helper, "def total(spark):\n    return spark.range(10000000).selectExpr('sum(id)').collect()[0][0]\n")
        .expect("write helper");
    let py_files = helper.display().to_string();
    let app = lab.path().join("sum.py");
    std::fs::write(
        &app,
        "import sys\nfrom pyspark.sql import SparkSession\nimport answer\n\
         spark = SparkSession.builder.appName('sum').getOrCreate()\n\
         print(answer.total(spark))\n\
         print('args', *sys.argv[1:])\nspark.stop()\n",
    )
    .expect("write app");
    let secret = std::fs::read_to_string(lab.lab_dir().join("state/lab/spark-auth-secret"))
        .expect("the lab cluster's secret");

    let argv = ArgvSampler::start();
    let started = Instant::now();
    let out = sparkboot([
        "submit",
        "--config",
        &cfg,
        "--py-files",
        &py_files,
        app.to_str().expect("utf-8"),
        "--",
        "x y",
        "$HOME",
    ]);
    let took = started.elapsed();
    argv.assert_never_saw(secret.trim());
    eprintln!("submit round trip (sum.py): {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["49999995000000", "args x y $HOME"],
        "{}",
        text(&out)
    );
    let all = text(&out);
    assert!(!all.contains(secret.trim()), "the secret was printed");
    // The driver ran on the master and its executor on the worker: the driver's log says so.
    let worker = lab.address("lab-worker-1");
    assert!(
        all.contains(&format!("on {worker} (executor")),
        "no task ran on the worker:\n{all}"
    );

    let bad = lab.path().join("fail.py");
    std::fs::write(
        &bad,
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.appName('fail').getOrCreate()\n\
         raise RuntimeError('boom from the app')\n",
    )
    .expect("write app");
    let out = sparkboot([
        "submit",
        "--config",
        &cfg,
        "--json",
        "--py-files",
        &py_files,
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["succeeded"], false, "{doc:#}");
    assert_eq!(doc["exit_status"], 1, "{doc:#}");
    eprintln!(
        "submit (fail.py): upload {} ms, total {} ms",
        doc["upload_ms"], doc["elapsed_ms"]
    );
    // spark-submit's PythonRunner merges the Python process's stderr into the driver's
    // stdout, so the traceback is in what `--json` collected from stdout.
    let driver_out = doc["stdout"].as_str().unwrap_or_default();
    assert!(
        driver_out.contains("RuntimeError: boom from the app"),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the application failed: spark-submit exited 1"),
        "{}",
        text(&out)
    );

    // Nothing is left behind on the master: no submission dir, no spark-submit.
    let left = lab.sh(
        Path::new(&cfg),
        "lab-master",
        "ls -A /var/lib/spark/submit; stat -c '%U %a' /var/lib/spark/submit; pgrep -fc '[S]parkSubmit' || true",
    );
    assert_eq!(left.trim(), "spark 700\n0", "left behind:\n{left}");

    // Interrupted while the application runs (sparkboot killed: its session drops): the node
    // sees the script's stdin close, stops spark-submit and removes the submission dir.
    let slow = lab.path().join("slow.py");
    std::fs::write(
        &slow,
        "import time\nfrom pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.appName('slow').getOrCreate()\n\
         print('started', flush=True)\ntime.sleep(300)\n",
    )
    .expect("write app");
    let mut child = Command::new(BIN)
        .args(["submit", "--config", &cfg, "--py-files", &py_files])
        .arg(&slow)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start submit");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "started");
    child.kill().expect("kill the submit we started");
    let _ = child.wait();
    let killed = Instant::now();
    let mut left = String::new();
    while killed.elapsed() < Duration::from_secs(60) {
        left = lab.sh(
            Path::new(&cfg),
            "lab-master",
            "ls -A /var/lib/spark/submit; pgrep -fc '[S]parkSubmit' || true",
        );
        if left.trim() == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        left.trim(),
        "0",
        "still there after an interrupted submit:\n{left}"
    );
    eprintln!("interrupted submit cleaned up in {:?}", killed.elapsed());

    // Usage errors are caught before anything is sent.
    let out = sparkboot(["submit", "--config", &cfg, "/no/such/app.py"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = sparkboot([
        "submit",
        "--config",
        &cfg,
        "--deploy-mode",
        "cluster",
        app.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

fn get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[test]
fn tunnel_serves_the_master_ui_until_killed() {
    let (lab, cfg) = converged(71);
    let mut child = Command::new(BIN)
        .args(["tunnel", "--config", cfg.to_str().expect("utf-8"), "--json"])
        .args(["--port-base", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tunnel");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the tunnel's line");
    let doc: serde_json::Value = serde_json::from_str(&first).expect("one JSON line");
    let local = |name: &str| {
        doc["forwards"]
            .as_array()
            .expect("forwards")
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["local"].as_str())
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
            .to_string()
    };
    let ui = local("master-ui");
    assert!(ui.starts_with("127.0.0.1:"), "{doc}");
    let master = lab.address("lab-master");
    assert_eq!(doc["master"], master.as_str());

    let started = Instant::now();
    let page = get(&ui, "/json/").expect("GET /json/ through the tunnel");
    eprintln!("tunnel GET /json/: {:?}", started.elapsed());
    let body = page.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: serde_json::Value = serde_json::from_str(body).expect("the master's JSON");
    let worker = lab.address("lab-worker-1");
    let workers = status["workers"].as_array().expect("workers");
    assert!(
        workers
            .iter()
            .any(|w| w["host"] == worker.as_str() && w["state"] == "ALIVE"),
        "{status:#}"
    );
    // Several at once share the one session.
    let many: Vec<_> = (0..4)
        .map(|_| {
            let ui = ui.clone();
            std::thread::spawn(move || get(&ui, "/json/").map(|p| p.contains("aliveworkers")))
        })
        .collect();
    for t in many {
        assert!(matches!(t.join().expect("thread"), Ok(true)));
    }
    // No application runs: its UI's forward fails for this connection only, with a log line.
    let app = get(&local("app-ui"), "/").unwrap_or_default();
    assert!(!app.contains("200 OK"), "{app}");
    assert!(get(&ui, "/json/").expect("still serving").contains("ALIVE"));

    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "tunnel exit on SIGTERM");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(
        err.contains("app-ui") && err.contains("is it running on the master?"),
        "{err}"
    );
    assert!(
        TcpStream::connect(&ui).is_err(),
        "the local port is still open"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A jar with two plain main classes: `Ok` prints and returns, `Bad` throws. Standalone cluster
/// mode runs any main class in its DriverWrapper on a worker; no Spark API is needed to show
/// how the driver's end maps to sparkboot's exit.
fn driver_jar(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        src.join("Ok.java"),
        "public class Ok { public static void main(String[] a) { System.out.println(\"ok \" + String.join(\",\", a)); } }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("Bad.java"),
        "public class Bad { public static void main(String[] a) { throw new IllegalStateException(\"bad driver\"); } }\n",
    )
    .expect("write");
    let st = Command::new("javac")
        .arg("-d")
        .arg(&src)
        .arg(src.join("Ok.java"))
        .arg(src.join("Bad.java"))
        .status()
        .expect("javac");
    assert!(st.success(), "javac");
    let jar = dir.join("drivers.jar");
    let st = Command::new("jar")
        .arg("cf")
        .arg(&jar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .expect("jar");
    assert!(st.success(), "jar");
    jar
}

#[test]
fn cluster_mode_waits_for_the_driver_and_maps_its_final_state() {
    let (lab, cfg) = converged(72);
    let cfg_s = cfg.to_str().expect("utf-8").to_string();
    let jar = driver_jar(lab.path());
    let jar = jar.to_str().expect("utf-8");
    let submit = |class: &str| {
        let started = Instant::now();
        let out = sparkboot([
            "submit",
            "--config",
            &cfg_s,
            "--json",
            "--deploy-mode",
            "cluster",
            "--class",
            class,
            jar,
            "--",
            "a",
            "b",
        ]);
        eprintln!("cluster-mode submit of {class}: {:?}", started.elapsed());
        out
    };
    let out = submit("Ok");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["driver_state"], "FINISHED", "{doc:#}");
    eprintln!(
        "cluster-mode submit (Ok): upload to 2 nodes {} ms, total {} ms",
        doc["upload_ms"], doc["elapsed_ms"]
    );
    let driver = doc["driver_id"].as_str().expect("driver id").to_string();
    // The driver ran on the worker, with the application's arguments.
    let printed = lab.sh(
        &cfg,
        "lab-worker-1",
        &format!("cat /var/lib/spark/work/{driver}/stdout"),
    );
    assert!(printed.contains("ok a,b"), "{printed}");

    let out = submit("Bad");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["driver_state"], "FAILED", "{doc:#}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ended FAILED"),
        "{}",
        text(&out)
    );
    for node in ["lab-master", "lab-worker-1"] {
        let left = lab.sh(&cfg, node, "ls -A /var/lib/spark/submit");
        assert_eq!(left.trim(), "", "{node} kept a submission dir");
    }
}
