//! Reaching hosts through a jump host (workers in private subnets).
//!
//! libssh2 has no ProxyJump, so we open a `direct-tcpip` channel on the jump host's session and
//! bridge it to one end of a local socket pair; the target's session runs over the other end as
//! if it were a TCP stream. A small thread pumps bytes both ways until either side closes.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use ssh2::Session;

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

/// Owns the pump thread; dropping the target session closes the socket and ends the thread.
pub struct Bridge {
    _thread: JoinHandle<()>,
}

pub fn open(jump: Session, address: &str, port: u16) -> Result<(UnixStream, Bridge), String> {
    let channel = jump
        .channel_direct_tcpip(address, port, None)
        .map_err(|e| format!("cannot open a tunnel to {address}:{port}: {e}"))?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot create a socket pair: {e}"))?;
    theirs.set_nonblocking(true).map_err(|e| e.to_string())?;
    jump.set_blocking(false);
    let thread = std::thread::spawn(move || pump(jump, channel, theirs));
    Ok((ours, Bridge { _thread: thread }))
}

/// Copies bytes between the tunnel and the local socket until either closes. Both sides are
/// non-blocking; when neither has data the thread naps briefly instead of spinning.
fn pump(_session: Session, mut channel: ssh2::Channel, mut local: UnixStream) {
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut buf = [0u8; 32 * 1024];
    loop {
        let mut progressed = false;
        match local.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                up.extend_from_slice(&buf[..n]);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progressed |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        match channel.read(&mut buf) {
            Ok(0) if channel.eof() => return,
            Ok(0) => {}
            Ok(n) => {
                down.extend_from_slice(&buf[..n]);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    progressed |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(1));
        }
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
