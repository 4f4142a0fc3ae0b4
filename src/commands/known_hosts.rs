//! `sparkboot known-hosts forget HOST`: the one sanctioned way past a changed host key. It
//! removes the lines that pin a host (by its address and, for cloud hosts, its instance ID), so
//! the next run records the rebuilt node's key on first sight. Nothing is contacted.

use std::process::ExitCode;

use crate::cli::{KnownHostsArgs, KnownHostsCommand};
use crate::config::Config;
use crate::error::Error;
use crate::transport::hostkeys::host_pattern;
use crate::transport::KnownHosts;

pub fn run(args: &KnownHostsArgs) -> Result<ExitCode, Error> {
    let KnownHostsCommand::Forget { host } = &args.command;
    let explicit = args.common.config.as_path() != std::path::Path::new("sparkboot.toml");
    let config = Config::load(&args.common.config, explicit)?;
    // The inventory tells a name's address, port and instance ID; without one (or when the host
    // is not in it) HOST is taken as an address or instance ID as written.
    let from_inventory = super::Target::resolve(&args.common)
        .ok()
        .and_then(|t| t.inventory.find(host).cloned());
    let names: Vec<String> = match &from_inventory {
        Some(h) => std::iter::once(host_pattern(&h.address, h.port))
            .chain(h.vars.get("instance_id").cloned())
            .collect(),
        None => vec![host.clone()],
    };
    let known = KnownHosts::new(config.known_hosts_path(), false);
    let mut removed = 0;
    for name in &names {
        let lines = known
            .forget(name)
            .map_err(|e| Error::Usage(e.to_string()))?;
        if !lines.is_empty() {
            println!(
                "removed {} line(s) pinning {name} from {} (line(s) {})",
                lines.len(),
                known.path().display(),
                lines
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        removed += lines.len();
    }
    if removed == 0 {
        return Err(Error::Usage(format!(
            "no key is pinned for {} in {}",
            names.join(" or "),
            known.path().display()
        )));
    }
    println!("the next run records the host's key on first sight (or refuses it with --strict)");
    Ok(ExitCode::SUCCESS)
}
