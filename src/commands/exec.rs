//! `sparkboot exec -- CMD`: run an ad hoc command on every selected host, in parallel, over the
//! same pinned, pooled sessions the engine uses.

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::ExecArgs;
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::shell;

use super::Target;

/// One host's answer (`exec --json`, schema 1).
#[derive(Debug, Default, Serialize)]
struct ExecResult {
    name: String,
    exit_status: Option<i32>,
    stdout: String,
    stderr: String,
    unreachable: bool,
}

pub fn run(args: &ExecArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let command = shell::join(&args.command);
    let sudo = args.sudo;
    let engine = target.engine(&selected, false)?;
    let items = engine
        .nodes(&selected)
        .into_iter()
        .map(|n| (n, ExecResult::default()))
        .collect();
    let results = engine.each(items, move |node, result| {
        let out = if sudo {
            node.run(&command, None)
        } else {
            node.run_as_login(&command)
        };
        if let Some(o) = out {
            result.exit_status = Some(o.exit_status);
            result.stdout = o.stdout;
            result.stderr = o.stderr;
        }
    });
    let mut failed = false;
    let mut doc = Vec::new();
    for (node, mut r) in results {
        r.name = node.host.name.clone();
        if let Some(e) = node.error() {
            r.exit_status = None;
            r.stderr = e.to_string();
            r.unreachable = node.unreachable();
        }
        failed |= r.exit_status != Some(0);
        if args.common.json {
            doc.push(r);
            continue;
        }
        let head = match r.exit_status {
            Some(s) => format!("{} | exit {s}", r.name),
            None => format!("{} | FAILED", r.name),
        };
        let stderr = if r.stderr.is_empty() {
            String::new()
        } else {
            format!("stderr: {}\n", r.stderr)
        };
        println!("{head}\n{}{stderr}", r.stdout);
    }
    if args.common.json {
        let doc = serde_json::json!({"schema": 1, "hosts": doc});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    Ok(ExitCode::from(if failed { EXIT_HOST_FAILED } else { 0 }))
}
