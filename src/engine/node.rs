//! One host as every command sees it: its inventory entry, its SSH session (opened once, kept
//! across phases and, for `watch`, across reconciles), whether it is still usable, and its
//! progress line. What a command learns about the host lives in the command's own per-host
//! value, not here.

use std::sync::Arc;

use crate::inventory::Host;
use crate::plan::Payload;
use crate::report::transfer::ProgressLines;
use crate::report::HostBar;
use crate::shell::Privilege;
use crate::transport::{
    Connection, JumpPool, KnownHosts, Output, SshOptions, StreamSink, TransportError, Watch,
};

#[derive(Debug, Clone, PartialEq)]
pub enum NodeState {
    Running,
    Failed(String),
    Unreachable(String),
}

/// How to (re)open a session: shared by every node of a run, and so the owner of the run's jump
/// sessions (one per jump host, whatever the number of targets behind it).
#[derive(Debug)]
pub struct Link {
    pub ssh: SshOptions,
    pub known: Arc<KnownHosts>,
    pub jumps: JumpPool,
}

pub struct Node {
    pub host: Host,
    conn: Option<Connection>,
    pub state: NodeState,
    pub bar: HostBar,
    link: Arc<Link>,
    /// SSH handshakes and remote commands so far: what a run cost this host (`--json`).
    pub handshakes: u32,
    pub commands: u32,
}

impl Node {
    pub fn new(host: Host, link: Arc<Link>, bar: HostBar) -> Node {
        Node {
            host,
            conn: None,
            state: NodeState::Running,
            bar,
            link,
            handshakes: 0,
            commands: 0,
        }
    }

