//! `sparkboot exec -- CMD`: run an ad hoc command on every selected host, in parallel, over the
//! same pinned, pooled sessions the engine uses.

use std::process::ExitCode;

use crate::apply::HostState;
use crate::cli::ExecArgs;
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::shell::{self, Privilege};

use super::Target;

pub fn run(args: &ExecArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let command = shell::join(&args.command);
    let privilege = if args.sudo {
        Privilege::Root
    } else {
        Privilege::AsLogin
    };
    let (results, _) = target.each_host(&selected, move |run, _| {
        let Some(conn) = run.conn.as_ref() else {
            return;
        };
        match conn.run(&command, privilege, None) {
            Ok(out) => run.output = Some(out),
            Err(e) => run.state = HostState::Failed(e.to_string()),
        }
    })?;
    let mut failed = false;
    let mut doc = Vec::new();
    for r in &results {
        let (status, stdout, stderr) = match (&r.state, &r.output) {
            (HostState::Running, Some(o)) => {
                (Some(o.exit_status), o.stdout.clone(), o.stderr.clone())
            }
            (HostState::Failed(e) | HostState::Unreachable(e), _) => {
                (None, String::new(), e.clone())
            }
            _ => (None, String::new(), String::new()),
        };
        failed |= status != Some(0);
        if args.common.json {
            doc.push(serde_json::json!({"name": r.host.name, "exit_status": status, "stdout": stdout, "stderr": stderr, "unreachable": matches!(r.state, HostState::Unreachable(_))}));
        } else {
            let head = match status {
                Some(s) => format!("{} | exit {s}", r.host.name),
                None => format!("{} | FAILED", r.host.name),
            };
            println!(
                "{head}\n{}{}",
                stdout,
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!("stderr: {stderr}\n")
                }
            );
        }
    }
    if args.common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"schema": 1, "hosts": doc}))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::from(if failed { EXIT_HOST_FAILED } else { 0 }))
}
