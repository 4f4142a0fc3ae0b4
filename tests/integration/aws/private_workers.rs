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

use std::time::Instant;

use serde_json::json;

use super::harness::{
    apply_example, copy_module, demo_config, empty_lab, inventory_json, name_address, serve,
    workdir, Moto, AMI,
};
use crate::common::*;

const CLUSTER: &str = "sb-private-jump";
const PUBLIC: &str = "127.154.0.";
const PRIVATE: &str = "127.154.1.";

#[test]
fn private_workers_example_converges_through_the_master() {
    require_root();
    let t0 = Instant::now();
    let moto = Moto::start();
    let work = workdir("sparkboot-private-");
    copy_module(work.path());
    let example = work.path().join("terraform/examples/private-workers");
    let vars = json!({
        "cluster_name": CLUSTER, "vpc_cidr": "127.154.0.0/16",
        "public_subnet_cidr": "127.154.0.0/24", "private_subnet_cidrs": ["127.154.1.0/24"],
        "admin_cidrs": ["127.0.0.1/32"], "ami_id": AMI, "ssh_user": "ec2-user",
        "worker_desired_capacity": 2, "worker_on_demand_base_capacity": 1,
        // The example's default attaches an AWS managed policy, which moto only knows when
        // started with its managed policies loaded (slow); tests/terraform/run.sh covers it.
        "node_role_policy_arns": {}, "force_destroy": true,
    });
    apply_example(&moto, work.path(), &example, vars, Some("private workers"));
    let spec = format!("terraform:{}", example.display());
    let lab = empty_lab();
    let config = |name: &str, jump: Option<&str>| {
        let path = work.path().join(name);
        let jump_host = jump.map(|j| format!("jump_host = {j:?}\n"));
        demo_config(
            &path,
            CLUSTER,
            "private-secret-0123456789",
            &work.path().join("state"),
            &lab,
            "",
            &jump_host.unwrap_or_default(),
        );
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
            name_address(h)
        })
        .collect();
    assert_eq!(workers.len(), 2, "{doc}");
    assert!(master.starts_with(PUBLIC), "master at {master}");
    for (_, a) in &workers {
        assert!(a.starts_with(PRIVATE), "worker at {a}");
    }

    // Lab nodes at exactly those private addresses.
    serve(&lab, &master, &workers, &["--no-spark"]);
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
    let out = moto.sparkboot_on(&["converge", "--json"], &through, &spec);
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
