//! `distribution = "s3"` stages the archive with a multipart upload that a later run resumes,
//! and a refusal under a bucket KMS key names the KMS permissions.
//!
//! The test plays the interrupted run itself: it starts a multipart upload of the archive's key
//! with the SDK and uploads part 1 (the right bytes) and part 2 (wrong bytes of the right size),
//! plus an upload of another key. Then `converge` must complete that same upload, sending only
//! parts 2 and 3: moto's request recording shows which parts sparkboot sent and which upload it
//! completed. The node is one lab node (127.155.0.2) running a role that needs the Spark values
//! (so the archive is staged) but installs nothing; no VPC is involved. sparkboot reaches S3
//! through the shim in shim.rs, which only renames the root element of moto's ListParts answer
//! (moto 5.2 writes `ListPartsResponse`, S3 and the SDK `ListPartsResult`).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use sha2::Digest;

use super::harness::{workdir, Moto, REGION};
use super::shim::MotoShim;
use crate::common::*;

const BUCKET: &str = "sb-s3-resume";
const MIB: usize = 1024 * 1024;
const NAME: &str = "spark-3.5.7-bin-hadoop3.tgz";

/// `len` bytes that differ with `seed` (xorshift: fast, and never the same part twice).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha512_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha512::digest(data))
}

