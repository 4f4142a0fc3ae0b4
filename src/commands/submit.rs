//! `sparkboot submit APP [-- ARGS]`: run a Spark application on the cluster without any other
//! tool on this machine.
//!
//! The application (a jar or a Python file) and its `--py-files`, `--files` and `--jars` travel
//! as one tar stream over the pinned session (one command), into a fresh directory that belongs
//! to the account Spark jobs run as (`shell::submit` says why it is that user's and 0700). A
//! second command runs `spark-submit` there against `spark://<master>:<port>`, with the
//! cluster's own `spark-defaults.conf` (auth secret, ciphers: never in argv), streams the
//! driver's output back as it comes, and removes the directory. In `--deploy-mode cluster` the
//! driver runs on a worker: the files go to every node at the same path (Spark's standalone
//! cluster mode fetches the application from a path the worker can read), `spark-submit` waits
//! for the driver (`spark.standalone.submit.waitAppCompletion`), and the driver's final state,
//! which spark-submit logs but does not turn into its exit status, decides the outcome.
//!
//! Exit status (README, "Exit codes"): 0 the application succeeded; 7 it ran and failed (its
//! own status is printed); 1 bad usage before anything is sent; 2 the master (or, in cluster
//! mode, a node) could not be reached or refused the upload. Every known secret is replaced in
//! what is printed.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::cli::{DeployMode, SubmitArgs};
use crate::error::{Error, EXIT_APP_FAILED, EXIT_HOST_FAILED};
use crate::plan::Payload;
use crate::plan::REDACTED;
use crate::roles::Library;
use crate::shell;
use crate::spark::layout::Layout;
use crate::transport::StreamSink;

use super::Target;

/// The `--json` document (schema 1).
#[derive(Debug, Serialize)]
struct Report {
    schema: u32,
    command: &'static str,
    master: String,
    deploy_mode: &'static str,
    app: String,
    submission: String,
    /// spark-submit's exit status (absent when it never ran).
    exit_status: Option<i32>,
    /// Cluster mode: the driver's id and final state as spark-submit reported them.
    driver_id: Option<String>,
    driver_state: Option<String>,
    succeeded: bool,
    /// From start until every node holds the files (config, handshakes, the upload).
    upload_ms: u128,
    elapsed_ms: u128,
    /// The driver's stdout (client mode); with `--json` it is collected here, not streamed.
    stdout: String,
}

/// The files of one submission: local paths and the names they get remotely (their base
/// names, which Spark and Python use: `SparkFiles.get(name)`, `import module`).
struct Bundle {
    app: String,
    py_files: Vec<String>,
    files: Vec<String>,
    jars: Vec<String>,
    tar: Vec<u8>,
}

fn remote_name(path: &Path) -> Result<String, Error> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && !n.contains(',') && !n.chars().any(char::is_control))
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: a file to submit needs a name of printable characters without ','",
                path.display()
            ))
        })?;
    Ok(name.to_string())
}

impl Bundle {
    fn collect(args: &SubmitArgs) -> Result<Bundle, Error> {
        let mut seen = BTreeSet::new();
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &PathBuf| -> Result<String, Error> {
            let meta = std::fs::metadata(path)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
            if !meta.is_file() {
                return Err(Error::Usage(format!(
                    "{} is not a regular file",
                    path.display()
                )));
            }
            let name = remote_name(path)?;
            if !seen.insert(name.clone()) {
                return Err(Error::Usage(format!(
                    "two files to submit are named {name:?}: Spark finds them by name, so names must differ"
                )));
            }
            builder
                .append_path_with_name(path, &name)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
            Ok(name)
        };
        let app = add(&args.app)?;
        let py_files = args
            .py_files
            .iter()
            .map(&mut add)
            .collect::<Result<_, _>>()?;
        let files = args.files.iter().map(&mut add).collect::<Result<_, _>>()?;
        let jars = args.jars.iter().map(&mut add).collect::<Result<_, _>>()?;
        let tar = builder
            .into_inner()
            .map_err(|e| Error::Usage(format!("cannot pack the files to submit: {e}")))?;
        Ok(Bundle {
            app,
            py_files,
            files,
            jars,
            tar,
        })
    }

