//! The lab's HTTP server for the Spark tarball: `python3 -m http.server` on a lab loopback
//! address (.255.254 of the lab's /16, port 8000), started detached by `lab up`, recorded by PID
//! and ended by `lab down`. Nodes share the host's network namespace, so they reach it directly.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::node;
use super::preflight::{self, SYSTEM_PATH};
use super::procs;
use super::state::SparkServer;
use super::{LabError, LabPaths};

pub const PORT: u16 = 8000;

/// The server's address: .255.254 of the lab's /16 (127.100.255.254 by default).
pub fn server_address(first: Ipv4Addr) -> Ipv4Addr {
    let [a, b, _, _] = first.octets();
    Ipv4Addr::new(a, b, 255, 254)
}

fn is_server(address: Ipv4Addr, directory: &Path) -> impl Fn(&[String]) -> bool {
    let (address, directory) = (
        address.to_string(),
        directory.to_string_lossy().into_owned(),
    );
    move |args| {
        args.iter().any(|a| a == "http.server")
            && args.windows(2).any(|w| w[0] == "--bind" && w[1] == address)
            && args
                .windows(2)
                .any(|w| w[0] == "--directory" && w[1] == directory)
    }
}

/// True when the recorded server still runs (checked by command line, not just by PID).
pub fn server_alive(server: &SparkServer) -> bool {
    procs::runs(server.pid, is_server(server.address, &server.directory))
}

/// Starts `python3 -m http.server` on the lab address (detached, logging to http.log) and
/// waits until it accepts connections.
pub fn start_server(
    paths: &LabPaths,
    python: &Path,
    first: Ipv4Addr,
    directory: &Path,
    version: &str,
) -> Result<SparkServer, LabError> {
    let address = server_address(first);
    let log = paths.http_log();
    let server_err = |message: String| LabError::SparkServer {
        address: address.to_string(),
        port: PORT,
        message,
        log: log.clone(),
    };
    if let Err(LabError::AddressInUse { .. }) = preflight::check_port_free(address, PORT) {
        return Err(server_err(
            "that address and port are already in use by another process (stop it, or give this lab another range with --first-address)".into(),
        ));
    }
    let out = File::create(&log).map_err(|e| LabError::io("create", &log, e))?;
    let err = out.try_clone().map_err(|e| LabError::io("open", &log, e))?;
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "http.server",
            &PORT.to_string(),
            "--bind",
            &address.to_string(),
            "--directory",
        ])
        .arg(directory)
        .env(
            "PATH",
            format!(
                "{}:{SYSTEM_PATH}",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the server must outlive this command.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| server_err(e.to_string()))?;
    let pid = child.id();
    let up = procs::wait_until(Duration::from_secs(20), || {
        TcpStream::connect_timeout(
            &SocketAddr::from((address, PORT)),
            Duration::from_millis(200),
        )
        .is_ok()
            || matches!(child.try_wait(), Ok(Some(_)))
    });
    if !up || !procs::alive(pid) {
        procs::signal(pid, libc::SIGKILL);
        let _ = child.wait();
        return Err(server_err(format!(
            "it did not accept connections ({})",
            node::tail(&log, 2)
        )));
    }
    Ok(SparkServer {
        address,
        port: PORT,
        pid,
        directory: directory.to_path_buf(),
        url: tarball_url(address, PORT, version),
    })
}

/// Where the server serves `version`'s tarball (it serves every version built in the cache).
pub fn tarball_url(address: Ipv4Addr, port: u16, version: &str) -> String {
    format!(
        "http://{address}:{port}/{}",
        super::spark::tarball_name(version)
    )
}

/// The URL template for a sparkboot config (`{version}` and `{package}` are filled by it).
pub fn url_template(server: &SparkServer) -> String {
    format!(
        "http://{}:{}/spark-{{version}}-{{package}}.tgz",
        server.address, server.port
    )
}

/// Ends the recorded server if it is still the process we started.
pub fn stop_server(server: &SparkServer) -> Result<(), LabError> {
    if server_alive(server) {
        procs::kill_and_wait(server.pid, "the lab's Spark HTTP server")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_is_the_top_of_the_lab_range() {
        assert_eq!(
            server_address(Ipv4Addr::new(127, 100, 0, 2)),
            Ipv4Addr::new(127, 100, 255, 254)
        );
    }
}
