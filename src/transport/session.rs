//! One authenticated, host-key-verified SSH session, and running scripts over it.
//!
//! A target behind a jump host gets its stream from the run's [`JumpPool`] (a channel on the one
//! shared jump session) and then handshakes, verifies and authenticates exactly as a direct one.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use ssh2::{HostKeyType, MethodType, Session};

use super::jump::JumpSpec;
use super::pool::JumpPool;
use super::{KnownHosts, SshOptions, TransportError};
use crate::inventory::Host;
use crate::shell::{self, Privilege};

/// What a remote command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub exit_status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_status == 0
    }
}

/// An open session to one host. Dropping it closes the connection.
pub struct Connection {
    session: Session,
    host_name: String,
    login_is_root: bool,
    command_timeout: Duration,
}

// Prefer key types every modern sshd has and libssh2 verifies quickly; the order is also what
// makes the pinned key stable from run to run.
const HOST_KEY_PREFS: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

fn key_type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Unknown => "unknown",
    }
}

/// Why one attempt failed, and whether trying again can help.
pub(super) enum Attempt {
    Retry(String),
    Fatal(TransportError),
}

impl Connection {
    /// One session on its own (a one-off command): a host behind a jump host gets a jump
    /// session of its own, which ends with this connection. Fan-outs use [`Connection::open_via`].
    pub fn open(
        host: &Host,
        opts: &SshOptions,
        known_hosts: &KnownHosts,
    ) -> Result<Self, TransportError> {
        Self::open_via(host, opts, known_hosts, &JumpPool::new())
    }

