//! `--inventory terraform:DIR` trusts the Terraform state no further than it must: the master it
//! records is confirmed in EC2 (running, at its current address) before anything connects, a
//! workers' group short of its desired capacity is reported with the numbers and the reason AWS
//! gives (on stderr and in `converge --json`'s notes), and the Terraform binary is configurable.
//!
//! The cluster is made with the SDK in moto (VPC 127.153.0.0/16, used by no other test), and a
//! root module whose only content is the `sparkboot_inventory` output, shaped like the module's,
//! is applied with real Terraform: a real state in a second, with no provider. moto records no
//! scaling activities (a failed launch is only an error to the caller of SetDesiredCapacity), so
//! the warning's numbers are checked here against moto, and its quoting of AWS's reasons by the
//! unit tests in src/inventory/aws/discover.rs; the pass-through in shim.rs shows that discovery
//! asked for the activities.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use aws_sdk_ec2::types::RequestLaunchTemplateData;

use super::harness::{
    assert_within, demo_config, empty_lab, inventory_out, name_address, serve, terraform,
    terraform_apply, workdir, Aws, Moto,
};
use super::shim::MotoShim;
use crate::common::*;

const CLUSTER: &str = "sb-tfsrc";
/// Nothing else uses this /16.
const SUBNET: &str = "127.153.1.";
const GROUP: &str = "sb-tfsrc-workers";
/// What the state says the master's address is; EC2 says otherwise.
const STALE_IP: &str = "127.153.1.250";

/// The module's `sparkboot_inventory` output (schema 1) and nothing else.
const ROOT_MODULE: &str = r#"
variable "master_id" { type = string }
variable "master_ip" { type = string }
variable "asg" { type = string }

output "sparkboot_inventory" {
  value = {
    schema       = 1
    cluster_name = "sb-tfsrc"
    region       = "us-east-1"
    ssh_user     = "ec2-user"
    master = {
      instance_id = var.master_id
      private_ip  = var.master_ip
      public_ip   = null
      dns_name    = "master.sb-tfsrc.sparkboot.internal"
    }
    workers = {
      asg_name = var.asg
      tags     = { "sparkboot:cluster" = "sb-tfsrc", "sparkboot:role" = "worker" }
    }
    bucket         = null
    queue_url      = null
    launch_hook    = null
    terminate_hook = null
  }
}
"#;

/// VPC, subnet, security group, a master and a two-worker group; returns the master's ID and
/// private IP, the subnet's VPC and the launch template's name.
fn build(aws: &Aws) -> (String, String, String, String) {
    let (vpc_id, subnet_id) = aws.network("127.153.0.0/16", "127.153.1.0/24");
    let sg = aws
        .rt
        .block_on(
            aws.ec2
                .create_security_group()
                .group_name("sb-tfsrc-nodes")
                .description("nodes")
                .vpc_id(&vpc_id)
                .send(),
        )
        .expect("security group");
    let sg_id = sg.group_id().expect("group id");
    let (master_id, master_ip) = aws.run_master(CLUSTER, &subnet_id, Some(sg_id));
    let template = "sb-tfsrc-worker";
    aws.worker_template(template, CLUSTER, Some(sg_id));
    aws.worker_group(GROUP, template, "$Default", 10, &subnet_id, &[]);
    (master_id, master_ip, vpc_id, template.to_string())
}

/// Applies the root module with the master `id` recorded at `ip`.
fn record(moto: &Moto, dir: &Path, id: &str, ip: &str) {
    terraform_apply(
        moto,
        dir,
        &[
            &format!("-var=master_id={id}"),
            &format!("-var=master_ip={ip}"),
            &format!("-var=asg={GROUP}"),
        ],
    );
}

/// sparkboot with moto's variables plus `env`.
fn run(moto: &Moto, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    moto.env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run sparkboot")
}

