//! `sparkboot inventory`: show the discovered hosts, without connecting to any.

use std::process::ExitCode;

use crate::cli::InventoryArgs;
use crate::error::Error;

use super::Target;

pub fn run(args: &InventoryArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let hosts: Vec<_> = target
        .inventory
        .hosts()
        .filter(|h| selected.contains(&h.name))
        .collect();
    if args.common.json {
        let doc =
            serde_json::json!({"schema": 1, "source": target.inventory.source, "hosts": hosts});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("# {}", target.inventory.source);
    println!("{:<20} {:<7} {:<22} user", "name", "role", "address");
    for h in hosts {
        println!(
            "{:<20} {:<7} {:<22} {}",
            h.name,
            h.role.as_str(),
            format!("{}:{}", h.address, h.port),
            h.user
        );
    }
    Ok(ExitCode::SUCCESS)
}
