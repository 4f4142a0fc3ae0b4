//! Reaching hosts through a jump host (workers in private subnets).
//!
//! libssh2 has no ProxyJump, so each target's session runs over one end of a local socket pair
//! whose other end is bridged to a `direct-tcpip` channel on the jump host's session. One jump
//! session carries every target behind that jump host (see [`super::pool`]): its sshd sees one
//! handshake per run instead of one per target, which is what its MaxStartups can take.
//!
//! A libssh2 session is not safe to drive from several threads, and a channel open cannot be
//! interleaved with another (libssh2 keeps one open in flight per session), so one **pump thread
//! per jump session** owns the session and every channel on it: it opens tunnels from a request
//! queue, one at a time, and moves bytes both ways. It sleeps in poll(2) on the jump session's
//! TCP socket, every tunnel's local socket and an eventfd that wakes it for a new request or for
//! shutdown; nothing polls on a timer except the keepalive. libssh2 reads every packet the socket
//! holds into per-channel queues whenever any channel is read, so before sleeping the pump also
//! asks each channel whether libssh2 already holds data, an EOF or write window for it (that
//! costs no socket I/O) and goes round again instead of sleeping on data already in hand.
//!
//! A tunnel ends when the target's session closes its end (the pump closes the channel and drops
//! its socket) or the far side ends the channel. The pump ends when its handle (held by the pool)
//! is gone and the last tunnel has closed, or when the jump session dies; then every tunnel's
//! socket closes, the targets see their sessions end, and the pool opens a new jump session for
//! the next connect.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, ErrorCode, Session};

use super::TransportError;
use crate::inventory::{Host, NodeRole};

/// `user@address:port`, with user and port optional (defaulting to the target's user and 22).
#[derive(Debug, Clone, PartialEq)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub address: String,
    pub port: u16,
}

impl JumpSpec {
    pub fn parse(spec: &str, target: &Host) -> Result<Self, TransportError> {
        let bad = |message: &str| TransportError::JumpSpec {
            host: target.name.clone(),
            spec: spec.to_string(),
            message: message.to_string(),
        };
        let (user, rest) = match spec.split_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad("the user before '@' is empty")),
            None => (None, spec),
        };
        let (address, port) = match rest.rsplit_once(':') {
            Some((a, p)) => (
                a,
                p.parse()
                    .map_err(|_| bad("the port after ':' is not a number"))?,
            ),
            None => (rest, 22),
        };
        if address.is_empty() {
            return Err(bad("the address is empty; write user@address:port"));
        }
        Ok(JumpSpec {
            user,
            address: address.to_string(),
            port,
        })
    }

    /// The jump host as a host of its own, using the target's key.
    pub fn as_host(&self, target: &Host) -> Host {
        Host {
            name: format!("{} (jump for {})", self.address, target.name),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone().unwrap_or_else(|| target.user.clone()),
            identity_file: target.identity_file.clone(),
            jump_host: None,
            role: NodeRole::Worker,
            vars: Default::default(),
        }
    }
}

/// libssh2's "would block" (LIBSSH2_ERROR_EAGAIN) on a non-blocking session.
const EAGAIN: i32 = -37;
/// libssh2 errors that mean the jump session's transport itself is gone (socket send/receive
/// failed, disconnected, timed out, or the key exchange broke), not just one channel.
const SESSION_FATAL: [i32; 6] = [-7, -8, -9, -13, -30, -43];
/// Bytes buffered per direction per tunnel before the pump stops reading that side.
const TUNNEL_BUFFER: usize = 256 * 1024;

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

/// One tunnel request for the pump: open `address:port` from the jump host and bridge it to
/// `local`; the outcome goes back on `reply`.
struct Open {
    address: String,
    port: u16,
    local: UnixStream,
    reply: mpsc::SyncSender<Result<(), String>>,
}

/// An eventfd that wakes the pump out of poll(2).
struct Waker(OwnedFd);

