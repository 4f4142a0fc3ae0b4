//! Golden plan cases as data: every `tests/golden/*.toml` (facts and steps in, each step's
//! change, reason and commands out) is planned here. See tests/golden/README.md; a new case
//! needs no Rust.

use std::path::Path;

use serde::Deserialize;

use super::*;
use crate::roles::model::RawStep;
use crate::roles::Step;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    options: CaseOptions,
    #[serde(default)]
    facts: Facts,
    #[serde(rename = "step")]
    steps: Vec<RawStep>,
    #[serde(default)]
    expect: Vec<Expect>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    #[serde(default)]
    check: bool,
    #[serde(default)]
    diff: bool,
    /// Checksums of the verified files the controller holds (a `pushed` file's SHA-256), each
    /// standing for `/cache/<checksum>`.
    #[serde(default)]
    pushed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    changed: bool,
    reason: String,
    #[serde(default)]
    commands: Vec<String>,
    stdin: Option<String>,
}

/// Checks one case; `Err` says what differs.
fn check(case: Case) -> Result<(), String> {
    let steps: Vec<Step> = case
        .steps
        .into_iter()
        .map(|raw| Step {
            role: "golden".into(),
            phase: 0,
            name: raw.name,
            notify: raw.notify,
            resource: raw.resource,
        })
        .collect();
    let opts = PlanOptions {
        check: case.options.check,
        diff: case.options.diff,
        pushed: case
            .options
            .pushed
            .iter()
            .map(|sum| {
                (
                    sum.clone(),
                    std::path::PathBuf::from(format!("/cache/{sum}")),
                )
            })
            .collect(),
        ..PlanOptions::default()
    };
    let planned = match (plan(&steps, &case.facts, &opts), &case.error) {
        (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => return Ok(()),
        (Err(e), _) => return Err(format!("planning failed: {e}")),
        (Ok(_), Some(want)) => return Err(format!("expected an error containing {want:?}")),
        (Ok(p), None) => p,
    };
    if planned.len() != case.expect.len() {
        return Err(format!(
            "{} steps planned, {} expected",
            planned.len(),
            case.expect.len()
        ));
    }
    for (i, (p, want)) in planned.iter().zip(&case.expect).enumerate() {
        let report = p.report();
        let at = |what: String| format!("step {} ({:?}): {what}", i + 1, p.name);
        if report.changed != want.changed || report.reason != want.reason {
            return Err(at(format!(
                "got changed={} reason {:?}, expected changed={} reason {:?}",
                report.changed, report.reason, want.changed, want.reason
            )));
        }
        let (script, stdin) = match &p.action {
            Action::Change(c) => (c.script.as_str(), c.stdin.as_ref()),
            Action::Unchanged(_) => ("", None),
        };
        let mut from = 0;
        for cmd in &want.commands {
            match script[from..].find(cmd.as_str()) {
                Some(at_) => from += at_ + cmd.len(),
                None => {
                    return Err(at(format!(
                        "the script lacks {cmd:?} (in order):\n{script}"
                    )))
                }
            }
        }
        if let Some(want_stdin) = &want.stdin {
            let got = match stdin {
                Some(Payload::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            };
            if &got != want_stdin {
                return Err(at(format!("stdin {got:?}, expected {want_stdin:?}")));
            }
        }
    }
    Ok(())
}

#[test]
fn every_golden_case_plans_as_recorded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/golden")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        count += 1;
        let text = std::fs::read_to_string(&path).expect("read case");
        let result = toml::from_str::<Case>(&text)
            .map_err(|e| format!("not a valid case: {e}"))
            .and_then(check);
        if let Err(e) = result {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        count >= 10,
        "only {count} golden cases found in {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