    fn is_python(&self) -> bool {
        self.app.ends_with(".py")
    }
}

/// spark-submit's command line: paths are absolute (the same on every node in cluster mode).
fn spark_submit_argv(
    args: &SubmitArgs,
    bundle: &Bundle,
    layout: &Layout,
    dir: &str,
    master_url: &str,
) -> Result<Vec<String>, Error> {
    let at = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("{dir}/{n}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut argv = vec![
        format!("{}/bin/spark-submit", layout.home),
        "--master".into(),
        master_url.into(),
        "--deploy-mode".into(),
        match args.deploy_mode {
            DeployMode::Client => "client".into(),
            DeployMode::Cluster => "cluster".into(),
        },
    ];
    let mut opt = |flag: &str, value: String| {
        argv.push(flag.into());
        argv.push(value);
    };
    if let Some(c) = &args.class {
        opt("--class", c.clone());
    }
    if let Some(n) = &args.name {
        opt("--name", n.clone());
    }
    if !bundle.py_files.is_empty() {
        opt("--py-files", at(&bundle.py_files));
    }
    if !bundle.files.is_empty() {
        opt("--files", at(&bundle.files));
    }
    if !bundle.jars.is_empty() {
        opt("--jars", at(&bundle.jars));
    }
    for c in &args.conf {
        let Some((key, _)) = c.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(Error::Usage(format!("--conf {c:?} is not KEY=VALUE")));
        };
        if key.trim() == "spark.master" || key.trim() == "spark.submit.deployMode" {
            return Err(Error::Usage(format!(
                "--conf {key}: sparkboot sets it (the cluster's master; --deploy-mode)"
            )));
        }
        opt("--conf", c.clone());
    }
    if args.deploy_mode == DeployMode::Cluster
        && !args
            .conf
            .iter()
            .any(|c| c.starts_with("spark.standalone.submit.waitAppCompletion="))
    {
        opt(
            "--conf",
            "spark.standalone.submit.waitAppCompletion=true".into(),
        );
    }
    argv.push(format!("{dir}/{}", bundle.app));
    argv.extend(args.args.iter().cloned());
    Ok(argv)
}

/// What one line of spark-submit's stderr says about a cluster-mode driver.
#[derive(Debug, PartialEq)]
pub(crate) enum DriverNews {
    Nothing,
    /// "Driver successfully submitted as driver-..."
    Submitted(String),
    /// "State of driver driver-... is FAILED, exiting spark-submit JVM." (printed when
    /// spark-submit waits for completion).
    FinalState {
        id: Option<String>,
        state: Option<String>,
    },
}