    pub fn alive(&self) -> bool {
        self.state == NodeState::Running
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Marks the node failed (the first reason wins) and drops its session.
    pub fn fail(&mut self, reason: String) {
        if self.alive() {
            self.state = NodeState::Failed(reason);
        }
    }

    fn fail_transport(&mut self, e: TransportError) {
        self.conn = None;
        self.state = if e.is_unreachable() {
            NodeState::Unreachable(e.to_string())
        } else {
            NodeState::Failed(e.to_string())
        };
    }

    /// Opens the session (retrying a booting host) and checks its key.
    pub fn connect(&mut self) {
        self.bar.set("connecting");
        self.handshakes += 1;
        match Connection::open_via(
            &self.host,
            &self.link.ssh,
            &self.link.known,
            &self.link.jumps,
        ) {
            Ok(c) => self.conn = Some(c),
            Err(e) => self.fail_transport(e),
        }
    }

    /// Closes the session (when too many hosts for the fd limit stay open otherwise).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// A node that failed in an earlier run (for `watch`) gets another chance.
    pub fn reset(&mut self) {
        if !self.alive() {
            self.conn = None;
            self.state = NodeState::Running;
        }
    }

    /// Runs a script as root; on a transport failure the node is marked failed or unreachable
    /// and `None` is returned. A session that dropped while idle (the host rebooted, sshd
    /// restarted) is opened again once, when the command could not even start.
    pub fn run(&mut self, script: &str, stdin: Option<&Payload>) -> Option<Output> {
        self.run_with(script, Privilege::Root, stdin, None)
    }

    /// [`run`](Self::run) for a change that may move much data: a pushed file's upload, or the
    /// progress lines a node's download prints, shown on this host's line while it runs.
    /// `step` labels the line once the transfer is complete.
    pub fn run_change(
        &mut self,
        script: &str,
        stdin: Option<&Payload>,
        step: &str,
    ) -> Option<Output> {
        self.run_with(script, Privilege::Root, stdin, Some(step))
    }

    /// Runs a command as the login user (no sudo): `sparkboot exec` without `--sudo`.
    pub fn run_as_login(&mut self, command: &str) -> Option<Output> {
        self.run_with(command, Privilege::AsLogin, None, None)
    }

    /// Runs a script as root and streams its output to `sink` as it arrives (no time limit),
    /// returning its exit status; `None` (and the node marked) on a transport failure.
    pub fn stream(&mut self, script: &str, sink: &mut dyn StreamSink) -> Option<i32> {
        if !self.alive() {
            return None;
        }
        if self.conn.is_none() {
            self.connect();
        }
        let conn = self.conn.as_ref()?;
        self.commands += 1;
        match conn.stream(script, Privilege::Root, sink) {
            Ok(status) => Some(status),
            Err(e) => {
                self.fail_transport(e);
                None
            }
        }
    }

    fn run_with(
        &mut self,
        script: &str,
        privilege: Privilege,
        stdin: Option<&Payload>,
        show_transfer: Option<&str>,
    ) -> Option<Output> {
        if !self.alive() {
            return None;
        }
        if self.conn.is_none() {
            self.connect();
        }
        let result = self.exec(script, privilege, stdin, show_transfer)?;
        let result = match result {
            Err(e) if e.is_stale_session() => {
                self.conn = None;
                self.connect();
                self.exec(script, privilege, stdin, show_transfer)?
            }
            other => other,
        };
        match result {
            Ok(out) => Some(out),
            Err(e) => {
                self.fail_transport(e);
                None
            }
        }
    }

    fn exec(
        &mut self,
        script: &str,
        privilege: Privilege,
        stdin: Option<&Payload>,
        show_transfer: Option<&str>,
    ) -> Option<Result<Output, TransportError>> {
        let conn = self.conn.as_ref()?;
        self.commands += 1;
        let mut shown;
        let watch: &mut dyn Watch = match show_transfer.filter(|_| self.bar.shown()) {
            Some(step) => {
                let upload = match stdin {
                    Some(Payload::LocalFile(p)) => std::fs::metadata(p).ok().map(|m| m.len()),
                    _ => None,
                };
                shown = TransferWatch::new(self.bar.clone(), step, upload);
                &mut shown
            }
            None => &mut (),
        };
        Some(match stdin {
            None => conn.run_watched(script, privilege, None, watch),
            Some(Payload::Bytes(b)) => conn.run_watched(script, privilege, Some(b), watch),
            Some(Payload::LocalFile(p)) => conn.run_with_file(script, privilege, p, watch),
        })
    }

    /// The state as an error message, when the node failed.
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            NodeState::Running => None,
            NodeState::Failed(e) | NodeState::Unreachable(e) => Some(e),
        }
    }

    pub fn unreachable(&self) -> bool {
        matches!(self.state, NodeState::Unreachable(_))
    }

    pub fn finish_bar(&self) {
        self.bar.finish(match &self.state {
            NodeState::Running => "done",
            NodeState::Failed(_) => "FAILED",
            NodeState::Unreachable(_) => "UNREACHABLE",
        });
    }
}

/// Shows a transfer on a host's line: the bytes of a pushed file sent so far (an upload of a
/// known size), or what a node's download reports on stdout (see `report::transfer::MARKER`).
/// Redraws at most five times a second.
struct TransferWatch {
    bar: HostBar,
    step: String,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
    upload: Option<u64>,
    lines: ProgressLines,
}

impl TransferWatch {
    fn new(bar: HostBar, step: &str, upload: Option<u64>) -> Self {
        TransferWatch {
            bar,
            step: step.to_string(),
            started: std::time::Instant::now(),
            last: None,
            upload,
            lines: ProgressLines::default(),
        }
    }

    fn due(&mut self, last_one: bool) -> bool {
        let now = std::time::Instant::now();
        let due = last_one
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_millis(200));
        if due {
            self.last = Some(now);
        }
        due
    }
}

impl Watch for TransferWatch {
    fn sent(&mut self, total: u64) {
        if let Some(size) = self.upload {
            if self.due(total >= size) {
                self.bar.transfer(
                    &self.step,
                    ("uploading", "uploaded"),
                    total,
                    Some(size),
                    self.started,
                );
            }
        }
    }

    fn stdout(&mut self, chunk: &[u8]) {
        if let Some((done, total)) = self.lines.feed(chunk) {
            self.bar.transfer(
                &self.step,
                ("downloading", "downloaded"),
                done,
                total,
                self.started,
            );
        }
    }
}