    /// Connects, retrying refused or dropped connections with backoff and jitter until the
    /// deadline; host-key and authentication failures are final at once. A host with a
    /// `jump_host` is reached through `jumps`, the run's shared jump sessions.
    pub fn open_via(
        host: &Host,
        opts: &SshOptions,
        known_hosts: &KnownHosts,
        jumps: &JumpPool,
    ) -> Result<Self, TransportError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut backoff = Duration::from_millis(200);
        loop {
            attempts += 1;
            match Self::try_open(host, opts, known_hosts, jumps) {
                Ok(conn) => return Ok(conn),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(last)) => {
                    let waited = started.elapsed();
                    if waited + backoff > opts.retry_deadline {
                        return Err(TransportError::Unreachable {
                            host: host.name.clone(),
                            endpoint: format!("{}:{}", host.address, host.port),
                            attempts,
                            waited_secs: waited.as_secs(),
                            last,
                        });
                    }
                    let jitter = rand::thread_rng().gen_range(0.5..1.5);
                    std::thread::sleep(backoff.mul_f64(jitter));
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One attempt: connect (directly, or through the jump pool), handshake, verify the host
    /// key against the pins, authenticate.
    pub(super) fn try_open(
        host: &Host,
        opts: &SshOptions,
        known_hosts: &KnownHosts,
        jumps: &JumpPool,
    ) -> Result<Self, Attempt> {
        let ssh_err = |context: &str, e: ssh2::Error| {
            Attempt::Fatal(TransportError::Ssh {
                host: host.name.clone(),
                context: context.to_string(),
                message: e.to_string(),
            })
        };
        let mut session = Session::new().map_err(|e| ssh_err("creating a session", e))?;
        match &host.jump_host {
            Some(spec) => {
                let spec = JumpSpec::parse(spec, host).map_err(Attempt::Fatal)?;
                session.set_tcp_stream(jumps.tunnel(host, &spec, opts, known_hosts)?);
            }
            None => {
                let tcp = connect_tcp(&host.address, host.port, opts.connect_timeout)
                    .map_err(Attempt::Retry)?;
                session.set_tcp_stream(tcp);
            }
        }
        session.set_timeout(duration_ms(opts.connect_timeout));
        session
            .method_pref(MethodType::HostKey, HOST_KEY_PREFS)
            .map_err(|e| ssh_err("setting host key preferences", e))?;
        // A handshake that fails is usually sshd still starting, or MaxStartups dropping us.
        session
            .handshake()
            .map_err(|e| Attempt::Retry(format!("SSH handshake failed: {e}")))?;
        let (key, kind) = session
            .host_key()
            .ok_or_else(|| Attempt::Retry("the server sent no host key".into()))?;
        let key_b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(key)
        };
        known_hosts
            .verify(
                &host.address,
                host.port,
                host.vars.get("instance_id").map(String::as_str),
                key_type_name(kind),
                &key_b64,
            )
            .map_err(|e| Attempt::Fatal(e.into()))?;
        authenticate(&session, host, opts).map_err(Attempt::Fatal)?;
        session.set_keepalive(true, opts.keepalive.as_secs().max(1) as u32);
        Ok(Connection {
            session,
            host_name: host.name.clone(),
            login_is_root: host.user == "root",
            command_timeout: opts.command_timeout,
        })
    }

    /// The bare session, for the jump pool's pump thread to own.
    pub(super) fn into_session(self) -> Session {
        self.session
    }

    /// Runs `script` with `sh -c` (through sudo for `Privilege::Root` when the login user is not
    /// root), feeding `stdin` if given. Secrets belong in `stdin`, never in `script`.
    pub fn run(
        &self,
        script: &str,
        privilege: Privilege,
        stdin: Option<&[u8]>,
    ) -> Result<Output, TransportError> {
        self.run_watched(script, privilege, stdin, &mut ())
    }

    /// [`run`](Self::run), telling `watch` what goes in and comes out while the command runs.
    pub fn run_watched(
        &self,
        script: &str,
        privilege: Privilege,
        stdin: Option<&[u8]>,
        watch: &mut dyn Watch,
    ) -> Result<Output, TransportError> {
        let command = shell::wrap(script, privilege, self.login_is_root);
        let mut bytes = stdin;
        self.exec_raw(&command, bytes.as_mut().map(|b| b as &mut dyn Read), watch)
    }

    fn exec_raw(
        &self,
        command: &str,
        stdin: Option<&mut dyn Read>,
        watch: &mut dyn Watch,
    ) -> Result<Output, TransportError> {
        let started = Instant::now();
        let err = |context: &str, e: &dyn std::fmt::Display| {
            let message = e.to_string();
            if started.elapsed() >= self.command_timeout {
                // The channel is stuck: closing it and the session must not wait for a host
                // that does not answer (each blocking call would wait a whole timeout again).
                self.session.set_timeout(1);
                TransportError::Timeout {
                    host: self.host_name.clone(),
                    what: context.to_string(),
                    secs: self.command_timeout.as_secs(),
                }
            } else {
                TransportError::Ssh {
                    host: self.host_name.clone(),
                    context: context.to_string(),
                    message,
                }
            }
        };
        // libssh2's timeout bounds each blocking call; the whole command is bounded by checking
        // the elapsed time between reads.
        self.session.set_timeout(duration_ms(self.command_timeout));
        let _ = self.session.keepalive_send();
        // Nothing has run yet when no channel opens: the session itself is gone (an idle
        // session across `watch` reconciles, a restarted sshd), and the caller may reconnect.
        let mut channel =
            self.session
                .channel_session()
                .map_err(|e| TransportError::SessionLost {
                    host: self.host_name.clone(),
                    message: e.to_string(),
                })?;
        channel
            .exec(command)
            .map_err(|e| err("starting a command", &e))?;
        if let Some(data) = stdin {
            self.send_input(data, &mut channel, started, watch)
                .map_err(|e| err("sending input", &e))?;
        }
        channel.send_eof().map_err(|e| err("closing input", &e))?;
        let mut stdout = Vec::new();
        let mut buf = [0u8; 32 * 1024];
        loop {
            // Each blocking wait may last only what is left of the command's time, so a silent
            // host fails at the deadline rather than up to a whole timeout after it.
            let left = self.command_timeout.saturating_sub(started.elapsed());
            self.session
                .set_timeout(duration_ms(left.max(Duration::from_millis(1))));
            match channel.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    watch.stdout(&buf[..n]);
                    stdout.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // With keepalives on, libssh2 gives up a blocking wait when the next keepalive is
                // due ("Timed out waiting on socket") after sending it; the session is fine, so
                // wait again until our own deadline.
                Err(e) if is_wait_timeout(&e) && started.elapsed() < self.command_timeout => {
                    continue
                }
                // libssh2's words for a connection that closed under the command.
                Err(e) if e.to_string().contains("transport read") => {
                    return Err(err(
                        "reading output",
                        &"the connection was lost while the command ran (the node went down, or its sshd ended the session); run again once the node is back",
                    ))
                }
                Err(e) => return Err(err("reading output", &e)),
            }
            if started.elapsed() > self.command_timeout {
                return Err(err("a command", &"timed out"));
            }
        }
        let mut stderr = Vec::new();
        channel
            .stderr()
            .read_to_end(&mut stderr)
            .map_err(|e| err("reading errors", &e))?;
        channel
            .wait_close()
            .map_err(|e| err("closing the channel", &e))?;
        let exit_status = channel
            .exit_status()
            .map_err(|e| err("reading the exit status", &e))?;
        Ok(Output {
            exit_status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn send_input(
        &self,
        data: &mut dyn Read,
        channel: &mut ssh2::Channel,
        started: Instant,
        watch: &mut dyn Watch,
    ) -> std::io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut sent = 0;
            while sent < n {
                match channel.write(&buf[sent..n]) {
                    Ok(m) => sent += m,
                    Err(e) if is_wait_timeout(&e) && started.elapsed() < self.command_timeout => {
                        continue
                    }
                    Err(e) => return Err(e),
                }
            }
            total += n as u64;
            watch.sent(total);
        }
    }

    /// Streams a local file into a remote command's stdin (used to push large files) without
    /// holding it in memory.
    pub fn run_with_file(
        &self,
        script: &str,
        privilege: Privilege,
        local: &Path,
        watch: &mut dyn Watch,
    ) -> Result<Output, TransportError> {
        let mut file = std::fs::File::open(local).map_err(|e| TransportError::Ssh {
            host: self.host_name.clone(),
            context: format!("reading {}", local.display()),
            message: e.to_string(),
        })?;
        let command = shell::wrap(script, privilege, self.login_is_root);
        self.exec_raw(&command, Some(&mut file), watch)
    }
}

/// Where [`Connection::stream`] sends what the remote command prints, as it arrives.
pub trait StreamSink {
    fn stdout(&mut self, bytes: &[u8]);
    fn stderr(&mut self, bytes: &[u8]);
}

impl Connection {
    /// Runs `script` like [`Connection::run`], but hands its stdout and stderr to `sink` as they
    /// arrive, with no overall time limit (a Spark application runs as long as it runs), and
    /// returns its exit status. The command's stdin stays open, with nothing sent, until it has
    /// finished: a script can treat EOF on its stdin as "the controller has gone" (the session
    /// dropped, or sparkboot was killed) and stop what it started.
    ///
    /// Both streams share the channel's window, so they are read together: the session is made
    /// non-blocking for the duration and the loop sleeps in poll(2) on its socket (the same
    /// shape as the jump pump), sending a keepalive when one is due.
    pub fn stream(
        &self,
        script: &str,
        privilege: Privilege,
        sink: &mut dyn StreamSink,
    ) -> Result<i32, TransportError> {
        let command = shell::wrap(script, privilege, self.login_is_root);
        let err = |context: &str, e: &dyn std::fmt::Display| TransportError::Ssh {
            host: self.host_name.clone(),
            context: context.to_string(),
            message: e.to_string(),
        };
        self.session.set_timeout(duration_ms(self.command_timeout));
        let mut channel =
            self.session
                .channel_session()
                .map_err(|e| TransportError::SessionLost {
                    host: self.host_name.clone(),
                    message: e.to_string(),
                })?;
        channel
            .exec(&command)
            .map_err(|e| err("starting a command", &e))?;
        self.session.set_blocking(false);
        let result = self.pump(&mut channel, sink);
        self.session.set_blocking(true);
        result.map_err(|e| err("streaming output", &e))?;
        channel
            .close()
            .map_err(|e| err("closing the channel", &e))?;
        channel
            .wait_close()
            .map_err(|e| err("closing the channel", &e))?;
        channel
            .exit_status()
            .map_err(|e| err("reading the exit status", &e))
    }