/// Reads a line of spark-submit's stderr (outside input: it comes from the master).
pub(crate) fn driver_news(line: &str) -> DriverNews {
    if let Some(rest) = line.split("State of driver ").nth(1) {
        let mut words = rest.split_whitespace();
        let id = words.next().map(str::to_string);
        if words.next() == Some("is") {
            let state = words.next().map(|s| {
                s.trim_end_matches(|c: char| !c.is_ascii_alphabetic())
                    .to_string()
            });
            return DriverNews::FinalState { id, state };
        }
    }
    match line
        .split("Driver successfully submitted as ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
    {
        Some(id) => DriverNews::Submitted(id.to_string()),
        None => DriverNews::Nothing,
    }
}

/// Line-buffered output: every known secret replaced, cluster mode's driver lines noticed.
struct Sink {
    secrets: Vec<String>,
    out: Vec<u8>,
    err: Vec<u8>,
    /// With `--json`: stdout is kept for the report instead of printed.
    collect: bool,
    collected: String,
    driver_id: Option<String>,
    driver_state: Option<String>,
}

impl Sink {
    fn redact(&self, line: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(line.to_string(), |l, s| l.replace(s.as_str(), REDACTED))
    }

    fn emit_out(&mut self, line: &str) {
        let line = self.redact(line);
        if self.collect {
            self.collected.push_str(&line);
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(line.as_bytes());
            let _ = o.flush();
        }
    }

    fn emit_err(&mut self, line: &str) {
        let line = self.redact(line);
        match driver_news(&line) {
            DriverNews::Submitted(id) => self.driver_id = Some(id),
            DriverNews::FinalState { id, state } => {
                self.driver_state = state;
                self.driver_id = self.driver_id.take().or(id);
            }
            DriverNews::Nothing => {}
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(line.as_bytes());
        let _ = e.flush();
    }

    fn lines(buf: &mut Vec<u8>, bytes: &[u8]) -> Vec<String> {
        buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        out
    }

    fn finish(&mut self) {
        if !self.out.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.out)).into_owned();
            self.emit_out(&rest);
        }
        if !self.err.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.err)).into_owned();
            self.emit_err(&rest);
        }
    }
}

impl StreamSink for Sink {
    fn stdout(&mut self, bytes: &[u8]) {
        for l in Sink::lines(&mut self.out, bytes) {
            self.emit_out(&l);
        }
    }

    fn stderr(&mut self, bytes: &[u8]) {
        for l in Sink::lines(&mut self.err, bytes) {
            self.emit_err(&l);
        }
    }
}

