//! `terraform/examples/private-workers` applied to moto, and `converge` reaching every worker
//! only through the master as the SSH jump host.
//!
//! The example gives the master a public address and the workers none. On AWS,
//! `[aws] jump_host = "master"` reaches the workers through the master's public address. moto
//! makes that public address up (it is not on this machine, and nothing may ever be sent to
//! it), so the test checks what `"master"` resolves to without connecting, and then converges
//! with the master's *private* address as the jump host (`jump_host = "ec2-user@<master private
//! IP>:22"`), which a lab node serves: the path is the same (one SSH session to the master,
//! a forwarded channel from it to each worker), only the master's address differs. The
//! master's sshd log shows the channel to every worker. VPC 127.154.0.0/16, used by no other
//! test.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::harness::{copy_module, terraform, Moto, AMI, REGION};
use crate::common::*;

const CLUSTER: &str = "sb-private-jump";
const PUBLIC: &str = "127.154.0.";
const PRIVATE: &str = "127.154.1.";

fn inventory_json(moto: &Moto, config: &Path, spec: &str) -> Value {
    let out = moto.sparkboot(&[
        "inventory",
        "--json",
        "--config",
        config.to_str().expect("utf-8"),
        "--inventory",
        spec,
    ]);
    assert!(out.status.success(), "inventory failed:\n{}", text(&out));
    json(&out)
}

#[test]
fn private_workers_example_converges_through_the_master() {
    require_root();
    let t0 = Instant::now();
    let moto = Moto::start();
    let work = tempfile::Builder::new()
        .prefix("sparkboot-private-")
        .tempdir()
        .expect("tempdir");
    copy_module(work.path());
    let example = work.path().join("terraform/examples/private-workers");
    let vars = work.path().join("moto.tfvars.json");
    let tfvars = serde_json::json!({
        "aws_endpoint": moto.endpoint, "region": REGION,
        "skip_credentials_validation": true, "skip_metadata_api_check": true,
        "skip_requesting_account_id": true, "s3_use_path_style": true,
        "cluster_name": CLUSTER, "vpc_cidr": "127.154.0.0/16",
        "public_subnet_cidr": "127.154.0.0/24", "private_subnet_cidrs": ["127.154.1.0/24"],
        "admin_cidrs": ["127.0.0.1/32"], "ami_id": AMI, "ssh_user": "ec2-user",
        "worker_desired_capacity": 2, "worker_on_demand_base_capacity": 1,
        // The example's default attaches an AWS managed policy, which moto only knows when
        // started with its managed policies loaded (slow); tests/terraform/run.sh covers it.
        "node_role_policy_arns": {}, "force_destroy": true,
    });
    std::fs::write(&vars, tfvars.to_string()).expect("tfvars");
    terraform(&moto, &example, &["init", "-input=false", "-no-color"]);
    let applied = Instant::now();
    let var_file = format!("-var-file={}", vars.display());
    terraform(
        &moto,
        &example,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_file,
        ],
    );
    eprintln!(
        "private workers: moto apply took {:.1}s",
        applied.elapsed().as_secs_f64()
    );
    let spec = format!("terraform:{}", example.display());
    let lab = Lab {
        dir: tempfile::Builder::new()
            .prefix("sparkboot-test-")
            .tempdir()
            .expect("tempdir"),
        first_address: String::new(),
    };
    let fx = fixtures();
    let config = |name: &str, jump: Option<&str>| {
        let path = work.path().join(name);
        std::fs::write(
            &path,
            format!(
                "roles = [\"demo\"]\nroles_dir = {:?}\ntemplates_dir = {:?}\n[vars]\ndemo_secret = \"private-secret-0123456789\"\n[cluster]\nname = \"{CLUSTER}\"\nstate_dir = {:?}\n[aws]\nidentity_file = {:?}\n{}",
                fx.join("roles"),
                fx.join("templates"),
                work.path().join("state"),
                lab.lab_dir().join("id_ed25519"),
                jump.map(|j| format!("jump_host = {j:?}\n"))
                    .unwrap_or_default(),
            ),
        )
        .expect("config");
        path
    };

    // What `jump_host = "master"` means here: the master's public address, for every host. On
    // moto that address is made up and not on this machine: it is only read, never contacted.
    let by_master = config("by-master.toml", Some("master"));
    let doc = inventory_json(&moto, &by_master, &spec);
    let hosts = doc["hosts"].as_array().expect("hosts").clone();
    let public = hosts[0]["vars"]["public_ip"]
        .as_str()
        .expect("the example gives the master a public address")
        .to_string();
    assert!(
        !public.starts_with("127."),
        "moto's public address {public} is not a lab address"
    );
    assert!(
        hosts.iter().all(|h| h["jump_host"] == public.as_str()),
        "{doc}"
    );
    let master = hosts[0]["address"].as_str().expect("master").to_string();
    let workers: Vec<(String, String)> = hosts[1..]
        .iter()
        .map(|h| {
            assert!(
                h["vars"]["public_ip"].is_null(),
                "a worker has a public address: {h}"
            );
            (
                h["name"].as_str().unwrap_or_default().to_string(),
                h["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(workers.len(), 2, "{doc}");
    assert!(master.starts_with(PUBLIC), "master at {master}");
    for (_, a) in &workers {
        assert!(a.starts_with(PRIVATE), "worker at {a}");
    }

    // Lab nodes at exactly those private addresses.
    let up = lab.lab(&[
        "up",
        "--workers",
        "0",
        "--no-spark",
        "--first-address",
        &master,
    ]);
    assert!(up.status.success(), "lab up:\n{}", text(&up));
    for (id, address) in &workers {
        let add = lab.lab(&["add", "--address", address, "--name", id]);
        assert!(add.status.success(), "lab add:\n{}", text(&add));
    }
    // The master's sshd logs forwarded channels, so the test can see the tunnels.
    let direct = config("direct.toml", None);
    lab.sh(
        &direct,
        "lab-master",
        "echo 'LogLevel DEBUG1' > /etc/ssh/sshd_config.d/01-debug.conf && kill -HUP $(cat /run/sshd.pid) && sleep 0.5",
    );

    // Converge through the master, by its private address.
    let jump = format!("ec2-user@{master}:22");
    let through = config("through-master.toml", Some(&jump));
    let doc = inventory_json(&moto, &through, &spec);
    assert!(
        doc["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .all(|h| h["jump_host"] == jump.as_str()),
        "{doc}"
    );
    let started = Instant::now();
    let out = moto.sparkboot(&[
        "converge",
        "--json",
        "--config",
        through.to_str().expect("utf-8"),
        "--inventory",
        &spec,
    ]);
    eprintln!(
        "private workers: converge took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let counted = counts(&report);
    assert_eq!(counted.len(), 3, "{report}");
    for (name, _, changed, failed, unreachable) in counted {
        assert!(
            changed >= 5 && failed == 0 && unreachable == 0,
            "{name} was not converged through the master: {report}"
        );
    }
    let log = lab.sh(
        &direct,
        "lab-master",
        "grep direct_tcpip /var/log/sshd-lab.log || true",
    );
    for (id, address) in &workers {
        assert!(
            log.contains(&format!("target {address} port 22")),
            "no channel to {id} ({address}) in the master's sshd log:\n{log}"
        );
    }
    eprintln!("private workers: {:.1}s in all", t0.elapsed().as_secs_f64());
}
