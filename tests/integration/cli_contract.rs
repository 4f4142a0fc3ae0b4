//! The documented contract of the smaller commands, asserted: `exec` and `status` exit codes,
//! `--strict` refusing unknown host keys, and `sparkboot ssh` logging in through the pinned key
//! (and refusing a changed one). Lab 127.171.0.0/16, no Spark (status reports daemons stopped).
//! Also the generated shell completions and manual page (no lab): every command `--help` lists
//! is completed by bash and described in the page, which groff formats without a warning.

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

/// The sub-commands a `--help` page lists under "Commands:" (without `help`).
fn listed_commands(args: &[&str]) -> Vec<String> {
    let mut full: Vec<&str> = args.to_vec();
    full.push("--help");
    let out = sparkboot(&full);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Runs bash's completion function for `words` (the last one being completed) and returns the
/// candidates.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _sparkboot sparkboot '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_and_man_page_cover_every_command() {
    let top = listed_commands(&[]);
    for expected in ["converge", "lab", "completions", "man"] {
        assert!(top.iter().any(|c| c == expected), "{top:?}");
    }
    assert!(!top.iter().any(|c| c == "lab-init"), "{top:?}");
    let lab = listed_commands(&["lab"]);
    assert!(lab.iter().any(|c| c == "up"), "{lab:?}");
    let known_hosts = listed_commands(&["known-hosts"]);

    // Every shell clap_complete knows gets a script.
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = sparkboot(["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        assert!(out.stdout.len() > 1000, "{shell}: {}", text(&out));
    }
    let bad = sparkboot(["completions", "tcsh"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap's usage error: {}",
        text(&bad)
    );

    // The bash script is valid bash, mentions every command, and really completes them.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("sparkboot.bash");
    let out = sparkboot(["completions", "bash"]);
    std::fs::write(&script, &out.stdout).expect("write script");
    let body = String::from_utf8_lossy(&out.stdout);
    for c in top.iter().chain(&lab).chain(&known_hosts) {
        assert!(body.contains(c.as_str()), "bash completion lacks {c}");
    }
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash -n");
    assert!(syntax.status.success(), "{}", text(&syntax));
    let mut offered = bash_complete(&script, &["sparkboot", ""]);
    offered.retain(|c| !c.starts_with('-') && c != "help");
    let mut want = top.clone();
    want.sort();
    offered.sort();
    assert_eq!(
        offered, want,
        "`sparkboot <TAB>` offers every command, lab-init none"
    );
    let lab_up = bash_complete(&script, &["sparkboot", "lab", "u"]);
    assert_eq!(lab_up, vec!["up".to_string()], "`sparkboot lab u<TAB>`");
    let flags = bash_complete(&script, &["sparkboot", "converge", "--ch"]);
    assert_eq!(
        flags,
        vec!["--check".to_string()],
        "`sparkboot converge --ch<TAB>`"
    );

    // The manual page: roff with a title, a subsection per command, formatted by groff (what
    // `man` runs) with every warning on and none given.
    let out = sparkboot(["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(page.contains("\n.TH sparkboot 1 "), "{page}");
    for c in &top {
        assert!(
            page.contains(&format!(".SS \"sparkboot {c}\"")),
            "page lacks {c}"
        );
    }
    for c in &lab {
        assert!(
            page.contains(&format!(".SS \"sparkboot lab {c}\"")),
            "page lacks lab {c}"
        );
    }
    let file = dir.path().join("sparkboot.1");
    std::fs::write(&file, &out.stdout).expect("write page");
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
        .arg(&file)
        .output()
        .expect("groff (scripts/install-deps installs groff-base)");
    assert!(groff.status.success(), "{}", text(&groff));
    assert!(groff.stderr.is_empty(), "groff warned: {}", text(&groff));
    // grotty emboldens by overstriking (`X\bX`): keep what a terminal shows.
    let mut shown = String::new();
    for ch in String::from_utf8_lossy(&groff.stdout).chars() {
        if ch == '\u{8}' {
            shown.pop();
        } else {
            shown.push(ch);
        }
    }
    assert!(shown.contains("EXIT STATUS"), "{shown}");
    assert!(shown.contains("sparkboot converge"), "{shown}");
}
