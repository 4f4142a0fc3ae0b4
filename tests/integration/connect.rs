//! The Spark Connect server (`[spark] connect_server = true`) on a converged 1+1 lab with the
//! default Spark 4: it listens on the master's private address only, and a `pyspark-client`
//! session through `sparkboot tunnel` runs `SELECT sum(id) FROM range(10000000)` with the
//! cluster's token, while a session without it is refused. The token is in no process's argv.
//! Turned off, the server stops and its port closes; a re-run changes nothing.
//!
//! The client is PyPI's pyspark-client in the venv scripts/install-deps makes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::leaks::ArgvSampler;

const QUERY: &str = "import sys\n\
from pyspark.sql import SparkSession\n\
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()\n\
print(spark.sql('SELECT sum(id) FROM range(10000000)').collect()[0][0])\n\
spark.stop()\n";

fn client_python() -> PathBuf {
    let cache = std::env::var("SPARKBOOT_CACHE").unwrap_or_else(|_| "/var/cache/sparkboot".into());
    let python = Path::new(&cache).join("connect-client/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/install-deps (it installs pyspark-client there)",
        python.display()
    );
    python
}

/// Runs the query through `url`; the token, when given, goes in the environment variable the
/// client reads (never in argv).
fn query(script: &Path, url: &str, token: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(client_python());
    cmd.arg(script)
        .arg(url)
        .env_remove("SPARK_CONNECT_AUTHENTICATE_TOKEN");
    if let Some(t) = token {
        cmd.env("SPARK_CONNECT_AUTHENTICATE_TOKEN", t);
    }
    cmd.output().expect("the Connect client")
}

fn with_line(lab: &Lab, name: &str, line: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.lab_dir().join("sparkboot.toml")).expect("config");
    assert_eq!(
        text.lines().rfind(|l| l.starts_with('[')),
        Some("[spark]"),
        "the line goes into the last table"
    );
    let path = lab.lab_dir().join(name);
    std::fs::write(&path, format!("{text}{line}\n")).expect("write config");
    path
}

fn converge(lab: &Lab, cfg: &Path) -> Value {
    let out = lab.run("converge", cfg, &["--json"]);
    assert!(out.status.success(), "converge failed:\n{}", text(&out));
    json(&out)
}

fn listening(lab: &Lab, cfg: &Path, port: u16) -> String {
    lab.sh(cfg, "lab-master", &format!("ss -Hltn 'sport = :{port}'"))
}

#[test]
fn a_pyspark_client_session_through_the_tunnel_runs_a_query_with_the_token() {
    let started = Instant::now();
    let lab = Lab::up_with_spark(63, 1);
    let master = lab.address("lab-master");
    let cfg = with_line(&lab, "connect.toml", "connect_server = true");
    let argv = ArgvSampler::start();
    converge(&lab, &cfg);
    let token_file = lab.lab_dir().join("state/lab/spark-connect-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap_or_else(|e| panic!("{}: {e}", token_file.display()))
        .trim()
        .to_string();
    assert_eq!(token.len(), 64, "a 256-bit token");

    // The gRPC port opens once the server's application has started: only on the master's
    // address, never a wildcard.
    let deadline = Instant::now() + Duration::from_secs(120);
    let listen = loop {
        let l = listening(&lab, &cfg, 15002);
        if !l.trim().is_empty() {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "the Connect server never listened on 15002"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        listen.contains(&format!("{master}]:15002")) || listen.contains(&format!("{master}:15002")),
        "{listen}"
    );
    assert!(
        !listen.contains("0.0.0.0") && !listen.contains("[::]") && !listen.contains("*:15002"),
        "{listen}"
    );

    // The tunnel, on free local ports.
    let mut tunnel = Command::new(BIN)
        .args(["tunnel", "--json", "--port-base", "0", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tunnel");
    let mut first = String::new();
    BufReader::new(tunnel.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the tunnel's line");
    let doc: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let connect = doc["forwards"]
        .as_array()
        .expect("forwards")
        .iter()
        .find(|f| f["name"] == "connect")
        .unwrap_or_else(|| panic!("no connect forward: {doc}"))
        .clone();
    let url = connect["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("sc://localhost:"), "{url}");
    assert_eq!(
        connect["token_file"].as_str(),
        Some(token_file.to_str().expect("utf-8")),
        "{connect}"
    );
    assert!(!first.contains(&token), "the tunnel printed the token");

    let script = lab.path().join("query.py");
    std::fs::write(&script, QUERY).expect("write the client script");
    let began = Instant::now();
    let out = query(&script, &url, Some(&token));
    let took = began.elapsed();
    assert!(out.status.success(), "the query failed:\n{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "49999995000000",
        "{}",
        text(&out)
    );
    eprintln!("pyspark-client session through the tunnel: {took:?}");
    // Without the token the server refuses the session.
    let refused = query(&script, &url, None);
    assert!(
        !refused.status.success(),
        "a client without the token ran the query"
    );
    let why = text(&refused);
    assert!(
        why.contains("UNAUTHENTICATED") || why.contains("nvalid authentication"),
        "{why}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &tunnel.id().to_string()])
        .status();
    let _ = tunnel.wait();
    argv.assert_never_saw(&token);

    // A re-run changes nothing.
    let again = converge(&lab, &cfg);
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");

    // Turned off: the server stops and its port closes; a re-run stays a no-op.
    let off = with_line(&lab, "connect-off.toml", "connect_server = false");
    converge(&lab, &off);
    assert_eq!(listening(&lab, &off, 15002).trim(), "", "still listening");
    let conf = lab.sh(
        &off,
        "lab-master",
        "cat /opt/spark/conf/spark-defaults.conf",
    );
    assert!(!conf.contains("spark.connect."), "{conf}");
    let again = converge(&lab, &off);
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");
    eprintln!("connect test took {:.1} s", started.elapsed().as_secs_f64());
}
