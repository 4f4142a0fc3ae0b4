//! `sparkboot tunnel`: the master's web UI, the application UI, the history server and Spark
//! Connect on local ports of this machine, through the pinned SSH session to the master, so
//! they never have to be opened to the network and no system `ssh` is needed.
//!
//! Each local port listens on 127.0.0.1 only. Every accepted connection gets its own
//! `direct-tcpip` channel to `<master address>:<port>` as the master sees it (Spark's UIs bind
//! to the node's own address, `SPARK_LOCAL_IP`).
//!
//! How many connections share one blocking libssh2 session: they do not touch it. The session
//! is handed to the same pump thread the jump hosts use (`transport::Forwarder`): one thread
//! owns the session and every channel, opens channels one at a time (libssh2 allows one open
//! in flight) and moves bytes in poll(2), and each accepted connection talks to it through a
//! local socket pair. So one handshake serves every forward and every browser connection,
//! nothing locks the session from several threads, and the code that does it is the code that
//! already carries every worker behind a jump host. Each connection costs two plain threads
//! copying between its TCP socket and its socket pair, which is nothing next to a browser's
//! handful of connections. A forward to a service that is not running fails per connection,
//! with a log line on stderr; the others carry on.
//!
//! It stays up until SIGINT or SIGTERM (exit 0), or until the session to the master ends
//! (exit 2).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cli::TunnelArgs;
use crate::error::{Error, EXIT_HOST_FAILED};
use crate::transport::{Connection, Forwarder};

use super::Target;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// One forward as printed (`--json`, schema 1: `forwards` of the one object on stdout).
#[derive(Debug, Clone, Serialize)]
struct Forward {
    /// `master-ui`, `app-ui`, `history`, `connect`.
    name: &'static str,
    /// `127.0.0.1:PORT` on this machine.
    local: String,
    /// What to open: `http://127.0.0.1:PORT/`, or `sc://localhost:PORT` for Spark Connect
    /// (`localhost`: the Connect client sends its token over plain gRPC only to that name).
    url: String,
    /// Spark Connect: the file that holds the token clients present (`[spark] connect_server`).
    #[serde(skip_serializing_if = "Option::is_none")]
    token_file: Option<String>,
    /// `ADDRESS:PORT` as the master reaches it.
    remote: String,
    #[serde(skip)]
    remote_port: u16,
}

/// A remote port: a Spark property in `[spark.defaults]` when set there, else Spark's default.
fn spark_port(defaults: &std::collections::BTreeMap<String, String>, key: &str, dflt: u16) -> u16 {
    defaults
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(dflt)
}

fn listen(name: &str, port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        Error::Usage(format!(
            "cannot listen on 127.0.0.1:{port} for the {name}: {e}; pick other local ports with --port-base N (or 0 for free ones)"
        ))
    })
}

