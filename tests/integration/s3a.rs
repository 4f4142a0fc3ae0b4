//! The S3A connector on a real 1+1 lab with the real Spark 4.3.0: stand-in jars for
//! hadoop-aws 3.5.0 and the AWS SDK bundle 2.35.4 (each a small jar with one text entry, with a
//! `.sha512` and `.sha1` beside the first and only a `.sha1` beside the second, as Maven Central
//! has for many artifacts), served from loopback by a Python HTTP server this test starts and
//! whose request log it reads. Maven Central cannot be reached here, and no job reads s3://
//! (there is no S3 here): what runs is the download, verification, caching, streaming and
//! install path, and the rendered settings. Nothing leaves 127.64.0.0/16.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use crate::common::*;

const SERVER: &str = "127.64.255.250";
const PORT: u16 = 8064;
const AWS_DIR: &str = "m2/org/apache/hadoop/hadoop-aws/3.5.0";
const SDK_DIR: &str = "m2/software/amazon/awssdk/bundle/2.35.4";
const AWS_JAR: &str = "hadoop-aws-3.5.0.jar";
const SDK_JAR: &str = "bundle-2.35.4.jar";

/// `python3 -m http.server` on the loopback address, logging each request to a file; ended by
/// its own PID when dropped.
struct Repository {
    child: Child,
    log: PathBuf,
}

impl Repository {
    fn serve(root: &Path) -> Repository {
        let log = root.join("requests.log");
        let err = std::fs::File::create(&log).expect("log file");
        let child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                &PORT.to_string(),
                "--bind",
                SERVER,
            ])
            .arg("--directory")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("python3 -m http.server");
        let repo = Repository { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((SERVER, PORT)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test's HTTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        repo
    }

    /// How many GET requests the server answered for paths ending in `suffix`.
    fn gets(&self, suffix: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .expect("request log")
            .lines()
            .filter(|l| {
                l.split('"')
                    .nth(1)
                    .and_then(|req| req.strip_prefix("GET "))
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|path| path.ends_with(suffix))
            })
            .count()
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A jar (a zip) with one text entry, written with Python's zipfile.
fn jar(path: &Path, entry_text: &str) -> Vec<u8> {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('STAND-IN.txt', sys.argv[2])",
        ])
        .arg(path)
        .arg(entry_text)
        .output()
        .expect("python3 zipfile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(path).expect("jar bytes")
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(<sha1::Sha1 as sha1::Digest>::digest(bytes))
}

fn converge(lab: &Lab, cfg: &Path) -> Value {
    let out = lab.run("converge", cfg, &["--json"]);
    assert!(out.status.success(), "converge failed:\n{}", text(&out));
    json(&out)
}

/// `owner:group mode sha256` of a file on a node, through the Spark home link.
fn installed(lab: &Lab, cfg: &Path, node: &str, file: &str) -> String {
    lab.sh(
        cfg,
        node,
        &format!(
            "p=/opt/spark/jars/{file}; if [ -e $p ]; then echo \"$(stat -c '%U:%G %a' $p) $(sha256sum < $p | cut -d' ' -f1)\"; else echo absent; fi"
        ),
    )
    .trim()
    .to_string()
}

