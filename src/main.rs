//! sparkboot: converge a Spark standalone cluster over SSH after `terraform apply`.
//!
//! `main` only parses flags, calls [`run`] and maps the result to a documented exit code.

mod cli;
mod commands;
mod config;
mod engine;
mod error;
mod facts;
#[cfg(test)]
mod fuzz;
mod harden;
mod inventory;
mod lab;
mod plan;
mod report;
mod roles;
mod shell;
mod spark;
mod transport;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sparkboot: error: {err}");
            err.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Lab(args) => lab::run(&args),
        Command::LabInit(args) => lab::init::run(&args.node_dir),
        Command::Converge(args) => commands::converge::run(&args),
        Command::Inventory(args) => commands::inventory::run(&args),
        Command::Exec(args) => commands::exec::run(&args),
        Command::Ssh(args) => commands::ssh::run(&args),
        Command::Status(args) => commands::status::run(&args),
        Command::Harden(args) => commands::harden::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Submit(args) => commands::submit::run(&args),
        Command::Tunnel(args) => commands::tunnel::run(&args),
        Command::KnownHosts(args) => commands::known_hosts::run(&args),
        Command::Completions(args) => commands::cli_docs::completions(args.shell),
        Command::Man => commands::cli_docs::man(),
    }
}