pub fn run(args: &TunnelArgs) -> Result<ExitCode, Error> {
    let target = Target::resolve(&args.common)?;
    let master = target.inventory.master.clone();
    let d = &target.config.spark.defaults;
    let services: [(&'static str, u16, &str); 4] = [
        ("master-ui", target.config.spark.master_webui_port, "http"),
        ("app-ui", spark_port(d, "spark.ui.port", 4040), "http"),
        (
            "history",
            // `[spark] history_port`, unless a `[spark.defaults]` line (written after it) wins.
            spark_port(d, "spark.history.ui.port", target.config.spark.history_port),
            "http",
        ),
        (
            "connect",
            spark_port(
                d,
                "spark.connect.grpc.binding.port",
                target.config.spark.connect_port,
            ),
            "sc",
        ),
    ];
    let mut listeners = Vec::new();
    for (i, (name, remote_port, scheme)) in services.iter().enumerate() {
        let local_port = match args.port_base {
            None => *remote_port,
            Some(0) => 0,
            Some(b) => b.checked_add(i as u16).ok_or_else(|| {
                Error::Usage(format!("--port-base {b} leaves no room for four ports"))
            })?,
        };
        let listener = listen(name, local_port)?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("cannot read the local port of the {name}: {e}")))?
            .port();
        let local = format!("127.0.0.1:{port}");
        let url = match *scheme {
            "sc" => format!("sc://localhost:{port}"),
            _ => format!("http://{local}/"),
        };
        let token_file = (*scheme == "sc" && target.config.spark.connect_server).then(|| {
            target
                .config
                .state_dir
                .join(crate::spark::CONNECT_TOKEN_FILE)
                .display()
                .to_string()
        });
        listeners.push((
            listener,
            Forward {
                name,
                local,
                url,
                token_file,
                remote: format!("{}:{remote_port}", master.address),
                remote_port: *remote_port,
            },
        ));
    }

    let conn = Connection::open(&master, &target.config.ssh, &target.known_hosts)?;
    let label = format!("{}:{}", master.address, master.port);
    let forwarder = Arc::new(
        conn.into_forwarder(&label, &target.config.ssh)
            .map_err(|e| crate::transport::TransportError::Ssh {
                host: master.name.clone(),
                context: "starting the forwarding thread".into(),
                message: e,
            })?,
    );

    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
    }
    let forwards: Vec<Forward> = listeners.iter().map(|(_, f)| f.clone()).collect();
    if args.common.json {
        let doc = serde_json::json!({
            "schema": 1, "command": "tunnel", "master": master.address, "forwards": forwards,
        });
        println!("{doc}");
    } else {
        println!("Forwarding through {} ({}):", master.name, master.address);
        for f in &forwards {
            println!("  {:<10} {:<28} -> {}", f.name, f.url, f.remote);
            if let Some(t) = &f.token_file {
                println!(
                    "  {:<10} its token is in {t} (add ;token=... to the URL)",
                    ""
                );
            }
        }
        println!("Press Ctrl-C to stop.");
    }
    let _ = std::io::stdout().flush();

    for (listener, forward) in listeners {
        let forwarder = forwarder.clone();
        let address = master.address.clone();
        std::thread::Builder::new()
            .name(format!("tunnel {}", forward.name))
            .spawn(move || accept(listener, forward, address, forwarder))
            .map_err(|e| Error::Usage(format!("cannot start a thread: {e}")))?;
    }
    while !STOP.load(Ordering::SeqCst) {
        if !forwarder.alive() {
            eprintln!(
                "sparkboot: tunnel: the session to {} ended; run `sparkboot tunnel` again",
                master.name
            );
            return Ok(ExitCode::from(EXIT_HOST_FAILED));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ExitCode::SUCCESS)
}

fn accept(listener: TcpListener, forward: Forward, address: String, fwd: Arc<Forwarder>) {
    for stream in listener.incoming() {
        let Ok(client) = stream else { continue };
        let (forward, address, fwd) = (forward.clone(), address.clone(), fwd.clone());
        let _ = std::thread::Builder::new()
            .name(format!("tunnel {} conn", forward.name))
            .spawn(move || match fwd.tunnel(&address, forward.remote_port) {
                Ok(channel) => bridge(client, channel),
                Err(e) => eprintln!(
                    "sparkboot: tunnel: {} ({} -> {}): {e}; is it running on the master?",
                    forward.name, forward.local, forward.remote
                ),
            });
    }
}

/// Copies both ways until the far side has answered and closed (or the client has gone). A
/// client that only half-closes keeps its channel until the far side closes: the pump ends a
/// channel when its local side reaches EOF, which would cut off a reply still on its way.
fn bridge(client: TcpStream, channel: std::os::unix::net::UnixStream) {
    let (Ok(mut client_in), Ok(mut channel_out)) = (client.try_clone(), channel.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match client_in.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if channel_out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (mut channel_in, mut client_out) = (channel, client);
    let _ = std::io::copy(&mut channel_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = channel_in.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_spark_defaults_when_set() {
        let mut d = std::collections::BTreeMap::new();
        d.insert("spark.ui.port".to_string(), "4050".to_string());
        assert_eq!(spark_port(&d, "spark.ui.port", 4040), 4050);
        assert_eq!(spark_port(&d, "spark.history.ui.port", 18080), 18080);
        d.insert("spark.history.ui.port".to_string(), "nope".to_string());
        assert_eq!(spark_port(&d, "spark.history.ui.port", 18080), 18080);
    }
}