#[test]
fn terraform_source_confirms_the_master_and_reports_missing_workers() {
    require_root();
    let t0 = Instant::now();
    let moto = Moto::start();
    let aws = Aws::new(&moto.endpoint);
    let (master_id, master_ip, _vpc, template) = build(&aws);
    assert!(master_ip.starts_with(SUBNET), "{master_ip}");

    let work = workdir("sparkboot-tfsrc-");
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).expect("root module dir");
    std::fs::write(root.join("main.tf"), ROOT_MODULE).expect("main.tf");
    terraform(&moto, &root, &["init", "-input=false", "-no-color"]);
    record(&moto, &root, &master_id, STALE_IP);
    let spec = format!("terraform:{}", root.display());

    // [aws] terraform names the binary: a wrapper that logs its arguments, then runs terraform.
    let wrapper = work.path().join("tf-wrapper");
    let calls = work.path().join("tf-calls.log");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec terraform \"$@\"\n",
            calls.display()
        ),
    )
    .expect("wrapper");
    std::process::Command::new("chmod")
        .args(["0755", &wrapper.display().to_string()])
        .status()
        .expect("chmod");
    let lab = empty_lab();
    let config_in = |name: &str, state: &str| {
        let path = work.path().join(name);
        demo_config(
            &path,
            CLUSTER,
            "tfsrc-secret-0123456789",
            &work.path().join(state),
            &lab,
            "[ssh]\nretry_deadline_secs = 3\nconnect_timeout_secs = 3\n",
            &format!("terraform = {:?}\n", wrapper.display().to_string()),
        );
        path
    };
    let config = config_in("sparkboot.toml", "state");
    let cfg = config.to_str().expect("utf-8");

    // The master comes from EC2, at its current address, not the one in the state; the
    // configured binary ran `output -no-color -json`.
    let out = inventory_out(&moto, &config, &spec);
    let doc = json(&out);
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts[0]["address"], master_ip.as_str(), "{}", text(&out));
    assert_eq!(hosts[0]["vars"]["instance_id"], master_id.as_str());
    assert_eq!(hosts[0]["vars"]["instance_type"], "t3.micro");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "the master {master_id} is at {master_ip} in EC2 (the Terraform state says {STALE_IP})"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("warning:"), "no shortfall yet: {stderr}");
    let workers: Vec<(String, String)> = hosts[1..].iter().map(name_address).collect();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let logged = std::fs::read_to_string(&calls).expect("the wrapper ran");
    assert!(
        logged
            .lines()
            .any(|l| l.ends_with("output -no-color -json")),
        "{logged}"
    );

    // SPARKBOOT_TERRAFORM wins over the config, and is checked the same way.
    let out = run(
        &moto,
        &[("SPARKBOOT_TERRAFORM", "/nonexistent/tofu")],
        &["inventory", "--config", cfg, "--inventory", &spec],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("`/nonexistent/tofu` (SPARKBOOT_TERRAFORM) is not found"),
        "{}",
        text(&out)
    );
    let out = run(
        &moto,
        &[("SPARKBOOT_TERRAFORM", "bin/tofu")],
        &["inventory", "--config", cfg, "--inventory", &spec],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("SPARKBOOT_TERRAFORM"), "{}", text(&out));

    // Lab nodes serve exactly the discovered addresses before anything connects.
    assert_within(SUBNET, &master_ip, &workers);
    serve(&lab, &master_ip, &workers, &["--no-spark"]);

    // Launches start failing: the launch template's default version now names a security
    // group that does not exist. The group wants 4 workers and keeps 2. moto tells only the
    // caller of SetDesiredCapacity why; AWS would also record it as failed scaling activities,
    // which moto does not.
    let bad = RequestLaunchTemplateData::builder()
        .security_group_ids("sg-0123456789abcdef0")
        .build();
    aws.rt
        .block_on(
            aws.ec2
                .create_launch_template_version()
                .launch_template_name(&template)
                .source_version("1")
                .launch_template_data(bad)
                .send(),
        )
        .expect("template version 2");
    aws.rt
        .block_on(
            aws.ec2
                .modify_launch_template()
                .launch_template_name(&template)
                .default_version("2")
                .send(),
        )
        .expect("default version 2");
    let refused = aws.rt.block_on(
        aws.asg
            .set_desired_capacity()
            .auto_scaling_group_name(GROUP)
            .desired_capacity(4)
            .send(),
    );
    let why = match refused {
        Ok(_) => panic!("moto launched instances with a missing security group"),
        Err(e) => aws_sdk_autoscaling::error::DisplayErrorContext(e).to_string(),
    };
    assert!(why.contains("sg-0123456789abcdef0"), "{why}");
    let members = aws.members(GROUP);
    assert_eq!(members.len(), 2, "{members:?}");
    let proxy = MotoShim::start(&moto.endpoint);
    let via_proxy = [("AWS_ENDPOINT_URL_AUTO_SCALING", proxy.endpoint.as_str())];
    let expected = format!(
        "the workers' group {GROUP} wants 4 worker(s) (desired capacity) but 2 are InService and running: 2 missing; the group's latest scaling activities show no failed or unfinished launch"
    );
    let out = run(
        &moto,
        &via_proxy,
        &["inventory", "--config", cfg, "--inventory", &spec],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!("sparkboot: warning: {expected}")),
        "{stderr}"
    );
    let asked = proxy.asked.lock().expect("asked").clone();
    assert!(
        asked
            .iter()
            .any(|b| b.contains(&format!("AutoScalingGroupName={GROUP}"))),
        "{asked:?}"
    );

    // converge carries the warning into --json's notes, and converges the two workers it has.
    let started = Instant::now();
    let out = run(
        &moto,
        &via_proxy,
        &["converge", "--json", "--config", cfg, "--inventory", &spec],
    );
    eprintln!(
        "tfsrc: converge took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["hosts"].as_array().map(Vec::len), Some(3));
    let notes: Vec<&str> = doc["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&format!("warning: {expected}"))),
        "{notes:?}"
    );

    // The master stopped in EC2: a clear error naming it, exit 5, and no connection at all (a
    // fresh state dir gets no known_hosts: nothing was even handshaken with).
    aws.rt
        .block_on(aws.ec2.stop_instances().instance_ids(&master_id).send())
        .expect("stop the master");
    let fresh = config_in("fresh.toml", "fresh-state");
    let out = run(
        &moto,
        &[],
        &[
            "converge",
            "--config",
            fresh.to_str().expect("utf-8"),
            "--inventory",
            &spec,
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the master {master_id} (from the Terraform state) is stopped in EC2; start it"
        )),
        "{}",
        text(&out)
    );
    let state = work.path().join("fresh-state");
    assert!(
        !state.join(CLUSTER).join("known_hosts").exists() && !state.join("known_hosts").exists(),
        "converge connected to a node before failing"
    );

    // A master the state names but EC2 does not know at all.
    record(&moto, &root, "i-0123456789abcdef0", STALE_IP);
    let out = run(
        &moto,
        &[],
        &["inventory", "--config", cfg, "--inventory", &spec],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(
            "the master i-0123456789abcdef0 (from the Terraform state) does not exist in EC2 (region us-east-1)"
        ),
        "{}",
        text(&out)
    );
    eprintln!("tfsrc: {:.1}s in all", t0.elapsed().as_secs_f64());
}
