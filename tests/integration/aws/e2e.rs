//! "Rehearse locally" end to end: moto, `terraform apply` of examples/complete in a loopback
//! VPC, lab nodes at the addresses discovery reports, `converge --inventory terraform:DIR` with
//! Spark staged through moto's S3 behind a presigned URL, then a scale event and a re-converge.

use std::path::Path;
use std::time::Instant;

use super::harness::{
    add_node, apply_example, assert_within, complete_vars, copy_module, empty_lab, inventory,
    lab_spark, lab_spark_sha512, serve, terraform_outputs, workdir, Aws, Moto,
};
use crate::common::*;

const CLUSTER: &str = "sb-e2e";
/// Nothing else uses this /16: no lab test, no default lab (127.100/16).
const SUBNET: &str = "127.150.1.";

fn converge(moto: &Moto, config: &Path, spec: &str) -> (serde_json::Value, String) {
    let out = moto.sparkboot_on(&["converge", "--json"], config, spec);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "converge failed:\n{all}");
    for leak in ["X-Amz-Signature", "X-Amz-Credential"] {
        assert!(
            !all.contains(leak),
            "the presigned URL leaked into the output:\n{all}"
        );
    }
    (json(&out), all)
}

fn healthy(moto: &Moto, config: &Path, spec: &str, workers: usize) {
    let out = moto.sparkboot_on(&["status", "--json"], config, spec);
    let doc = json(&out);
    assert_eq!(doc["healthy"], true, "{}", text(&out));
    let alive = doc["master"]["alive_workers"]
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(alive, workers, "{}", text(&out));
}

#[test]
fn rehearse_locally_terraform_moto_lab_and_s3() {
    require_root();
    let t0 = Instant::now();
    let moto = Moto::start();
    let aws = Aws::new(&moto.endpoint);
    let work = workdir("sparkboot-aws-");
    let example = copy_module(work.path());
    let vars = complete_vars(CLUSTER, "127.150.0.0/16", "127.150.1.0/24");
    apply_example(&moto, work.path(), &example, vars, Some("aws e2e"));
    let outputs = terraform_outputs(&moto, &example);
    let tf = &outputs["sparkboot_inventory"]["value"];
    let (asg, bucket) = (
        tf["workers"]["asg_name"].as_str().expect("asg"),
        tf["bucket"].as_str().expect("bucket"),
    );
    // moto enforces the bucket policy, which (rightly) refuses every request without TLS, and
    // moto serves plain HTTP: the rehearsal lifts that one policy. On AWS every request, the
    // nodes' presigned GETs too, is HTTPS and satisfies it.
    aws.rt
        .block_on(aws.s3.delete_bucket_policy().bucket(bucket).send())
        .expect("delete bucket policy");

    // Discovery first; every address must be in the test's loopback range before anything
    // connects, and lab nodes then serve exactly those addresses.
    let lab = empty_lab();
    let config = work.path().join("sparkboot.toml");
    let spec = format!("terraform:{}", example.display());
    let spark = lab_spark();
    let write_config = |sha512: &str| {
        let body = format!(
            "[cluster]\nname = \"{CLUSTER}\"\nstate_dir = {state:?}\n[spark]\nsource = \"file://{src}\"\nsha512 = \"{sha512}\"\ndistribution = \"s3\"\nregistration_timeout_secs = 120\n# No Maven repository on this machine: the S3A connector (on by default with this\n# bucket-carrying inventory) stays off.\ns3a = false\n[aws]\nidentity_file = {key:?}\n",
            state = work.path().join("state"),
            src = spark.display(),
            key = lab.lab_dir().join("id_ed25519"),
        );
        std::fs::write(&config, body).expect("config");
    };
    write_config(&"0".repeat(128));
    let (master, workers, _) = inventory(&moto, &config, &spec);
    assert_eq!(workers.len(), 2);
    assert_within(SUBNET, &master, &workers);
    serve(&lab, &master, &workers, &[]);
    let published = lab_spark_sha512();
    write_config(&published);

    // Converge: Spark goes up, staged once in the cluster bucket, fetched by presigned URL.
    let started = Instant::now();
    let (doc, all) = converge(&moto, &config, &spec);
    eprintln!(
        "aws e2e: first converge took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        all.contains("uploaded the verified Spark archive to s3://"),
        "{all}"
    );
    assert!(
        all.contains("<redacted by sparkboot>"),
        "the download step names no URL:\n{all}"
    );
    assert_eq!(doc["hosts"].as_array().map(Vec::len), Some(3));
    let listed = aws
        .rt
        .block_on(
            aws.s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix("sparkboot/spark/")
                .send(),
        )
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains(&published), "{keys:?}");
    healthy(&moto, &config, &spec, 2);

    // A scale event: one more worker, served by a new lab node, registers after a re-converge;
    // the archive is not uploaded again.
    aws.set_capacity(asg, 3);
    let (_, after, _) = inventory(&moto, &config, &spec);
    let new: Vec<_> = after.iter().filter(|w| !workers.contains(w)).collect();
    assert_eq!((after.len(), new.len()), (3, 1), "{after:?}");
    assert!(new[0].1.starts_with(SUBNET), "{new:?}");
    add_node(&lab, &new[0].0, &new[0].1);
    let started = Instant::now();
    let (_, all) = converge(&moto, &config, &spec);
    eprintln!(
        "aws e2e: scale-out converge took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(all.contains("already staged at s3://"), "{all}");
    healthy(&moto, &config, &spec, 3);
    eprintln!("aws e2e: {:.1}s in all", t0.elapsed().as_secs_f64());
}