    /// Moves output to `sink` until the remote side has sent EOF and both streams are drained.
    fn pump(&self, channel: &mut ssh2::Channel, sink: &mut dyn StreamSink) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.session.as_raw_fd();
        let mut buf = vec![0u8; 32 * 1024];
        let keepalive = Duration::from_secs(15);
        let mut next_keepalive = Instant::now() + keepalive;
        let (mut out_done, mut err_done) = (false, false);
        loop {
            let mut moved = false;
            if !out_done {
                match channel.read(&mut buf) {
                    Ok(0) => out_done = channel.eof(),
                    Ok(n) => {
                        sink.stdout(&buf[..n]);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if !err_done {
                match channel.stderr().read(&mut buf) {
                    Ok(0) => err_done = channel.eof(),
                    Ok(n) => {
                        sink.stderr(&buf[..n]);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if out_done && err_done {
                return Ok(());
            }
            if Instant::now() >= next_keepalive {
                match self.session.keepalive_send() {
                    Ok(_) => next_keepalive = Instant::now() + keepalive,
                    // LIBSSH2_ERROR_EAGAIN: the keepalive goes out with the next write.
                    Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if moved {
                continue;
            }
            // libssh2 may already hold data it read off the socket for either stream.
            if channel.read_window().available > 0 || channel.eof() {
                continue;
            }
            let mut events = libc::POLLIN;
            if matches!(
                self.session.block_directions(),
                ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
            ) {
                events |= libc::POLLOUT;
            }
            let mut pfd = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            let wait = next_keepalive
                .saturating_duration_since(Instant::now())
                .as_millis()
                .clamp(1, 1000) as i32;
            // SAFETY: one live pollfd for the whole call.
            let n = unsafe { libc::poll(&mut pfd, 1, wait) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// Hands the session to a pump thread that forwards local streams to `address:port` as
    /// seen from this host (`direct-tcpip` channels): what `sparkboot tunnel` serves its local
    /// ports with. The pump is the jump hosts' (one thread owns the session and every channel).
    pub fn into_forwarder(
        self,
        label: &str,
        opts: &SshOptions,
    ) -> Result<super::Forwarder, String> {
        super::jump::JumpSession::start(self.session, label, opts.keepalive, opts.connect_timeout)
    }
}

/// Told what a command sends and receives while it runs (the progress of a long transfer).
/// Both default to nothing; `()` watches nothing.
pub trait Watch {
    /// `total` bytes of the command's input have been sent so far.
    fn sent(&mut self, _total: u64) {}
    /// A chunk of the command's stdout, as it arrives.
    fn stdout(&mut self, _chunk: &[u8]) {}
}

impl Watch for () {}

fn is_wait_timeout(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::TimedOut || e.to_string().contains("Timed out waiting on socket")
}

fn duration_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn connect_tcp(address: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = (address, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?;
    let mut last = format!("{address} resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn authenticate(session: &Session, host: &Host, opts: &SshOptions) -> Result<(), TransportError> {
    let mut tried = Vec::new();
    if let Some(key) = &host.identity_file {
        tried.push(format!("key {}", key.display()));
        if session
            .userauth_pubkey_file(&host.user, None, key, None)
            .is_ok()
        {
            return Ok(());
        }
    }
    if opts.use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
        tried.push("ssh-agent".into());
        if session.userauth_agent(&host.user).is_ok() && session.authenticated() {
            return Ok(());
        }
    }
    if tried.is_empty() {
        tried.push("nothing: no identity_file and no ssh-agent".into());
    }
    Err(TransportError::Auth {
        host: host.name.clone(),
        user: host.user.clone(),
        tried: tried.join(", "),
    })
}
