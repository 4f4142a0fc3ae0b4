//! The cloud inventory sources and the S3 distribution mode, against a real moto server, real
//! Terraform and real lab nodes ("rehearse locally" in the README).
//!
//! Network safety: moto listens on 127.0.0.1, every VPC is a loopback range (127.150/16 to
//! 127.154/16, one per test, used by no other test), Terraform's proxy variables point anything
//! not bound for 127.0.0.1 at a closed local port, and sparkboot connects only after a lab node
//! serves every address discovery returned (the test checks the range before creating them).
//! Public addresses moto makes up are reported, never contacted.

mod e2e;
mod harness;
mod private_workers;
mod s3_resume;
mod shim;
mod terraform_source;
mod watch;

use crate::common::*;
use harness::{ids, inventory, inventory_json, tags, Aws, Moto, REGION};

#[test]
fn aws_discovery_follows_the_auto_scaling_group() {
    let moto = Moto::start();
    let aws = Aws::new(&moto.endpoint);
    let rt = &aws.rt;
    let (_, subnet_id) = aws.network("127.151.0.0/16", "127.151.1.0/24");
    let (_, master_ip) = aws.run_master("disc", &subnet_id, None);
    aws.worker_template("disc-worker", "disc", None);
    aws.worker_group(
        "disc-workers",
        "disc-worker",
        "$Latest",
        300,
        &subnet_id,
        &tags("disc", "worker"),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sparkboot.toml");
    let body = format!("[cluster]\nname = \"disc\"\nstate_dir = {:?}\n[aws]\nregion = \"{REGION}\"\nssh_user = \"ec2-user\"\nidentity_file = \"key\"\n", dir.path().join("state"));
    std::fs::write(&config, &body).expect("config");
    let in_service = |aws: &Aws| {
        let mut v: Vec<String> = aws
            .members("disc-workers")
            .into_iter()
            .filter(|m| m.1 == "InService")
            .map(|m| m.0)
            .collect();
        v.sort();
        v
    };

    // The master by its tags, the workers from the group; all in the loopback VPC.
    let (m, workers, _) = inventory(&moto, &config, "aws");
    assert_eq!(m, master_ip);
    assert_eq!(ids(&workers), in_service(&aws));
    assert_eq!(workers.len(), 2);
    assert!(
        workers
            .iter()
            .all(|w| w.0.starts_with("i-") && w.1.starts_with("127.151.1.")),
        "{workers:?}"
    );
    let doc = inventory_json(&moto, &config, "aws");
    assert_eq!(doc["hosts"][1]["user"], "ec2-user");
    assert_eq!(
        doc["hosts"][1]["identity_file"],
        dir.path().join("key").display().to_string()
    );

    // Scale out, then in.
    aws.set_capacity("disc-workers", 5);
    let (_, workers, _) = inventory(&moto, &config, "aws");
    assert_eq!((workers.len(), ids(&workers)), (5, in_service(&aws)));
    aws.set_capacity("disc-workers", 1);
    let (_, workers, _) = inventory(&moto, &config, "aws");
    assert_eq!((workers.len(), ids(&workers)), (1, in_service(&aws)));

    // A terminated worker leaves the inventory (moto's group replaces it, as AWS does).
    let gone = workers[0].0.clone();
    rt.block_on(aws.ec2.terminate_instances().instance_ids(&gone).send())
        .expect("terminate");
    let (_, workers, _) = inventory(&moto, &config, "aws");
    assert_eq!(workers.len(), 1);
    assert!(
        !ids(&workers).contains(&gone),
        "terminated {gone} still listed"
    );

    // Not converged, with a note: an instance EC2 reports stopped, and one the group holds in a
    // state other than InService (moto offers Standby; Pending and Terminating take the same
    // path, and the unit tests in src/inventory/aws/discover.rs cover their names).
    let stopped = workers[0].0.clone();
    rt.block_on(aws.ec2.stop_instances().instance_ids(&stopped).send())
        .expect("stop");
    aws.set_capacity("disc-workers", 3);
    let fresh: Vec<String> = in_service(&aws)
        .into_iter()
        .filter(|i| *i != stopped)
        .collect();
    let standby = aws
        .asg
        .enter_standby()
        .auto_scaling_group_name("disc-workers")
        .instance_ids(&fresh[0])
        .should_decrement_desired_capacity(true);
    rt.block_on(standby.send()).expect("enter standby");
    let (_, workers, notes) = inventory(&moto, &config, "aws");
    assert_eq!(ids(&workers), vec![fresh[1].clone()], "{notes}");
    assert!(
        notes.contains(&format!("left out {stopped}: EC2 reports it stopped")),
        "{notes}"
    );
    assert!(
        notes.contains(&format!(
            "left out {}: its Auto Scaling lifecycle state is Standby",
            fresh[0]
        )),
        "{notes}"
    );

    // Pagination: one launch per scale step makes more reservations than moto returns in one
    // DescribeInstances page (100), so every worker is found only by following NextToken.
    let start = aws.members("disc-workers").len() as i32 - 1;
    for n in start + 1..=start + 110 {
        aws.set_capacity("disc-workers", n);
    }
    let (_, workers, notes) = inventory(&moto, &config, "aws");
    let expected: Vec<String> = in_service(&aws)
        .into_iter()
        .filter(|i| *i != stopped)
        .collect();
    assert_eq!(workers.len(), 111, "{notes}");
    assert_eq!(ids(&workers), expected);
    assert!(!notes.contains("EC2 does not"), "{notes}");
    aws.set_capacity("disc-workers", 0);

    // Clear errors for a missing group and a missing master, before any connection: a failed
    // discovery exits 5.
    std::fs::write(&config, format!("{body}asg = \"nope\"\n")).expect("config");
    let out = moto.sparkboot_on(&["inventory"], &config, "aws");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("no Auto Scaling group named \"nope\""),
        "{}",
        text(&out)
    );
    std::fs::write(&config, body.replace("name = \"disc\"", "name = \"ghost\"")).expect("config");
    let out = moto.sparkboot_on(&["inventory"], &config, "aws");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("no running master") && text(&out).contains("sparkboot:cluster=ghost"),
        "{}",
        text(&out)
    );
    let out = moto.sparkboot_on(&["inventory"], &config, "terraform:/nonexistent");
    assert!(text(&out).contains("is not a directory"), "{}", text(&out));
}