impl Waker {
    fn new() -> std::io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd that we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Waker(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. A full counter (EAGAIN)
        // still leaves the fd readable, which is all a wake needs.
        unsafe {
            libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking eventfd.
        unsafe {
            libc::read(self.0.as_raw_fd(), (&mut n as *mut u64).cast(), 8);
        }
    }
}

/// The handle to one jump session's pump thread. Dropping it lets the pump end once its last
/// tunnel closes.
pub struct JumpSession {
    requests: Option<mpsc::Sender<Open>>,
    waker: Arc<Waker>,
    alive: Arc<AtomicBool>,
    label: String,
}

impl JumpSession {
    /// Hands an authenticated, verified session to a new pump thread. `open_timeout` bounds how
    /// long the jump host may take to confirm one tunnel (a jump host that takes longer is
    /// treated as dead: libssh2 cannot abandon an open in flight and start another).
    pub fn start(
        session: Session,
        label: &str,
        keepalive: Duration,
        open_timeout: Duration,
    ) -> Result<JumpSession, String> {
        let waker = Arc::new(Waker::new().map_err(|e| format!("cannot create an eventfd: {e}"))?);
        let alive = Arc::new(AtomicBool::new(true));
        let (tx, rx) = mpsc::channel();
        session.set_blocking(false);
        // No reply wanted: with no channel open, nothing would read the reply off the socket.
        session.set_keepalive(false, keepalive.as_secs().max(1) as u32);
        let pump = Pump {
            session,
            requests: rx,
            waker: waker.clone(),
            alive: alive.clone(),
            keepalive: keepalive.max(Duration::from_secs(1)),
            open_timeout,
            label: label.to_string(),
        };
        std::thread::Builder::new()
            .name(format!("jump {label}"))
            .spawn(move || pump.run())
            .map_err(|e| format!("cannot start the pump thread: {e}"))?;
        Ok(JumpSession {
            requests: Some(tx),
            waker,
            alive,
            label: label.to_string(),
        })
    }

    /// False once the jump session has died (the pump has ended).
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// A stream that reaches `address:port` from the jump host, for a target's session to run
    /// over. Blocks until the jump host has confirmed the channel (or refused it).
    pub fn tunnel(&self, address: &str, port: u16) -> Result<UnixStream, String> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| format!("cannot create a socket pair: {e}"))?;
        theirs
            .set_nonblocking(true)
            .map_err(|e| format!("cannot make the socket pair non-blocking: {e}"))?;
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || format!("the session to jump host {} has ended", self.label);
        let requests = self.requests.as_ref().ok_or_else(gone)?;
        requests
            .send(Open {
                address: address.to_string(),
                port,
                local: theirs,
                reply,
            })
            .map_err(|_| gone())?;
        self.waker.wake();
        match answer.recv() {
            Ok(Ok(())) => Ok(ours),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(gone()),
        }
    }
}

impl Drop for JumpSession {
    fn drop(&mut self) {
        // Closing the queue first is what tells the pump that no request can come any more.
        self.requests = None;
        self.waker.wake();
    }
}

/// Why a tunnel stopped: its own sockets, or the whole jump session.
enum TunnelFault {
    Tunnel,
    Session(String),
}

struct Tunnel {
    channel: Channel,
    local: UnixStream,
    /// Bytes read from the target's side, not yet written to the channel.
    up: Vec<u8>,
    /// Bytes read from the channel, not yet written to the target's side.
    down: Vec<u8>,
    local_eof: bool,
    remote_eof: bool,
}

