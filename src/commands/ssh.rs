//! `sparkboot ssh HOST`: an interactive login with the system ssh client, trusting exactly the
//! keys in sparkboot's known_hosts (never accepting a changed one). The key is checked by
//! sparkboot's own reader first, so the ssh client never writes that file.

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
    // sparkboot's own reader checks the host's key first (and, without --strict, records it on
    // first sight, under the file's lock and 0600), so the system ssh below only reads the file
    // and refuses anything else: one reader decides, with the same rules as converge.
    crate::transport::Connection::open(host, &target.config.ssh, &target.known_hosts)?;
    let known = target.known_hosts.path().to_path_buf();
    let mut cmd = Command::new("ssh");
    cmd.arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()));
    cmd.arg("-o").arg("StrictHostKeyChecking=yes");
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
