//! sparkboot's integration tests: one binary, organised by feature. Every test uses real sshd
//! on lab nodes (Linux namespaces), so they run as root; CI runs them all.

mod common;
mod converge;
mod lab;
mod spark;
