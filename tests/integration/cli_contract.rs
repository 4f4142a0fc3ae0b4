//! The documented contract of the smaller commands, asserted: `exec` and `status` exit codes,
//! `--strict` refusing unknown host keys, and `sparkboot ssh` logging in through the pinned key
//! (and refusing a changed one). Lab 127.171.0.0/16, no Spark (status reports daemons stopped).

use crate::common::*;

const DEMO: &str = "roles = [\"demo\"]\n[vars]\ndemo_secret = \"contract-secret-0123456789\"\n";

#[test]
fn exec_status_strict_and_ssh_keep_their_documented_contract() {
    let lab = Lab::up(171, 2);
    let cfg = lab.config("sparkboot.toml", DEMO);

    // --strict with no known_hosts yet: every host refused before anything runs (exit 2), and
    // no key is recorded.
    let strict = lab.run("exec", &cfg, &["--strict", "--json", "--", "true"]);
    assert_eq!(strict.status.code(), Some(2), "{}", text(&strict));
    for h in json(&strict)["hosts"].as_array().expect("hosts") {
        assert_eq!(
            h["exit_status"],
            serde_json::Value::Null,
            "nothing ran: {h}"
        );
        assert!(
            h["stderr"]
                .as_str()
                .unwrap_or_default()
                .contains("--strict refuses unknown keys"),
            "the refusal says why: {h}"
        );
    }
    let known = lab.path().join("state/sparkboot/known_hosts");
    assert!(
        !known.exists()
            || std::fs::read_to_string(&known)
                .unwrap_or_default()
                .trim()
                .is_empty(),
        "--strict recorded keys"
    );

    // exec: 0 when every host's command succeeds; 2 when one fails, with every host's status.
    let ok = lab.run("exec", &cfg, &["--json", "--", "true"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let strict_now = lab.run("exec", &cfg, &["--strict", "--", "true"]);
    assert_eq!(
        strict_now.status.code(),
        Some(0),
        "pinned keys pass --strict: {}",
        text(&strict_now)
    );
    let one_fails = lab.run(
        "exec",
        &cfg,
        &[
            "--json",
            "--",
            "sh",
            "-c",
            "[ \"$(hostname)\" != lab-worker-1 ]",
        ],
    );
    assert_eq!(one_fails.status.code(), Some(2), "{}", text(&one_fails));
    for h in json(&one_fails)["hosts"].as_array().expect("hosts") {
        let expected = if h["name"] == "lab-worker-1" { 1 } else { 0 };
        assert_eq!(h["exit_status"], expected, "{h}");
    }

    // status: no Spark daemons here, so the cluster is not healthy: exit 2, every node reachable.
    let status = lab.run("status", &cfg, &["--json"]);
    assert_eq!(status.status.code(), Some(2), "{}", text(&status));
    let doc = json(&status);
    assert_eq!(doc["healthy"], false, "{doc}");
    for n in doc["nodes"].as_array().expect("nodes") {
        assert_eq!(
            (&n["reachable"], &n["daemon_running"]),
            (&true.into(), &false.into()),
            "{n}"
        );
    }
    assert!(lab.lab(&["stop", "lab-worker-2"]).status.success());
    let status = lab.run("status", &cfg, &["--json"]);
    assert_eq!(status.status.code(), Some(2), "{}", text(&status));
    let down: Vec<_> = json(&status)["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["reachable"] == false)
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(down, vec!["lab-worker-2".to_string()]);
    assert!(lab.lab(&["start", "lab-worker-2"]).status.success());

    // sparkboot ssh: the remote command's exit status, through the pinned key ...
    let ssh = lab.run(
        "ssh",
        &cfg,
        &["lab-worker-1", "--", "sh", "-c", "hostname; exit 7"],
    );
    assert_eq!(ssh.status.code(), Some(7), "{}", text(&ssh));
    assert!(String::from_utf8_lossy(&ssh.stdout).contains("lab-worker-1"));
    // ... and a refusal, with nothing run, once the node's key changed.
    let addr = lab.address("lab-worker-1");
    assert!(lab.lab(&["remove", "lab-worker-1"]).status.success());
    let add = lab.lab(&["add", "--name", "lab-worker-1", "--address", &addr]);
    assert!(add.status.success(), "{}", text(&add));
    let refused = lab.run(
        "ssh",
        &cfg,
        &["lab-worker-1", "--", "sh", "-c", "touch /tmp/ran"],
    );
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(
        text(&refused).contains("HOST KEY CHANGED"),
        "{}",
        text(&refused)
    );
    let ran = lab.run("exec", &cfg, &["--limit", "lab-master", "--", "true"]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
}
