//! The shared harness of the AWS tests: a moto server per test (its own port, ended by PID), the
//! standard AWS variables pointing sparkboot at it, the test's own SDK clients to drive the
//! emulated account (scale events, stops, terminations), and `sparkboot inventory` parsing; and
//! the setup steps the tests share: an emulated cluster made with the SDK, a Terraform example
//! applied to moto, lab nodes at exactly the discovered addresses, and the `demo` role's config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::Instant;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
    Tag, TagSpecification,
};
use serde_json::{json, Value};

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

    /// `sparkboot ARGS --config CONFIG --inventory SPEC` with this server's variables.
    pub fn sparkboot_on(&self, args: &[&str], config: &Path, spec: &str) -> Output {
        let mut all = args.to_vec();
        all.extend([
            "--config",
            config.to_str().expect("utf-8"),
            "--inventory",
            spec,
        ]);
        self.sparkboot(&all)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP client the test's SDK clients use: the crates are built without a default one
/// (Cargo.toml), so the tests configure the same rustls-on-ring client sparkboot does.
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
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
            .http_client(http_client())
            .credentials_provider(creds.clone())
            .build();
        let asg = aws_sdk_autoscaling::Config::builder()
            .behavior_version(bv)
            .region(region.clone())
            .endpoint_url(endpoint)
            .http_client(http_client())
            .credentials_provider(creds.clone())
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(bv)
            .region(region.clone())
            .endpoint_url(endpoint)
            .http_client(http_client())
            .credentials_provider(creds.clone())
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(bv)
            .region(region)
            .endpoint_url(endpoint)
            .http_client(http_client())
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

    /// A VPC at `cidr` with one subnet at `subnet_cidr` in us-east-1a: (VPC ID, subnet ID).
    pub fn network(&self, cidr: &str, subnet_cidr: &str) -> (String, String) {
        let vpc_id = self
            .rt
            .block_on(self.ec2.create_vpc().cidr_block(cidr).send())
            .expect("vpc")
            .vpc()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .expect("vpc id");
        let subnet = self.ec2.create_subnet().vpc_id(&vpc_id);
        let subnet_id = self
            .rt
            .block_on(
                subnet
                    .cidr_block(subnet_cidr)
                    .availability_zone("us-east-1a")
                    .send(),
            )
            .expect("subnet")
            .subnet()
            .and_then(|s| s.subnet_id())
            .map(str::to_string)
            .expect("subnet id");
        (vpc_id, subnet_id)
    }

    /// One tagged master of `cluster` in `subnet_id` (and security group `sg`, if any): (instance
    /// ID, private IP).
    pub fn run_master(&self, cluster: &str, subnet_id: &str, sg: Option<&str>) -> (String, String) {
        let master = self
            .rt
            .block_on(
                self.ec2
                    .run_instances()
                    .image_id(AMI)
                    .instance_type(InstanceType::T3Micro)
                    .min_count(1)
                    .max_count(1)
                    .subnet_id(subnet_id)
                    .set_security_group_ids(sg.map(|g| vec![g.to_string()]))
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Instance)
                            .set_tags(Some(tags(cluster, "master")))
                            .build(),
                    )
                    .send(),
            )
            .expect("master");
        let m = &master.instances()[0];
        (
            m.instance_id().expect("master id").to_string(),
            m.private_ip_address().expect("master ip").to_string(),
        )
    }

    /// A launch template `name` whose instances are tagged workers of `cluster` (in security
    /// group `sg`, if any).
    pub fn worker_template(&self, name: &str, cluster: &str, sg: Option<&str>) {
        let data = RequestLaunchTemplateData::builder()
            .image_id(AMI)
            .instance_type(InstanceType::T3Micro)
            .set_security_group_ids(sg.map(|g| vec![g.to_string()]))
            .tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags(cluster, "worker")))
                    .build(),
            )
            .build();
        self.rt
            .block_on(
                self.ec2
                    .create_launch_template()
                    .launch_template_name(name)
                    .launch_template_data(data)
                    .send(),
            )
            .expect("launch template");
    }

    /// An Auto Scaling group `name` wanting 2 instances (0 to `max`) of `template` at `version`
    /// in `subnet_id`, with `tags` (when there are any) propagated at launch.
    pub fn worker_group(
        &self,
        name: &str,
        template: &str,
        version: &str,
        max: i32,
        subnet_id: &str,
        tags: &[Tag],
    ) {
        let group_tags: Vec<AsgTag> = tags
            .iter()
            .map(|t| {
                AsgTag::builder()
                    .key(t.key().unwrap_or_default())
                    .value(t.value().unwrap_or_default())
                    .propagate_at_launch(true)
                    .build()
            })
            .collect();
        let create = self
            .asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(template)
                    .version(version)
                    .build(),
            )
            .min_size(0)
            .max_size(max)
            .desired_capacity(2)
            .vpc_zone_identifier(subnet_id)
            .set_tags((!group_tags.is_empty()).then_some(group_tags));
        self.rt.block_on(create.send()).expect("group");
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

