//! SSH transport over libssh2 (the `ssh2` crate): one session per host per run.
//!
//! Everything here blocks, by design: libssh2 is a blocking library, so the engine runs each
//! host's work on tokio's blocking pool and keeps the async workers free. A [`Connection`] is
//! opened once (with retries for hosts that are still booting), verified against the pinned host
//! keys, and reused for the probe and every change on that host. Hosts behind a jump host share
//! one session to it per run ([`JumpPool`]), each with its own channel.

pub mod hostkeys;
mod jump;
mod pool;
pub mod session;

use std::time::Duration;

use thiserror::Error;

pub use hostkeys::{HostKeyError, KnownHosts};
pub use jump::JumpSession as Forwarder;
pub use pool::{jump_sessions, JumpPool};
pub use session::{Connection, Output, StreamSink, Watch};

/// Tunables for connections, resolved from the config.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    /// How long to keep retrying a host that refuses or drops connections (still booting).
    pub retry_deadline: Duration,
    pub use_agent: bool,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(900),
            keepalive: Duration::from_secs(15),
            retry_deadline: Duration::from_secs(30),
            use_agent: true,
        }
    }
}

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("{host} ({endpoint}) is unreachable after {attempts} attempt(s) over {waited_secs}s: {last}; check that the node is running and that port is open to this machine")]
    Unreachable {
        host: String,
        endpoint: String,
        attempts: u32,
        waited_secs: u64,
        last: String,
    },
    #[error(transparent)]
    HostKey(#[from] Box<HostKeyError>),
    #[error("{host}: authentication as {user} failed (tried: {tried}); check the inventory's user and identity_file, or load the key into ssh-agent")]
    Auth {
        host: String,
        user: String,
        tried: String,
    },
    #[error("{host}: {what} did not finish within {secs}s; raise ssh.command_timeout_secs if the host is slow")]
    Timeout {
        host: String,
        what: String,
        secs: u64,
    },
    #[error("{host}: {context}: {message}")]
    Ssh {
        host: String,
        context: String,
        message: String,
    },
    #[error("{host}: the SSH session was lost before a command could start ({message})")]
    SessionLost { host: String, message: String },
    #[error("{host}: bad jump_host {spec:?}: {message}")]
    JumpSpec {
        host: String,
        spec: String,
        message: String,
    },
}

impl TransportError {
    /// Unreachable hosts are counted apart from failed ones in the recap, as operators expect.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, TransportError::Unreachable { .. })
    }

    /// Nothing ran: opening a new session and trying again is safe.
    pub fn is_stale_session(&self) -> bool {
        matches!(self, TransportError::SessionLost { .. })
    }
}