#[test]
fn s3a_jars_are_fetched_once_verified_and_installed_on_every_node() {
    let started = Instant::now();
    let lab = Lab::up_with_spark(64, 1);
    let work = tempfile::tempdir().expect("tempdir");
    let aws = jar(
        &work.path().join(AWS_DIR).join(AWS_JAR),
        "stand-in for hadoop-aws 3.5.0",
    );
    let sdk = jar(
        &work.path().join(SDK_DIR).join(SDK_JAR),
        "stand-in for the AWS SDK bundle 2.35.4",
    );
    let aws_path = work.path().join(AWS_DIR).join(AWS_JAR);
    std::fs::write(
        format!("{}.sha512", aws_path.display()),
        format!("{}  {AWS_JAR}\n", hex::encode(Sha512::digest(&aws))),
    )
    .expect("sha512");
    std::fs::write(format!("{}.sha1", aws_path.display()), sha1_hex(&aws)).expect("sha1");
    std::fs::write(
        work.path().join(SDK_DIR).join(format!("{SDK_JAR}.sha1")),
        sha1_hex(&sdk),
    )
    .expect("sha1");
    let server = Repository::serve(work.path());

    // The lab's own config (its Spark source, pinned) plus S3A forced on: the lab's inventory
    // is a static file, where S3A is off by default.
    let base = std::fs::read_to_string(lab.lab_dir().join("sparkboot.toml")).expect("lab config");
    assert_eq!(base.lines().rfind(|l| l.starts_with('[')), Some("[spark]"));
    let cfg = lab.lab_dir().join("s3a.toml");
    std::fs::write(
        &cfg,
        format!("{base}s3a = true\nmaven_repository = \"http://{SERVER}:{PORT}/m2\"\n"),
    )
    .expect("config");

    let first_started = Instant::now();
    let first = converge(&lab, &cfg);
    let first_secs = first_started.elapsed().as_secs_f64();
    let nodes = ["lab-master", "lab-worker-1"];
    let want_aws = format!("root:root 644 {}", hex::encode(Sha256::digest(&aws)));
    let want_sdk = format!("root:root 644 {}", hex::encode(Sha256::digest(&sdk)));
    for node in nodes {
        assert_eq!(installed(&lab, &cfg, node, AWS_JAR), want_aws, "{node}");
        assert_eq!(installed(&lab, &cfg, node, SDK_JAR), want_sdk, "{node}");
        // In the Spark version's own jars/ (the link points there), each with the root-owned
        // marker that later probes read instead of hashing it, and no temporary file left.
        let listing = lab.sh(
            &cfg,
            node,
            "readlink /opt/spark; cd /opt/spark/jars && ls -a | grep -e sparkboot -e hadoop-aws -e bundle- && stat -c '%U:%G %a' *.sparkboot-sha256 && cat *.sparkboot-sha256",
        );
        assert_eq!(
            listing,
            format!(
                "/opt/spark-4.3.0-bin-hadoop3\n{SDK_JAR}\n{SDK_JAR}.sparkboot-sha256\n{AWS_JAR}\n{AWS_JAR}.sparkboot-sha256\nroot:root 644\nroot:root 644\n{}\n{}\n",
                hex::encode(Sha256::digest(&sdk)),
                hex::encode(Sha256::digest(&aws))
            ),
            "{node}"
        );
        let conf = lab.sh(&cfg, node, "cat /opt/spark/conf/spark-defaults.conf");
        assert!(
            conf.contains("spark.hadoop.fs.s3a.aws.credentials.provider    org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider\n"),
            "{node}: {conf}"
        );
        for never in [
            "access.key",
            "secret.key",
            "session.token",
            "endpoint.region",
            "warehouse",
        ] {
            assert!(!conf.contains(never), "{node}: {never} in {conf}");
        }
    }
    // Each jar crossed the wire from the repository once, for the whole cluster, and each
    // checksum file the controller read was the strongest one there.
    assert_eq!((server.gets(AWS_JAR), server.gets(SDK_JAR)), (1, 1));
    assert_eq!(server.gets(&format!("{AWS_JAR}.sha512")), 1);
    assert_eq!(
        server.gets(&format!("{AWS_JAR}.sha1")),
        0,
        "the .sha512 was there"
    );
    assert_eq!(server.gets(&format!("{SDK_JAR}.sha1")), 1);
    // The jar steps' reasons say what was installed.
    let master = first["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == "lab-master")
        .expect("master");
    let jar_steps: Vec<(&str, &str)> = master["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| {
            s["step"].as_str().is_some_and(|n| {
                n.starts_with("Ensure the S3A connector") || n.starts_with("Ensure the AWS SDK")
            })
        })
        .map(|s| {
            (
                s["step"].as_str().unwrap_or_default(),
                s["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        jar_steps.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [
            "Ensure the S3A connector org.apache.hadoop:hadoop-aws:3.5.0 is installed (verified against its published .sha512)",
            "Ensure the AWS SDK software.amazon.awssdk:bundle:2.35.4 is installed (verified against its published .sha1)",
        ],
        "{master:#}"
    );
    let reasons: Vec<&str> = jar_steps.iter().map(|(_, r)| *r).collect();
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("install /opt/spark-4.3.0-bin-hadoop3/jars/")),
        "{reasons:?}"
    );

    // A second converge changes nothing and fetches no jar again (the cache is the controller's).
    let again_started = Instant::now();
    let again = converge(&lab, &cfg);
    let again_secs = again_started.elapsed().as_secs_f64();
    for (name, _, changed, failed, unreachable) in counts(&again) {
        assert_eq!(
            (changed, failed, unreachable),
            (0, 0, 0),
            "{name}: {again:#}"
        );
    }
    assert_eq!((server.gets(AWS_JAR), server.gets(SDK_JAR)), (1, 1));

    // A jar that does not match its published checksum is refused on the controller (exit 4)
    // before any host is touched: the Hadoop 3.3.4 line's jars, with a tampered SDK bundle.
    let v1_aws = jar(
        &work
            .path()
            .join("m2/org/apache/hadoop/hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar"),
        "stand-in 3.3.4",
    );
    std::fs::write(
        work.path()
            .join("m2/org/apache/hadoop/hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar.sha1"),
        sha1_hex(&v1_aws),
    )
    .expect("sha1");
    let bundle_dir = work
        .path()
        .join("m2/com/amazonaws/aws-java-sdk-bundle/1.12.262");
    let published = jar(
        &bundle_dir.join("aws-java-sdk-bundle-1.12.262.jar"),
        "what the repository signed",
    );
    std::fs::write(
        bundle_dir.join("aws-java-sdk-bundle-1.12.262.jar.sha1"),
        sha1_hex(&published),
    )
    .expect("sha1");
    jar(
        &bundle_dir.join("aws-java-sdk-bundle-1.12.262.jar"),
        "something else",
    );
    let before = lab.sh(
        &cfg,
        "lab-worker-1",
        "sha256sum /opt/spark/conf/spark-defaults.conf",
    );
    let bad = lab.lab_dir().join("s3a-tampered.toml");
    std::fs::write(
        &bad,
        format!("{base}s3a = true\nhadoop_version = \"3.3.4\"\nmaven_repository = \"http://{SERVER}:{PORT}/m2\"\n"),
    )
    .expect("config");
    let out = lab.run("converge", &bad, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("checksum mismatch")
            && said.contains("aws-java-sdk-bundle-1.12.262.jar")
            && said.contains(&sha1_hex(&published)),
        "{said}"
    );
    for node in nodes {
        assert_eq!(
            installed(&lab, &cfg, node, "hadoop-aws-3.3.4.jar"),
            "absent",
            "{node}"
        );
        assert_eq!(
            installed(&lab, &cfg, node, "aws-java-sdk-bundle-1.12.262.jar"),
            "absent",
            "{node}"
        );
    }
    assert_eq!(
        lab.sh(
            &cfg,
            "lab-worker-1",
            "sha256sum /opt/spark/conf/spark-defaults.conf"
        ),
        before,
        "nothing changed on the nodes"
    );
    let cached: Vec<String> = std::fs::read_dir(lab.lab_dir().join("state/cache/jars"))
        .expect("the controller's jar cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("aws-java-sdk-bundle"))
        .collect();
    assert!(cached.is_empty(), "the refused jar was cached: {cached:?}");

    // A Hadoop version this Spark does not carry (jars that verify, but would not match): the
    // check on the node fails before any jar or config is touched (a host failure, exit 2).
    let v343 = jar(
        &work
            .path()
            .join("m2/org/apache/hadoop/hadoop-aws/3.4.3/hadoop-aws-3.4.3.jar"),
        "stand-in 3.4.3",
    );
    std::fs::write(
        work.path()
            .join("m2/org/apache/hadoop/hadoop-aws/3.4.3/hadoop-aws-3.4.3.jar.sha1"),
        sha1_hex(&v343),
    )
    .expect("sha1");
    let mismatch = lab.lab_dir().join("s3a-mismatch.toml");
    std::fs::write(
        &mismatch,
        format!("{base}s3a = true\nhadoop_version = \"3.4.3\"\nmaven_repository = \"http://{SERVER}:{PORT}/m2\"\n"),
    )
    .expect("config");
    let out = lab.run("converge", &mismatch, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("/opt/spark-4.3.0-bin-hadoop3/jars/hadoop-client-api-3.4.3.jar is missing, so the S3A connector for Hadoop 3.4.3 would not match"),
        "{}",
        text(&out)
    );
    for node in nodes {
        assert_eq!(
            installed(&lab, &cfg, node, "hadoop-aws-3.4.3.jar"),
            "absent",
            "{node}"
        );
    }
    assert_eq!(
        lab.sh(
            &cfg,
            "lab-worker-1",
            "sha256sum /opt/spark/conf/spark-defaults.conf"
        ),
        before,
        "the config was not touched"
    );

    eprintln!(
        "s3a test: first converge {first_secs:.1} s, second {again_secs:.1} s, jar GETs {}+{}, total {:.1} s",
        server.gets(AWS_JAR),
        server.gets(SDK_JAR),
        started.elapsed().as_secs_f64()
    );
}
