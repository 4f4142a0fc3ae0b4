//! Property tests for every parser of outside input: whatever they are fed (arbitrary text, or
//! a real sample mutated byte by byte), they return an answer or an error, never panic.
//! `cargo test` runs a few hundred cases of each; `scripts/fuzz` runs many more
//! (`PROPTEST_CASES`). A crash it ever finds becomes a regression case in `REGRESSIONS`.

use proptest::prelude::*;

use crate::facts::{ProbeRequest, ServiceProbe};

/// A sample with random edits: bytes replaced, inserted and removed, as a fuzzer mutates.
fn mutated(sample: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..12).prop_map(move |edits| {
        let mut bytes = sample.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let i = if bytes.is_empty() {
                0
            } else {
                at as usize % bytes.len()
            };
            match kind {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if !bytes.is_empty() => {
                    bytes.remove(i);
                }
                _ => bytes.push(byte),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Arbitrary text, or a mutated sample.
fn input(sample: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "\\PC{0,200}", mutated(sample)]
}

const CONFIG: &str = "inventory = \"inv.toml\"\nroles = [\"base\"]\n[cluster]\nname = \"c\"\nstate_dir = \"st\"\n[ssh]\nforks = 5\n[spark]\nversion = \"3.5.7\"\nworker_memory = \"4g\"\nsource = \"https://x/s-{version}.tgz\"\n[spark.defaults]\n\"spark.executor.memory\" = \"2g\"\n[aws]\nregion = \"eu-west-1\"\nqueue_url = \"https://sqs.x/q\"\n[harden.skip]\n\"ssh-client-alive\" = \"lb\"\n";
const INVENTORY: &str = "[defaults]\nuser = \"ec2-user\"\nport = 22\n[master]\nname = \"m\"\naddress = \"192.0.2.10\"\n[[workers]]\nname = \"w1\"\naddress = \"192.0.2.11\"\nvars = { rack = \"a\" }\n";
const SHA512: &str = "abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab  spark-3.5.7-bin-hadoop3.tgz\nspark-3.2.1.tgz: 2C3A7E5B 1234ABCD\n 5678\n";
const TF: &str = r#"{"sparkboot_inventory": {"value": {"schema": 1, "cluster_name": "c", "region": "r", "ssh_user": "admin", "master": {"instance_id": "i-0abc", "private_ip": "198.51.100.5", "public_ip": null}, "workers": {"asg_name": "g"}, "bucket": "b", "queue_url": null}}}"#;
const STATUS: &str = r#"{"url":"spark://198.51.100.5:7077","workers":[{"host":"198.51.100.6","state":"ALIVE"},{"host":"198.51.100.7","state":"DEAD"}],"aliveworkers":1}"#;
const PROBE: &str = "@@sparkboot:system 0\nos_id=debian\ncpus=2\nmem_kb=2048000\nuid=0\nhostname=n1\nsystemd=0\npkg=apt\njava=JAVA_VERSION=\"17.0.2\"\n@@sparkboot:paths 0\nd\troot\troot\t755\t\t/opt/x\nl\troot\troot\t777\t/opt/y\t/opt/z\n@@sparkboot:hashes 0\nabc  /opt/x\n@@sparkboot:user 0\nspark:x:999:999::/var/lib/spark:/bin/sh\n@@sparkboot:service 0\nrunning 12\n@@sparkboot:content 0\npresent\naGVsbG8=\n@@sparkboot:observe 0\n{\"workers\":[]}\n";
const HARDEN: &str = "@@harden:sshd 0\npasswordauthentication yes\n@@harden:home ec2-user\t/home/ec2-user\n@@harden:stat\n600\tec2-user\tec2-user\tregular file\t/home/ec2-user/.ssh/id_rsa\n@@harden:privkey /home/ec2-user/.ssh/id_rsa\nssh-rsa AAAA x\n@@harden:authkeys /home/ec2-user/.ssh/authorized_keys\nssh-rsa AAAA x\n@@harden:refused /home/x\tbad\n@@harden:spark-defaults present\nspark.authenticate true\n";
const ROLE: &str = "description = \"d\"\nhosts = [\"worker\"]\nphase = 1\ncontext = [\"spark\"]\n[[handler]]\nname = \"h\"\nrestart = \"s\"\n[[step]]\nname = \"f\"\nnotify = [\"h\"]\nfile = { path = \"/x\", content = \"{{ vars.a }}\", mode = \"0640\" }\n[layout]\nuser = \"spark\"\n";
const KNOWN_HOSTS: &str = "# c\n10.0.0.5,i-0abc ssh-ed25519 AAAAkeyA\n[198.51.100.6]:2222 ssh-ed25519 AAAAkeyB\n|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= ssh-ed25519 AAAAkeyC\n@revoked * ssh-ed25519 AAAAbadA\n";

const JAR_CHECKSUM: &str =
    "5d2b8ee4c6a9b3a0e0a7c0b5b4c7f3b5b7a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5  hadoop-aws-3.3.4.jar\n";
const PROGRESS: &str =
    "sparkboot-progress 1048576 333447844\nnoise\nsparkboot-progress 2097152 0\n";
const SUBMIT_STDERR: &str = "25/12/04 INFO ClientEndpoint: Driver successfully submitted as driver-20251204-0001\n25/12/04 INFO ClientEndpoint: State of driver driver-20251204-0001 is FAILED, exiting spark-submit JVM.\n";
const LOCK: &str =
    "held 3\ntoken=abc\ncommand=converge\nhost=ctl\npid=42\nsince=2026-12-04T12:00:00Z\n";

fn probe_request() -> ProbeRequest {
    let mut r = ProbeRequest::default();
    r.paths.insert("/opt/x".into());
    r.users.insert("spark".into());
    r.services.insert(
        "s".into(),
        ServiceProbe {
            pidfile: "/run/s.pid".into(),
            cmdline_match: None,
            systemd_unit: None,
        },
    );
    r.contents.insert("/etc/x".into());
    r.observe.insert("status".into(), "true".into());
    r
}

/// Inputs that once crashed a parser (the first found by hand, in worker_memory's unit
/// suffix): each stays a case here, so the fix cannot regress.
const REGRESSIONS: &[(&str, &str)] = &[("worker_memory", "[spark]\nworker_memory = \"4é\"\n")];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn config_never_panics(text in input(CONFIG)) {
        let _ = crate::config::Config::parse(std::path::Path::new("/nonexistent/sparkboot.toml"), &text);
    }

    #[test]
    fn inventory_file_never_panics(text in input(INVENTORY)) {
        let path = std::path::Path::new("/nonexistent/inventory.toml");
        if let Ok(file) = crate::inventory::static_file::InventoryFile::parse(path, &text) {
            let _ = file.into_inventory(path);
        }
    }

    #[test]
    fn sha512_files_never_panic(text in input(SHA512), name in "\\PC{0,40}") {
        let _ = crate::spark::checksum::parse_sha512(&text, &name);
        let _ = crate::spark::checksum::parse_sha512(&text, "spark-3.5.7-bin-hadoop3.tgz");
    }

    #[test]
    fn terraform_outputs_never_panic(text in input(TF)) {
        let _ = crate::inventory::terraform::parse(&text, "terraform:x");
    }

    #[test]
    fn addresses_never_panic(address in "\\PC{0,60}") {
        let _ = crate::inventory::address_ok(&address);
    }

    #[test]
    fn probe_output_never_panics(text in input(PROBE)) {
        let _ = crate::facts::parse(&probe_request(), &text);
    }

    #[test]
    fn harden_probe_output_never_panics(text in input(HARDEN)) {
        let _ = crate::harden::facts::parse(&text);
    }

    #[test]
    fn master_status_never_panics(text in input(STATUS)) {
        let _ = crate::spark::registration::alive_workers(&text);
    }

    #[test]
    fn role_files_never_panic(text in input(ROLE)) {
        let _ = toml::from_str::<crate::roles::model::RoleFile>(&text);
    }

    #[test]
    fn known_hosts_never_panic(text in input(KNOWN_HOSTS), host in "\\PC{0,30}") {
        let _ = crate::transport::hostkeys::check(text.as_bytes(), &host, Some("i-0abc"), "ssh-ed25519", "AAAAkeyA");
        let _ = crate::transport::hostkeys::lines_naming(text.as_bytes(), &host);
    }

    #[test]
    fn queue_messages_never_panic(text in input(crate::watch::events::tests::LAUNCH)) {
        let _ = crate::watch::events::parse(&text);
    }
    #[test]
    fn jar_checksum_files_never_panic(text in input(JAR_CHECKSUM), name in "\\PC{0,40}", url in "\\PC{0,60}") {
        use crate::spark::s3a::{check_repository, parse_checksum, Algorithm};
        for algorithm in [Algorithm::Sha512, Algorithm::Sha256, Algorithm::Sha1] {
            let _ = parse_checksum(&text, algorithm, &name);
            let _ = parse_checksum(&text, algorithm, "hadoop-aws-3.3.4.jar");
        }
        let _ = check_repository(&url);
        let _ = check_repository(&text);
    }

    #[test]
    fn progress_lines_never_panic(text in input(PROGRESS), cut in any::<u16>()) {
        // The node's output arrives in chunks cut anywhere, also inside a UTF-8 character.
        let bytes = text.as_bytes();
        let at = cut as usize % (bytes.len() + 1);
        let mut lines = crate::report::transfer::ProgressLines::default();
        let _ = lines.feed(&bytes[..at]);
        let _ = lines.feed(&bytes[at..]);
    }

    #[test]
    fn spark_versions_never_panic(text in input("spark-4.3.0-bin-hadoop3")) {
        let _ = crate::spark::release::Version::parse(&text);
        let _ = crate::spark::upgrade::version_of(&text);
    }

    #[test]
    fn submit_output_never_panics(text in input(SUBMIT_STDERR)) {
        for line in text.lines() {
            let _ = crate::commands::submit::driver_news(line);
        }
    }

    #[test]
    fn lock_records_never_panic(text in input(LOCK)) {
        let _ = crate::shell::lock::Holder::parse(&text);
        let _ = crate::shell::lock::parse_observed(&text);
        let _ = crate::shell::lock::parse_acquired(&text);
    }
}

#[test]
fn every_crash_found_stays_fixed() {
    for (what, input) in REGRESSIONS {
        let result = crate::config::Config::parse(std::path::Path::new("sparkboot.toml"), input);
        assert!(
            result.is_err(),
            "{what}: {input:?} must be refused, not crash"
        );
    }
}
