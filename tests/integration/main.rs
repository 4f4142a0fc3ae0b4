//! sparkboot's integration tests: one binary, organised by feature. Every test uses real sshd
//! on lab nodes (Linux namespaces), so they run as root; CI runs them all.

mod aws;
mod cipher;
mod cli_contract;
mod cluster_lock;
mod common;
mod connect;
mod converge;
mod faults;
mod harden;
mod history;
mod jump;
mod lab;
mod layout;
mod leaks;
mod progress;
mod reliability;
mod s3a;
mod security;
mod spark;
mod submit;
mod systemd;
mod upgrade;
mod watch;
