//! The shared harness of the AWS tests: a moto server per test (its own port, ended by PID), the
//! standard AWS variables pointing sparkboot at it, the test's own SDK clients to drive the
//! emulated account (scale events, stops, terminations), and `sparkboot inventory` parsing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::Instant;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

use crate::common::*;

pub const REGION: &str = "us-east-1";
/// One of moto's built-in images (Amazon Linux 2), as tests/terraform/run.sh uses.
pub const AMI: &str = "ami-04681a1dbd79675a5";

pub fn cache() -> PathBuf {
    std::env::var_os("SPARKBOOT_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/sparkboot"), PathBuf::from)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// moto_server from the venv tests/terraform/run.sh keeps; installed here (moto alone, at the pin
/// in tests/terraform/requirements.txt) when this runs first on a fresh machine.
fn moto_server() -> PathBuf {
    let bin = cache().join("venv/bin/moto_server");
    assert!(
        bin.exists(),
        "{} is missing: run `bash scripts/install-deps` (as root) first; it installs \
         tests/terraform/requirements.txt into that venv, so no test reaches PyPI",
        bin.display()
    );
    bin
}

/// A moto server on a free loopback port, ended by its PID when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// moto's working directory (its request recording is written there), not the checkout.
    _cwd: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cwd = tempfile::tempdir().expect("moto's directory");
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(cwd.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _cwd: cwd,
        };
        let started = Instant::now();
        while ureq::get(&format!("{}/moto-api/", moto.endpoint))
            .call()
            .is_err()
        {
            assert!(
                started.elapsed().as_secs() < 30,
                "moto did not start on {}",
                moto.endpoint
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        moto
    }

    /// The standard AWS variables pointing at this server, with dummy keys and no profile.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for v in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"] {
            cmd.env_remove(v);
        }
        // A per-service endpoint (AWS_ENDPOINT_URL_EC2, ...) from the caller's environment would
        // win over AWS_ENDPOINT_URL and send that service's calls elsewhere.
        for (name, _) in std::env::vars_os() {
            if name
                .to_str()
                .is_some_and(|n| n.starts_with("AWS_ENDPOINT_URL_"))
            {
                cmd.env_remove(&name);
            }
        }
        // A trap: anything that would not go straight to moto on loopback goes to a closed
        // port instead of the network.
        cmd.env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1");
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "TF_CLI_CONFIG_FILE",
                repo().join("tests/terraform/terraformrc"),
            )
    }

    pub fn sparkboot(&self, args: &[&str]) -> Output {
        self.env(&mut Command::new(BIN))
            .args(args)
            .output()
            .expect("run sparkboot")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's own SDK clients (explicit endpoint and keys, nothing from the environment).
pub struct Aws {
    pub rt: tokio::runtime::Runtime,
    pub ec2: aws_sdk_ec2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Aws {
    pub fn new(endpoint: &str) -> Aws {
        let creds = Credentials::new("testing", "testing", None, None, "tests");
        let (bv, region) = (BehaviorVersion::latest(), Region::new(REGION));
        let ec2 = aws_sdk_ec2::Config::builder()
            .behavior_version(bv)
            .region(region.clone())
            .endpoint_url(endpoint)
            .credentials_provider(creds.clone())
            .build();
        let asg = aws_sdk_autoscaling::Config::builder()
            .behavior_version(bv)
            .region(region.clone())
            .endpoint_url(endpoint)
            .credentials_provider(creds.clone())
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(bv)
            .region(region.clone())
            .endpoint_url(endpoint)
            .credentials_provider(creds.clone())
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(bv)
            .region(region)
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        Aws {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            asg: aws_sdk_autoscaling::Client::from_conf(asg),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
        }
    }

    /// Puts a message on a queue, as EventBridge delivers it (the envelope is the body).
    pub fn send(&self, queue: &str, body: &str) {
        let call = self
            .sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send();
        self.rt.block_on(call).expect("sqs send");
    }

    /// The bodies of the messages waiting on a queue (received, then left to come back).
    pub fn peek(&self, queue: &str) -> Vec<String> {
        let call = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(0)
            .send();
        self.rt
            .block_on(call)
            .expect("sqs receive")
            .messages()
            .iter()
            .filter_map(|m| m.body().map(str::to_string))
            .collect()
    }

    pub fn set_capacity(&self, group: &str, n: i32) {
        let call = self
            .asg
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(n)
            .send();
        self.rt.block_on(call).expect("set-desired-capacity");
    }

    /// The group's members as (instance ID, lifecycle state).
    pub fn members(&self, group: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(
                self.asg
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(group)
                    .send(),
            )
            .expect("describe group");
        out.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap_or_default().to_string(),
                    i.lifecycle_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// terraform with the provider mirror, no update check, and a proxy that turns any request not
/// bound for 127.0.0.1 into a refused local connection (so a missed endpoint fails, and sends no
/// packet off this machine).
pub fn terraform(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("terraform");
    moto.env(&mut cmd)
        .arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("TF_DATA_DIR")
        .env_remove("TF_WORKSPACE")
        .env_remove("TF_PLUGIN_CACHE_DIR");
    let out = cmd.output().expect("run terraform (is it on PATH?)");
    assert!(
        out.status.success(),
        "terraform {args:?} failed:\n{}",
        text(&out)
    );
    out
}

/// A working copy of terraform/ without local state, so the repository is never touched.
pub fn copy_module(to: &Path) -> PathBuf {
    let tar = Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" --exclude=.terraform --exclude=.terraform.lock.hcl --exclude='*.tfstate*' -cf - terraform | tar -C \"$2\" -xf -")
        .args(["sh", &repo().display().to_string(), &to.display().to_string()])
        .status()
        .expect("tar");
    assert!(tar.success());
    to.join("terraform/examples/complete")
}

/// `sparkboot inventory --json`: (master address, workers as (name, address)), and stderr.
pub fn inventory(
    moto: &Moto,
    config: &Path,
    spec: &str,
) -> (String, Vec<(String, String)>, String) {
    let out = moto.sparkboot(&[
        "inventory",
        "--json",
        "--config",
        config.to_str().expect("utf-8"),
        "--inventory",
        spec,
    ]);
    assert!(out.status.success(), "inventory failed:\n{}", text(&out));
    let doc = json(&out);
    let hosts = doc["hosts"].as_array().expect("hosts");
    let field = |h: &Value, k: &str| h[k].as_str().unwrap_or_default().to_string();
    let workers = hosts
        .iter()
        .filter(|h| h["role"] == "worker")
        .map(|h| (field(h, "name"), field(h, "address")))
        .collect();
    (
        field(&hosts[0], "address"),
        workers,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn ids(workers: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> = workers.iter().map(|w| w.0.clone()).collect();
    v.sort();
    v
}