/// The test's own S3 client: explicit endpoint and keys, no checksums it did not ask for.
fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .http_client(super::harness::http_client())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// moto's recording of the requests it received since recording started: (method, URL).
fn recorded(moto: &Moto) -> Vec<(String, String)> {
    let mut text = String::new();
    ureq::get(&format!(
        "{}/moto-api/recorder/download-recording",
        moto.endpoint
    ))
    .call()
    .expect("download the recording")
    .into_reader()
    .read_to_string(&mut text)
    .expect("read the recording");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["url"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `work/<dir>/<NAME>` holding `data`: a Spark archive as the source serves it.
fn write_archive(work: &Path, dir: &str, data: &[u8]) -> std::path::PathBuf {
    let archive = work.join(dir).join(NAME);
    std::fs::create_dir_all(archive.parent().expect("dir")).expect("dir");
    std::fs::write(&archive, data).expect("archive");
    archive
}

fn write_config(path: &Path, work: &Path, lab: &Lab, archive: &Path, sha512: &str) {
    std::fs::write(
        path,
        format!(
            "roles = [\"stage\"]\nroles_dir = {:?}\n[cluster]\nname = \"sb-s3\"\nstate_dir = {:?}\n[ssh]\nretry_deadline_secs = 3\nconnect_timeout_secs = 3\n[spark]\nsource = \"file://{}\"\nsha512 = \"{sha512}\"\ndistribution = \"s3\"\n[aws]\nbucket = \"{BUCKET}\"\nregion = \"{REGION}\"\nidentity_file = {:?}\n",
            work.join("roles"),
            work.join("state"),
            archive.display(),
            lab.lab_dir().join("id_ed25519"),
        ),
    )
    .expect("config");
}

#[test]
fn s3_staging_resumes_an_interrupted_multipart_upload() {
    require_root();
    let t0 = Instant::now();
    let moto = Moto::start();
    let s3 = s3_client(&moto.endpoint);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(s3.create_bucket().bucket(BUCKET).send())
        .expect("bucket");

    let work = workdir("sparkboot-s3-");
    // A role that needs the Spark values (so the archive is staged) and installs nothing.
    let role = work.path().join("roles/stage");
    std::fs::create_dir_all(&role).expect("role dir");
    std::fs::write(
        role.join("role.toml"),
        "description = \"Stage the Spark archive only\"\ncontext = [\"spark\"]\n\n[[step]]\nname = \"Ensure the probe directory exists\"\ndirectory = { path = \"/opt/stage-probe\", mode = \"0755\" }\n",
    )
    .expect("role");
    // 33 MiB: parts 1 and 2 of 16 MiB, part 3 of 1 MiB.
    let data = bytes(33 * MIB, 0x5eed);
    let archive = write_archive(work.path(), "a", &data);
    let sha = sha512_hex(&data);
    let key = format!("sparkboot/spark/{sha}/{NAME}");

    // The interrupted run: part 1 right, part 2 the right size but other bytes, no part 3.
    let started = rt
        .block_on(s3.create_multipart_upload().bucket(BUCKET).key(&key).send())
        .expect("create upload");
    let upload = started.upload_id().expect("upload id").to_string();
    for (n, body) in [(1, data[..16 * MIB].to_vec()), (2, bytes(16 * MIB, 0xbad))] {
        rt.block_on(
            s3.upload_part()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&upload)
                .part_number(n)
                .body(ByteStream::from(body))
                .send(),
        )
        .expect("upload part");
    }
    // Another key's unfinished upload, which must be left alone.
    let other = rt
        .block_on(
            s3.create_multipart_upload()
                .bucket(BUCKET)
                .key("sparkboot/spark/other/spark.tgz")
                .send(),
        )
        .expect("other upload");
    let other_id = other.upload_id().expect("id").to_string();
    rt.block_on(
        s3.upload_part()
            .bucket(BUCKET)
            .key("sparkboot/spark/other/spark.tgz")
            .upload_id(&other_id)
            .part_number(1)
            .body(ByteStream::from(bytes(5 * MIB, 7)))
            .send(),
    )
    .expect("other part");

    // From here on moto records what sparkboot sends.
    ureq::post(&format!(
        "{}/moto-api/recorder/start-recording",
        moto.endpoint
    ))
    .call()
    .expect("start recording");
    let lab = Lab::up(155, 0);
    let config = work.path().join("sparkboot.toml");
    write_config(&config, work.path(), &lab, &archive, &sha);
    let inventory = lab.inventory();
    let shim = MotoShim::start(&moto.endpoint);
    let converge = |cfg: &Path| {
        let mut cmd = std::process::Command::new(BIN);
        moto.env(&mut cmd)
            .env("AWS_ENDPOINT_URL_S3", &shim.endpoint)
            .args([
                "converge",
                "--json",
                "--config",
                cfg.to_str().expect("utf-8"),
                "--inventory",
                inventory.to_str().expect("utf-8"),
            ])
            .output()
            .expect("run sparkboot")
    };
    let out = converge(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "resuming the interrupted upload {upload} of s3://{BUCKET}/{key}: 2 part(s) of 3 already there"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "completed the upload {upload}: 1 part(s) kept from the interrupted upload, 2 sent"
        )),
        "{stderr}"
    );
    for leak in ["X-Amz-Signature", "X-Amz-Credential"] {
        assert!(!text(&out).contains(leak), "{}", text(&out));
    }

    // What moto received: parts 2 and 3 of that upload, no new upload, that upload completed.
    let requests = recorded(&moto);
    let ours: Vec<&(String, String)> = requests
        .iter()
        .filter(|(_, url)| url.contains(&sha))
        .collect();
    let mut sent: Vec<String> = ours
        .iter()
        .filter(|(m, url)| m == "PUT" && url.contains("partNumber="))
        .map(|(_, url)| {
            assert!(url.contains(&format!("uploadId={upload}")), "{url}");
            url.split("partNumber=").nth(1).unwrap_or_default()[..1].to_string()
        })
        .collect();
    sent.sort();
    assert_eq!(sent, vec!["2", "3"], "{ours:?}");
    assert!(
        !ours
            .iter()
            .any(|(m, url)| m == "POST" && url.contains("?uploads")),
        "a new upload was started: {ours:?}"
    );
    assert!(
        ours.iter()
            .any(|(m, url)| m == "POST" && url.contains(&format!("uploadId={upload}"))),
        "the upload was not completed: {ours:?}"
    );

    // The object is the archive, byte for byte; the other key's upload is still there.
    let object = rt
        .block_on(s3.get_object().bucket(BUCKET).key(&key).send())
        .expect("get object");
    let body = rt
        .block_on(object.body.collect())
        .expect("object body")
        .into_bytes();
    assert_eq!(
        sha512_hex(&body),
        sha,
        "the staged object is not the archive"
    );
    let left = rt
        .block_on(s3.list_multipart_uploads().bucket(BUCKET).send())
        .expect("list uploads");
    let left: Vec<(&str, &str)> = left
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default(),
                u.upload_id().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        left,
        vec![("sparkboot/spark/other/spark.tgz", other_id.as_str())],
        "only the other key's upload may remain"
    );

    // Once staged, never sent again.
    let out = converge(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already staged at s3://"),
        "{}",
        text(&out)
    );

    // On a terminal, staging shows its upload on the controller's line: bytes, rate and time
    // left, not the per-part notes. A new 48 MiB archive (3 parts), each part held 1 s by the
    // shim as a slow uplink would, so the upload lasts long enough to be drawn.
    let data3 = bytes(48 * MIB, 0x3333);
    let archive3 = write_archive(work.path(), "c", &data3);
    let config3 = work.path().join("terminal.toml");
    write_config(&config3, work.path(), &lab, &archive3, &sha512_hex(&data3));
    let slow = MotoShim::slow(&moto.endpoint, std::time::Duration::from_secs(1));
    let mut script = in_terminal_command(
        &[
            "converge".to_string(),
            "--config".into(),
            config3.display().to_string(),
            "--inventory".into(),
            inventory.display().to_string(),
        ],
        None,
    );
    moto.env(&mut script)
        .env("AWS_ENDPOINT_URL_S3", &slow.endpoint);
    let (code, screen) = screen_of(script);
    assert_eq!(code, Some(0), "{screen}");
    let uploading = lines_with(&screen, "uploading");
    assert!(
        uploading
            .iter()
            .any(|l| l.contains("controller uploading") && l.contains(" MiB / 48.0 MiB (")),
        "no progress for the upload to S3:\n{screen}"
    );
    assert!(
        shows_transfer(&screen, "uploading "),
        "the upload's line lacks rate or share:\n{screen}"
    );
    assert!(
        !screen.contains("uploaded part"),
        "per-part notes garble the drawn line:\n{screen}"
    );
    assert!(
        !screen.contains("X-Amz-Signature"),
        "the presigned URL reached the terminal:\n{screen}"
    );
    eprintln!("s3 staging on a terminal showed {uploading:#?}");

    // A bucket with its own KMS key that refuses the upload: the error names the KMS
    // permissions on that key (moto maps an UploadPart to s3:PutObject for the bucket policy).
    let kms_key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(kms_key)
                .build()
                .expect("default encryption"),
        )
        .build();
    rt.block_on(
        s3.put_bucket_encryption()
            .bucket(BUCKET)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("encryption"),
            )
            .send(),
    )
    .expect("bucket encryption");
    let deny = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "NoUploads", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]});
    rt.block_on(
        s3.put_bucket_policy()
            .bucket(BUCKET)
            .policy(deny.to_string())
            .send(),
    )
    .expect("bucket policy");
    let data2 = bytes(6 * MIB, 0x2222);
    let archive2 = write_archive(work.path(), "b", &data2);
    let config2 = work.path().join("kms.toml");
    write_config(&config2, work.path(), &lab, &archive2, &sha512_hex(&data2));
    let out = converge(&config2);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("s3:UploadPart (part 1 of 1) on s3://sb-s3-resume/sparkboot/spark/")
            && all.contains("was denied (403)")
            && all.contains(&format!(
                "the bucket encrypts with the KMS key {kms_key}, so they also need kms:GenerateDataKey and kms:Decrypt on that key"
            ))
            && all.contains("run the command again to resume"),
        "{all}"
    );
    eprintln!("s3 resume: {:.1}s in all", t0.elapsed().as_secs_f64());
}
