//! Progress a person can wait by, end to end in a pseudo-terminal (`script` from util-linux):
//! a node's download shows bytes, total, rate and time left on its host's line, a push-mode
//! upload the same (and the controller's own download before it), over an overall "N/M hosts
//! done" line; with `--json` nothing of it reaches
//! the terminal and stdout is the JSON document. Lab 127.80.0.0/16 (1 master, 1 worker, the
//! lab's Spark tarball), and a deliberately slow HTTP server on 127.80.255.253 so that a
//! download lasts seconds, as it does from a real mirror, instead of a blink over loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const SERVER: &str = "127.80.255.253:8001";
/// Per connection: the 316 MB archive takes about 3 s.
const RATE: usize = 100 * 1024 * 1024;

/// Serves `file` to every GET, at most `RATE` bytes a second per connection, until `stop` is
/// set or five minutes have passed (a bounded loop on loopback only).
fn slow_server(file: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let listener = TcpListener::bind(SERVER).expect("bind the slow server");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((conn, _)) => {
                    let file = file.clone();
                    std::thread::spawn(move || {
                        let _ = serve(conn, &file);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
}

fn serve(mut conn: TcpStream, file: &Path) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let mut f = std::fs::File::open(file)?;
    let len = f.metadata()?.len();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n"
    )?;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
        sent += n;
        let due = Duration::from_secs_f64(sent as f64 / RATE as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

fn lab_tarball(lab: &Lab) -> PathBuf {
    let source = lab.spark_source();
    let name = source
        .rsplit('/')
        .next()
        .expect("file name")
        .replace("{version}", SPARK_VERSION)
        .replace("{package}", "bin-hadoop3");
    let cache = std::env::var("SPARKBOOT_CACHE").unwrap_or_else(|_| "/var/cache/sparkboot".into());
    let path = Path::new(&cache).join("lab-spark").join(name);
    assert!(path.is_file(), "{}", path.display());
    path
}

/// A `fetch` role with only the Spark download step (no Java, no daemons), into its own dir.
fn config(lab: &Lab, name: &str, spark: &str) -> PathBuf {
    let roles = lab.path().join("roles/fetch");
    std::fs::create_dir_all(&roles).expect("roles dir");
    std::fs::write(
        roles.join("role.toml"),
        "description = \"Only the Spark download, for the progress test\"\ncontext = [\"spark\"]\n\
         [[step]]\nname = \"Ensure the archive is installed\"\n\
         download = { url = \"{{ spark.url }}\", sha512 = \"{{ spark.sha512 }}\", dest = \"/opt/progress-test\", source = \"{{ spark.source }}\" }\n",
    )
    .expect("role");
    let body = format!(
        "roles = [\"fetch\"]\nroles_dir = {:?}\n[cluster]\nname = \"progress\"\nstate_dir = {:?}\n[spark]\nsha512 = {:?}\n{spark}\n",
        lab.path().join("roles"),
        lab.path().join("state"),
        lab.spark_sha512(),
    );
    let path = lab.path().join(name);
    std::fs::write(&path, body).expect("config");
    path
}

fn converge_args(lab: &Lab, cfg: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "converge".to_string(),
        "--config".into(),
        cfg.display().to_string(),
        "--inventory".into(),
        lab.inventory().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The screen's lines that mention `word` (escape sequences cut off), for the test's log.
fn sample(screen: &str, word: &str) -> Vec<String> {
    lines_with(screen, word).into_iter().take(8).collect()
}

#[test]
fn downloads_and_uploads_show_bytes_rate_and_time_left_in_a_terminal() {
    let lab = Lab::up_with_spark(80, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let tarball = lab_tarball(&lab);
    // The archive's size as the progress line prints it (MiB, one decimal).
    let mib = std::fs::metadata(&tarball).expect("archive").len() as f64 / (1 << 20) as f64;
    let mib = format!("{mib:.1} MiB");
    let server = slow_server(tarball, stop.clone());
    let direct = config(
        &lab,
        "direct.toml",
        &format!("source = \"http://{SERVER}/spark-{{version}}-{{package}}.tgz\""),
    );

    // 1. Each node downloads the archive with curl: its line shows the download's progress.
    let started = Instant::now();
    let (code, screen) = in_terminal(&converge_args(&lab, &direct, &[]), None);
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        shows_transfer(&screen, "downloading "),
        "no download progress on the terminal:\n{screen}"
    );
    assert!(screen.contains("left"), "no time left shown:\n{screen}");
    assert!(
        screen.contains(&format!(
            "Ensure the archive is installed: downloaded {mib}"
        )),
        "the line does not say when the download is complete:\n{screen}"
    );
    assert!(
        screen.contains("/2 hosts done"),
        "no overall line:\n{screen}"
    );
    assert!(
        !screen.contains("sparkboot-progress"),
        "raw lines leaked:\n{screen}"
    );
    eprintln!(
        "direct download converge: {:?}; the terminal showed {:#?} and {:#?}",
        started.elapsed(),
        sample(&screen, "downloading"),
        sample(&screen, "hosts done")
    );

    // 2. With --json nothing is drawn, even on a terminal, and stdout is the document.
    let again = "rm -rf /opt/progress-test";
    lab.sh(&direct, "lab-worker-1", again);
    let doc_file = lab.path().join("converge.json");
    let (code, screen) = in_terminal(&converge_args(&lab, &direct, &["--json"]), Some(&doc_file));
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        !screen.contains("downloading") && !screen.contains("hosts done"),
        "--json drew progress:\n{screen}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&doc_file).expect("json")).expect("valid JSON");
    assert_eq!(doc["summary"]["changed"], 1, "{doc:#}");

    // 3. Push mode: the controller downloads the archive once (its own line shows that), then
    //    streams it over SSH; the node's line shows the upload.
    lab.sh(&direct, "lab-worker-1", again);
    let push = config(
        &lab,
        "push.toml",
        &format!(
            "source = \"http://{SERVER}/spark-{{version}}-{{package}}.tgz\"\ndistribution = \"push\""
        ),
    );
    let started = Instant::now();
    let (code, screen) = in_terminal(&converge_args(&lab, &push, &[]), None);
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        shows_transfer(&screen, "uploading "),
        "no upload progress on the terminal:\n{screen}"
    );
    assert!(
        screen.contains(&format!("Ensure the archive is installed: uploaded {mib}")),
        "the line does not say when the upload is complete:\n{screen}"
    );
    assert!(
        lines_with(&screen, "downloading")
            .iter()
            .any(|l| l.contains("controller downloading") && l.contains(" MiB / ")),
        "no progress for the controller's own download:\n{screen}"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    eprintln!(
        "push upload converge: {:?}; the terminal showed {:#?} and {:#?}",
        started.elapsed(),
        sample(&screen, "controller"),
        sample(&screen, "uploading")
    );
}