/// The tags sparkboot discovers a node of `cluster` in `role` by.
pub fn tags(cluster: &str, role: &str) -> Vec<Tag> {
    [("sparkboot:cluster", cluster), ("sparkboot:role", role)]
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// A test's working directory, named `prefix` and a random suffix, removed when dropped.
pub fn workdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
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

/// `terraform apply -auto-approve -input=false -no-color VARS` in `dir`.
pub fn terraform_apply(moto: &Moto, dir: &Path, vars: &[&str]) -> Output {
    let mut args = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
    args.extend_from_slice(vars);
    terraform(moto, dir, &args)
}

/// `terraform output -json` in `dir`, parsed.
pub fn terraform_outputs(moto: &Moto, dir: &Path) -> Value {
    serde_json::from_slice(&terraform(moto, dir, &["output", "-json"]).stdout).expect("outputs")
}

/// examples/complete's variables for `cluster` in one loopback VPC and subnet: two workers, no
/// public addresses.
pub fn complete_vars(cluster: &str, vpc_cidr: &str, subnet_cidr: &str) -> Value {
    json!({
        "cluster_name": cluster, "vpc_cidr": vpc_cidr, "subnet_cidrs": [subnet_cidr],
        "admin_cidrs": ["127.0.0.1/32"], "associate_public_ip_address": false,
        "ami_id": AMI, "ssh_user": "ec2-user", "worker_desired_capacity": 2, "force_destroy": true,
    })
}

/// Writes `vars` and the provider settings that point at moto to `work`/moto.tfvars.json, then
/// runs `terraform init` and `apply` in `example`, logging the apply's time under `label` if any.
pub fn apply_example(moto: &Moto, work: &Path, example: &Path, vars: Value, label: Option<&str>) {
    let mut tfvars = json!({
        "aws_endpoint": moto.endpoint, "region": REGION,
        "skip_credentials_validation": true, "skip_metadata_api_check": true,
        "skip_requesting_account_id": true, "s3_use_path_style": true,
    });
    let Value::Object(vars) = vars else {
        panic!("tfvars must be an object: {vars}")
    };
    tfvars.as_object_mut().expect("object").extend(vars);
    let file = work.join("moto.tfvars.json");
    std::fs::write(&file, tfvars.to_string()).expect("tfvars");
    terraform(moto, example, &["init", "-input=false", "-no-color"]);
    let applied = Instant::now();
    terraform_apply(moto, example, &[&format!("-var-file={}", file.display())]);
    if let Some(label) = label {
        eprintln!(
            "{label}: moto apply took {:.1}s",
            applied.elapsed().as_secs_f64()
        );
    }
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

/// `sparkboot inventory --json`, which must succeed.
pub fn inventory_out(moto: &Moto, config: &Path, spec: &str) -> Output {
    let out = moto.sparkboot_on(&["inventory", "--json"], config, spec);
    assert!(out.status.success(), "inventory failed:\n{}", text(&out));
    out
}

/// The document `sparkboot inventory --json` prints, which must succeed.
pub fn inventory_json(moto: &Moto, config: &Path, spec: &str) -> Value {
    json(&inventory_out(moto, config, spec))
}

/// A host of `inventory --json` as (name, address).
pub fn name_address(host: &Value) -> (String, String) {
    let field = |k: &str| host[k].as_str().unwrap_or_default().to_string();
    (field("name"), field("address"))
}

/// `sparkboot inventory --json`: (master address, workers as (name, address)), and stderr.
pub fn inventory(
    moto: &Moto,
    config: &Path,
    spec: &str,
) -> (String, Vec<(String, String)>, String) {
    let out = inventory_out(moto, config, spec);
    let doc = json(&out);
    let hosts = doc["hosts"].as_array().expect("hosts");
    let workers = hosts
        .iter()
        .filter(|h| h["role"] == "worker")
        .map(name_address)
        .collect();
    (
        name_address(&hosts[0]).1,
        workers,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn ids(workers: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> = workers.iter().map(|w| w.0.clone()).collect();
    v.sort();
    v
}

/// The Spark archive the lab's server publishes (in the cache), for `file://` sources.
pub fn lab_spark() -> PathBuf {
    cache().join("lab-spark").join(spark_tarball())
}

/// The SHA-512 (hex) the lab publishes beside its Spark archive.
pub fn lab_spark_sha512() -> String {
    std::fs::read_to_string(lab_spark().with_extension("tgz.sha512"))
        .expect("lab .sha512")
        .split_whitespace()
        .next()
        .expect("sha512")
        .to_string()
}

/// A lab with no node yet (see `serve` and `add_node`), torn down when dropped.
pub fn empty_lab() -> Lab {
    Lab {
        dir: workdir("sparkboot-test-"),
        first_address: String::new(),
    }
}

/// Writes a config at `path` that applies the fixture `demo` role (with `secret`) to cluster
/// `name` on `lab`'s nodes, state in `state`: `sections` go before `[aws]`, `aws_keys` in it.
pub fn demo_config(
    path: &Path,
    name: &str,
    secret: &str,
    state: &Path,
    lab: &Lab,
    sections: &str,
    aws_keys: &str,
) {
    let fx = fixtures();
    std::fs::write(
        path,
        format!(
            "roles = [\"demo\"]\nroles_dir = {:?}\ntemplates_dir = {:?}\n[vars]\ndemo_secret = \"{secret}\"\n[cluster]\nname = \"{name}\"\nstate_dir = {:?}\n{sections}[aws]\nidentity_file = {:?}\n{aws_keys}",
            fx.join("roles"),
            fx.join("templates"),
            state,
            lab.lab_dir().join("id_ed25519"),
        ),
    )
    .expect("config");
}

/// Panics unless the master and every worker are at addresses starting with `prefix`.
pub fn assert_within(prefix: &str, master: &str, workers: &[(String, String)]) {
    for a in std::iter::once(master).chain(workers.iter().map(|w| w.1.as_str())) {
        assert!(
            a.starts_with(prefix),
            "discovery returned {a}, outside the test's loopback subnet {prefix}"
        );
    }
}

/// Lab nodes at exactly these addresses: `lab up --workers 0 UP_ARGS` at the master's, then a
/// node per worker, named by its instance ID.
pub fn serve(lab: &Lab, master: &str, workers: &[(String, String)], up_args: &[&str]) {
    let mut up = vec!["up", "--workers", "0"];
    up.extend_from_slice(up_args);
    up.extend(["--first-address", master]);
    let out = lab.lab(&up);
    assert!(out.status.success(), "lab up:\n{}", text(&out));
    for (id, address) in workers {
        add_node(lab, id, address);
    }
}

/// `lab add`: one more lab node at `address`, named `id`.
pub fn add_node(lab: &Lab, id: &str, address: &str) {
    let add = lab.lab(&["add", "--address", address, "--name", id]);
    assert!(add.status.success(), "lab add:\n{}", text(&add));
}
