//! `sparkboot ssh HOST`: an interactive login with the system ssh client, trusting exactly the
//! keys in sparkboot's known_hosts (never accepting a changed one).

use std::process::{Command, ExitCode};

use crate::cli::SshArgs;
use crate::error::Error;

use super::Target;

pub fn run(args: &SshArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let host = target.inventory.find(&args.host).ok_or_else(|| {
        Error::Usage(format!(
            "no host {:?} in {}; run `sparkboot inventory` to list the names",
            args.host, target.inventory.source
        ))
    })?;
    let known = target.known_hosts.path().to_path_buf();
    let strict = if args.common.strict {
        "yes"
    } else {
        "accept-new"
    };
    if let Some(dir) = known.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut cmd = Command::new("ssh");
    // Unhashed entries, so sparkboot's own check can read what ssh records (and vice versa).
    cmd.arg("-o").arg("HashKnownHosts=no");
    cmd.arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()));
    cmd.arg("-o").arg(format!("StrictHostKeyChecking={strict}"));
    cmd.arg("-o").arg("GlobalKnownHostsFile=/dev/null");
    cmd.arg("-p").arg(host.port.to_string());
    if let Some(key) = &host.identity_file {
        cmd.arg("-i").arg(key).arg("-o").arg("IdentitiesOnly=yes");
    }
    if let Some(jump) = &host.jump_host {
        cmd.arg("-J").arg(jump);
    }
    cmd.arg(format!("{}@{}", host.user, host.address));
    cmd.args(&args.command);
    let status = cmd.status().map_err(|e| {
        Error::Usage(format!(
            "cannot run the ssh client: {e}; install openssh-client"
        ))
    })?;
    Ok(ExitCode::from(
        status.code().unwrap_or(255).clamp(0, 255) as u8
    ))
}