impl Tunnel {
    /// Moves what can move without blocking, both ways. Returns whether anything moved.
    fn service(&mut self, session: &Session, buf: &mut [u8]) -> Result<bool, TunnelFault> {
        let mut moved = false;
        if !self.local_eof && self.up.len() < TUNNEL_BUFFER {
            match self.local.read(buf) {
                Ok(0) => {
                    self.local_eof = true;
                    moved = true;
                }
                Ok(n) => {
                    self.up.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                // The target's side is gone: as good as its EOF (what it sent still goes out).
                Err(_) => {
                    self.local_eof = true;
                    self.down.clear();
                    moved = true;
                }
            }
        }
        while !self.up.is_empty() {
            match self.channel.write(&self.up) {
                Ok(0) => break,
                Ok(n) => {
                    self.up.drain(..n);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Err(classify(session)),
            }
        }
        if !self.remote_eof && self.down.len() < TUNNEL_BUFFER {
            match self.channel.read(buf) {
                Ok(0) => {
                    if self.channel.eof() {
                        self.remote_eof = true;
                        moved = true;
                    }
                }
                Ok(n) => {
                    self.down.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Err(classify(session)),
            }
        }
        while !self.down.is_empty() && !self.local_eof {
            match self.local.write(&self.down) {
                Ok(n) => {
                    self.down.drain(..n);
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    break
                }
                Err(_) => {
                    self.local_eof = true;
                    self.down.clear();
                    moved = true;
                }
            }
        }
        Ok(moved)
    }

    /// Done: the target closed its end, or the far side ended the channel and everything it
    /// sent reached the target; and in both cases nothing is left to write to the channel.
    /// Never before `up` is empty: a write that would block may have left part of a packet in
    /// libssh2's output buffer, which only the same write can finish, and a channel abandoned
    /// then would block every later send on the shared session.
    fn finished(&self) -> bool {
        self.up.is_empty() && (self.local_eof || (self.remote_eof && self.down.is_empty()))
    }

    /// libssh2 already holds something for this tunnel (read from the socket while serving
    /// another channel), so sleeping in poll(2) would strand it. Costs no socket I/O.
    fn ready_inside(&self) -> bool {
        (!self.remote_eof
            && self.down.len() < TUNNEL_BUFFER
            && (self.channel.read_window().available > 0 || self.channel.eof()))
            || (!self.up.is_empty() && self.channel.write_window().remaining > 0)
    }

    fn events(&self) -> libc::c_short {
        let mut ev = 0;
        if !self.local_eof && self.up.len() < TUNNEL_BUFFER {
            ev |= libc::POLLIN;
        }
        if !self.down.is_empty() {
            ev |= libc::POLLOUT;
        }
        ev
    }
}

/// After a channel error: is the session itself gone, or only this channel?
fn classify(session: &Session) -> TunnelFault {
    match ssh2::Error::last_session_error(session) {
        Some(e) if matches!(e.code(), ErrorCode::Session(c) if SESSION_FATAL.contains(&c)) => {
            TunnelFault::Session(e.to_string())
        }
        _ => TunnelFault::Tunnel,
    }
}

struct Pump {
    session: Session,
    requests: mpsc::Receiver<Open>,
    waker: Arc<Waker>,
    alive: Arc<AtomicBool>,
    keepalive: Duration,
    open_timeout: Duration,
    label: String,
}

impl Pump {
    fn run(self) {
        let reason = self.serve();
        self.alive.store(false, Ordering::Release);
        // Requests still queued get the reason; their senders learn it from `tunnel`.
        while let Ok(open) = self.requests.try_recv() {
            let _ = open.reply.try_send(Err(reason.clone()));
        }
    }

    /// The pump loop; returns why it ended (only read when a request is still waiting).
    fn serve(&self) -> String {
        let fd = self.session.as_raw_fd();
        let mut queue: VecDeque<Open> = VecDeque::new();
        let mut opening_since: Option<Instant> = None;
        let mut tunnels: Vec<Tunnel> = Vec::new();
        let mut closing: Vec<Channel> = Vec::new();
        let mut handle_gone = false;
        let mut hangup = false;
        let mut idle_spins = 0u32;
        let mut next_keepalive = Instant::now() + self.keepalive;
        let mut buf = vec![0u8; 32 * 1024];
        let mut fds: Vec<libc::pollfd> = Vec::new();
        loop {
            loop {
                match self.requests.try_recv() {
                    Ok(open) => queue.push_back(open),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        handle_gone = true;
                        break;
                    }
                }
            }
            let mut moved = false;
            let mut dead: Option<String> = None;

            // Opens, strictly one at a time (libssh2 keeps a single open in flight).
            while let Some(front) = queue.front() {
                let since = *opening_since.get_or_insert_with(Instant::now);
                match self
                    .session
                    .channel_direct_tcpip(&front.address, front.port, None)
                {
                    Ok(channel) => {
                        opening_since = None;
                        moved = true;
                        if let Some(open) = queue.pop_front() {
                            if open.reply.try_send(Ok(())).is_ok() {
                                tunnels.push(Tunnel {
                                    channel,
                                    local: open.local,
                                    up: Vec::new(),
                                    down: Vec::new(),
                                    local_eof: false,
                                    remote_eof: false,
                                });
                            } else {
                                closing.push(channel);
                            }
                        }
                    }
                    Err(e) if is_eagain(&e) => {
                        if since.elapsed() > self.open_timeout {
                            dead = Some(format!(
                                "jump host {} did not confirm a tunnel to {}:{} within {}s",
                                self.label,
                                front.address,
                                front.port,
                                self.open_timeout.as_secs()
                            ));
                        }
                        break;
                    }
                    Err(e) => {
                        opening_since = None;
                        moved = true;
                        if let TunnelFault::Session(m) = classify(&self.session) {
                            dead = Some(m);
                        }
                        if let Some(open) = queue.pop_front() {
                            let _ = open.reply.try_send(Err(format!(
                                "cannot open a tunnel to {}:{}: {e}",
                                open.address, open.port
                            )));
                        }
                    }
                }
                if dead.is_some() {
                    break;
                }
            }

            let mut i = 0;
            while dead.is_none() && i < tunnels.len() {
                match tunnels[i].service(&self.session, &mut buf) {
                    Ok(m) => {
                        moved |= m;
                        if !tunnels[i].finished() {
                            i += 1;
                            continue;
                        }
                    }
                    Err(TunnelFault::Tunnel) => {}
                    Err(TunnelFault::Session(m)) => {
                        dead = Some(m);
                        break;
                    }
                }
                // Finished or broken: close the channel; dropping the socket tells the target.
                let t = tunnels.swap_remove(i);
                closing.push(t.channel);
                moved = true;
            }
            // A close waits for the far side's CLOSE; keep trying until it has come.
            closing.retain_mut(|c| matches!(c.close(), Err(e) if is_eagain(&e)));

            if dead.is_none() && Instant::now() >= next_keepalive {
                match self.session.keepalive_send() {
                    Ok(secs) => {
                        next_keepalive =
                            Instant::now() + Duration::from_secs(u64::from(secs.max(1)))
                    }
                    Err(e) if is_eagain(&e) => {
                        next_keepalive = Instant::now() + Duration::from_millis(200)
                    }
                    Err(e) => dead = Some(format!("keepalive failed: {e}")),
                }
            }
            if dead.is_none() && hangup {
                dead = Some("the jump host closed the connection".into());
            }
            if let Some(reason) = dead {
                for open in queue {
                    let _ = open.reply.try_send(Err(reason.clone()));
                }
                return reason;
            }
            if handle_gone && tunnels.is_empty() && queue.is_empty() {
                return "the jump session was closed".into();
            }
            if moved {
                idle_spins = 0;
                continue;
            }

            let held = tunnels.iter().any(Tunnel::ready_inside);
            let timeout_ms = if held {
                // Normally the next pass moves it; if it does not, back off to 1 ms so a
                // misjudged hint cannot spin a core.
                idle_spins += 1;
                if idle_spins > 2 {
                    1
                } else {
                    0
                }
            } else {
                let mut until = next_keepalive;
                if let Some(since) = opening_since {
                    until = until.min(since + self.open_timeout + Duration::from_millis(10));
                }
                let ms = until.saturating_duration_since(Instant::now()).as_millis();
                i32::try_from(ms).unwrap_or(i32::MAX).max(1)
            };

            fds.clear();
            fds.push(pollfd(self.waker.0.as_raw_fd(), libc::POLLIN));
            // Ask for input only when something will read it: with no channel and no open in
            // progress, unread bytes would wake poll forever. Hang-ups are always reported.
            let reading = !queue.is_empty()
                || !closing.is_empty()
                || tunnels
                    .iter()
                    .any(|t| !t.remote_eof && t.down.len() < TUNNEL_BUFFER);
            let mut ev = libc::POLLRDHUP;
            if reading {
                ev |= libc::POLLIN;
            }
            if matches!(
                self.session.block_directions(),
                BlockDirections::Outbound | BlockDirections::Both
            ) {
                ev |= libc::POLLOUT;
            }
            fds.push(pollfd(fd, ev));
            for t in &tunnels {
                fds.push(pollfd(t.local.as_raw_fd(), t.events()));
            }
            // SAFETY: `fds` is a live, correctly sized array of pollfd for the whole call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return format!("poll failed: {e}");
                }
                continue;
            }
            if fds[0].revents & libc::POLLIN != 0 {
                self.waker.drain();
            }
            if fds[1].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0 {
                // One more pass reads what is still buffered, then the session is declared dead.
                hangup = true;
            }
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Host {
        Host::new(
            "w1".into(),
            "127.1.0.3".into(),
            22,
            "ec2-user".into(),
            None,
            None,
            NodeRole::Worker,
            Default::default(),
        )
        .expect("valid host")
    }

    #[test]
    fn parses_full_and_short_specs() {
        assert_eq!(
            JumpSpec::parse("admin@127.1.0.2:2222", &target()).expect("full"),
            JumpSpec {
                user: Some("admin".into()),
                address: "127.1.0.2".into(),
                port: 2222
            }
        );
        let short = JumpSpec::parse("bastion.example", &target()).expect("short");
        assert_eq!((short.user.clone(), short.port), (None, 22));
        assert_eq!(short.as_host(&target()).user, "ec2-user");
    }

    #[test]
    fn rejects_bad_specs_naming_the_host() {
        let err = JumpSpec::parse("@x", &target()).expect_err("empty user");
        assert!(err.to_string().contains("w1"), "{err}");
        assert!(JumpSpec::parse("x:notaport", &target()).is_err());
    }
}