pub fn run(args: &SubmitArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let target = Target::resolve(&args.common)?;
    let layout = Layout::load(&Library {
        roles_dir: target.config.roles_dir.clone(),
        templates_dir: target.config.templates_dir.clone(),
    })?;
    let bundle = Bundle::collect(args)?;
    if args.deploy_mode == DeployMode::Cluster && bundle.is_python() {
        return Err(Error::Usage(
            "Spark's standalone cluster manager cannot run a Python application's driver on a worker (--deploy-mode cluster); submit it in client mode (the default)".into(),
        ));
    }
    let master = target.inventory.master.clone();
    let master_url = format!(
        "spark://{}:{}",
        master.address, target.config.spark.master_port
    );
    // Only read, never created here: a cluster that was never converged has no secret.
    let secrets: Vec<String> =
        std::fs::read_to_string(target.config.state_dir.join("spark-auth-secret"))
            .ok()
            .map(|s| s.trim().to_string())
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    let id = hex::encode(rand::random::<[u8; 8]>());
    let dir = shell::submit::submission_dir(&layout, &id);
    let argv = spark_submit_argv(args, &bundle, &layout, &dir, &master_url)?;
    let hosts: BTreeSet<String> = match args.deploy_mode {
        DeployMode::Client => [master.name.clone()].into(),
        DeployMode::Cluster => target.inventory.hosts().map(|h| h.name.clone()).collect(),
    };
    let engine = target.engine(&hosts, false)?;

    // 1. The files, to the master (and in cluster mode every worker), one command each.
    let receive = shell::submit::receive(&layout, &id);
    let payload = Arc::new(Payload::Bytes(bundle.tar));
    let items = engine
        .nodes(&hosts)
        .into_iter()
        .map(|n| (n, None::<String>))
        .collect();
    let uploaded = engine.each(items, move |node, failure| {
        match node.run(&receive, Some(&payload)) {
            Some(out) if out.success() => {}
            Some(out) => {
                *failure = Some(format!(
                    "could not receive the files (exit {}): {}",
                    out.exit_status,
                    out.stderr.trim()
                ))
            }
            None => {}
        }
    });
    let upload_ms = started.elapsed().as_millis();
    let mut failures = Vec::new();
    let mut nodes = Vec::new();
    for (node, failure) in uploaded {
        if let Some(e) = node.error().map(str::to_string).or(failure) {
            failures.push(format!("{}: {e}", node.host.name));
        }
        nodes.push(node);
    }
    let remove = shell::submit::remove(&layout, &id);
    let clean = |engine: &crate::engine::Engine, nodes: Vec<crate::engine::Node>| {
        let remove = remove.clone();
        let items = nodes.into_iter().map(|n| (n, ())).collect();
        engine.each(items, move |node, _| {
            node.run(&remove, None);
        });
    };
    if !failures.is_empty() {
        clean(&engine, nodes);
        for f in &failures {
            eprintln!("sparkboot: submit: {f}");
        }
        return Ok(ExitCode::from(EXIT_HOST_FAILED));
    }

    // 2. spark-submit on the master, its output streamed; the script removes the master's copy.
    let Some(at) = nodes.iter().position(|n| n.host.name == master.name) else {
        return Err(Error::Usage(
            "the master is not among the selected hosts".into(),
        ));
    };
    let mut master_node = nodes.swap_remove(at);
    let mut sink = Sink {
        secrets,
        out: Vec::new(),
        err: Vec::new(),
        collect: args.common.json,
        collected: String::new(),
        driver_id: None,
        driver_state: None,
    };
    let script = shell::submit::run(&layout, &id, &argv);
    let status = master_node.stream(&script, &mut sink);
    sink.finish();
    if args.deploy_mode == DeployMode::Cluster {
        clean(&engine, nodes);
    }
    let error = master_node.error().map(str::to_string);
    let succeeded = match (status, args.deploy_mode) {
        (Some(0), DeployMode::Client) => true,
        (Some(0), DeployMode::Cluster) => sink.driver_state.as_deref() == Some("FINISHED"),
        _ => false,
    };
    if args.common.json {
        let report = Report {
            schema: 1,
            command: "submit",
            master: master.address.clone(),
            deploy_mode: match args.deploy_mode {
                DeployMode::Client => "client",
                DeployMode::Cluster => "cluster",
            },
            app: bundle.app.clone(),
            submission: id.clone(),
            exit_status: status,
            driver_id: sink.driver_id.clone(),
            driver_state: sink.driver_state.clone(),
            succeeded,
            upload_ms,
            elapsed_ms: started.elapsed().as_millis(),
            stdout: std::mem::take(&mut sink.collected),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if let Some(e) = error {
        eprintln!(
            "sparkboot: submit: {e}; the application may still be running on the master (its submission dir is {dir})"
        );
        return Ok(ExitCode::from(EXIT_HOST_FAILED));
    }
    if succeeded {
        return Ok(ExitCode::SUCCESS);
    }
    match (status, &sink.driver_state) {
        (Some(s), None) => {
            eprintln!("sparkboot: submit: the application failed: spark-submit exited {s}")
        }
        (_, Some(state)) => eprintln!(
            "sparkboot: submit: the application's driver {} ended {state}",
            sink.driver_id.as_deref().unwrap_or("(id not reported)")
        ),
        (None, None) => {}
    }
    if status == Some(0) && sink.driver_state.is_none() {
        eprintln!("sparkboot: submit: spark-submit did not report the driver's final state");
    }
    Ok(ExitCode::from(EXIT_APP_FAILED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(words: &[&str]) -> SubmitArgs {
        let cli = crate::cli::Cli::try_parse_from(words).expect("parse");
        match cli.command {
            crate::cli::Command::Submit(a) => a,
            other => panic!("not submit: {other:?}"),
        }
    }

    fn bundle(app: &str, py: &[&str]) -> Bundle {
        Bundle {
            app: app.into(),
            py_files: py.iter().map(|s| s.to_string()).collect(),
            files: vec![],
            jars: vec![],
            tar: vec![],
        }
    }

    #[test]
    fn argv_names_the_cluster_and_absolute_paths_and_keeps_app_args_last() {
        let l = crate::spark::layout::tests::builtin();
        let args = parse(&[
            "sparkboot",
            "submit",
            "--py-files",
            "a.zip,b.py",
            "--conf",
            "spark.x=1",
            "app.py",
            "--",
            "--in",
            "s3://b/k",
        ]);
        let argv = spark_submit_argv(
            &args,
            &bundle("app.py", &["a.zip", "b.py"]),
            &l,
            "/d",
            "spark://127.1.0.2:7077",
        )
        .expect("argv");
        assert_eq!(argv[0], format!("{}/bin/spark-submit", l.home));
        assert_eq!(
            &argv[1..5],
            [
                "--master",
                "spark://127.1.0.2:7077",
                "--deploy-mode",
                "client"
            ]
        );
        assert!(argv
            .windows(2)
            .any(|w| w == ["--py-files", "/d/a.zip,/d/b.py"]));
        assert!(argv.windows(2).any(|w| w == ["--conf", "spark.x=1"]));
        assert_eq!(&argv[argv.len() - 3..], ["/d/app.py", "--in", "s3://b/k"]);
        assert!(!argv.iter().any(|a| a.contains("secret")));
    }

    #[test]
    fn cluster_mode_waits_for_the_driver_and_the_master_is_not_overridden() {
        let l = crate::spark::layout::tests::builtin();
        let args = parse(&[
            "sparkboot",
            "submit",
            "--deploy-mode",
            "cluster",
            "--class",
            "A",
            "a.jar",
        ]);
        let argv = spark_submit_argv(&args, &bundle("a.jar", &[]), &l, "/d", "spark://m:7077")
            .expect("argv");
        assert!(argv
            .windows(2)
            .any(|w| w == ["--conf", "spark.standalone.submit.waitAppCompletion=true"]));
        let args = parse(&[
            "sparkboot",
            "submit",
            "--conf",
            "spark.master=local",
            "a.jar",
        ]);
        assert!(spark_submit_argv(&args, &bundle("a.jar", &[]), &l, "/d", "m").is_err());
        let args = parse(&["sparkboot", "submit", "--conf", "novalue", "a.jar"]);
        assert!(spark_submit_argv(&args, &bundle("a.jar", &[]), &l, "/d", "m").is_err());
    }

    #[test]
    fn the_sink_redacts_secrets_and_reads_the_drivers_final_state() {
        let mut s = Sink {
            secrets: vec!["s3cr3t".into()],
            out: vec![],
            err: vec![],
            collect: true,
            collected: String::new(),
            driver_id: None,
            driver_state: None,
        };
        s.stdout(b"the key is s3c");
        s.stdout(b"r3t\npartial");
        s.stderr(b"25/12/04 INFO ClientEndpoint: Driver successfully submitted as driver-20251204-0001\n");
        s.stderr(b"25/12/04 INFO ClientEndpoint: State of driver driver-20251204-0001 is FAILED, exiting spark-submit JVM.\n");
        s.finish();
        assert_eq!(s.collected, format!("the key is {REDACTED}\npartial"));
        assert_eq!(s.driver_id.as_deref(), Some("driver-20251204-0001"));
        assert_eq!(s.driver_state.as_deref(), Some("FAILED"));
    }

    #[test]
    fn files_with_the_same_name_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("x")).expect("mkdir");
        std::fs::write(dir.path().join("a.py"), "print(1)").expect("write");
        std::fs::write(dir.path().join("x/a.py"), "print(2)").expect("write");
        let app = dir.path().join("a.py").display().to_string();
        let dup = dir.path().join("x/a.py").display().to_string();
        let args = parse(&["sparkboot", "submit", "--py-files", &dup, &app]);
        let err = Bundle::collect(&args).err().expect("refused");
        assert!(err.to_string().contains("named \"a.py\""), "{err}");
        let args = parse(&["sparkboot", "submit", &app]);
        let b = Bundle::collect(&args).expect("bundle");
        assert!(b.is_python() && !b.tar.is_empty());
    }
}
