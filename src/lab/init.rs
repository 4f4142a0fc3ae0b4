//! `sparkboot lab-init NODE_DIR`: PID 1 of one lab node, inside fresh mount, UTS and PID
//! namespaces made by `unshare`.
//!
//! It turns the namespaces into a host that looks freshly booted: its own hostname, overlays over
//! the host's /etc, /opt, /var and /srv (so changes stay in the node dir), fresh /root, /home and
//! /tmp, a tmpfs /run, its own SSH host keys, `ec2-user` with passwordless sudo, the lab key
//! authorised for root and ec2-user, and a real sshd on the node's own loopback address. Then it
//! stays PID 1 and reaps every child, because daemons that double-fork (sshd, Spark) are
//! reparented to it, and an unreaped zombie would still answer `kill -0`.
//!
//! The node dir is first bind-mounted at a fixed path under the new /run: every later mount uses
//! that path, which neither /tmp, /root or /home mounts can hide (the lab dir may live below any
//! of them) and which holds no comma or colon to break overlay options.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::SystemdImage;
use super::LabError;
use crate::error::Error;

/// The file in the node dir that tells lab-init who it is; written by the host.
pub const CONFIG_FILE: &str = "node.json";
/// Written into the node dir once sshd has been started.
pub const READY_FILE: &str = "ready";
/// sshd's own log inside the node (its /var is an overlay, so the host sees it in the upper dir).
pub const SSHD_LOG: &str = "/var/log/sshd-lab.log";
/// Where the node dir is reachable inside the node while it is set up.
const STAGING: &str = "/run/sparkboot-lab";
/// Overlaid host directories and fresh (empty) node directories, in mount order.
pub const OVERLAYS: [&str; 4] = ["etc", "opt", "var", "srv"];
pub const FRESH: [(&str, u32); 3] = [("root", 0o700), ("home", 0o755), ("tmp", 0o1777)];

/// Who the node is: written by `lab up` as node.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    pub hostname: String,
    pub address: Ipv4Addr,
    /// The lab's public key line, authorised for root and ec2-user.
    pub authorized_key: String,
    /// Set for the systemd flavour: the image the node boots (see [`super::boot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdImage>,
}

/// Sets the node up, then reaps children forever; returns only when set-up fails. A
/// systemd-flavour node is booted instead, and this returns when its container ends.
pub fn run(node_dir: &Path) -> Result<ExitCode, Error> {
    let config = read_config(node_dir)?;
    if let Some(image) = &config.systemd {
        return Ok(super::boot::run(node_dir, &config, image)?);
    }
    setup(node_dir, &config)?;
    println!("lab-init: node is ready");
    reap_forever()
}

fn fail(node_dir: &Path, step: &'static str, message: impl ToString) -> LabError {
    LabError::Init {
        dir: node_dir.to_path_buf(),
        step,
        message: message.to_string(),
    }
}

fn read_config(node_dir: &Path) -> Result<NodeConfig, LabError> {
    let text = std::fs::read_to_string(node_dir.join(CONFIG_FILE))
        .map_err(|e| fail(node_dir, "read node.json", e))?;
    serde_json::from_str(&text).map_err(|e| fail(node_dir, "parse node.json", e))
}

fn setup(node_dir: &Path, config: &NodeConfig) -> Result<(), LabError> {
    let err = |step: &'static str| move |e: std::io::Error| fail(node_dir, step, e);
    if std::process::id() != 1 {
        return Err(fail(
            node_dir,
            "check PID 1",
            "lab-init must be PID 1 of a new PID namespace; `sparkboot lab up` starts it",
        ));
    }

    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(err("make / private"))?;
    let host = config.hostname.as_bytes();
    // SAFETY: sethostname reads exactly `host.len()` bytes from a live slice.
    if unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) } != 0 {
        return Err(fail(
            node_dir,
            "set the hostname",
            std::io::Error::last_os_error(),
        ));
    }
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=0755"),
    )
    .map_err(err("mount tmpfs on /run"))?;
    make_dir(STAGING, 0o700).map_err(err("create the staging dir"))?;
    let dir = node_dir
        .to_str()
        .ok_or_else(|| fail(node_dir, "read the node dir", "the path is not UTF-8"))?;
    mount(Some(dir), STAGING, None, libc::MS_BIND, None).map_err(err("bind the node dir"))?;

    for name in OVERLAYS {
        let options = format!(
            "lowerdir=/{name},upperdir={STAGING}/fs/{name}.upper,workdir={STAGING}/fs/{name}.work"
        );
        mount(Some("overlay"), &format!("/{name}"), Some("overlay"), 0, Some(&options))
            .map_err(|e| fail(node_dir, "mount the overlays", format!("/{name}: {e}; the lab dir must be on a local file system such as ext4 (pass --dir)")))?;
    }
    for (name, mode) in FRESH {
        let source = format!("{STAGING}/{name}");
        std::fs::set_permissions(&source, std::fs::Permissions::from_mode(mode))
            .map_err(err("set fresh dir modes"))?;
        mount(
            Some(&source),
            &format!("/{name}"),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(err("bind fresh dirs"))?;
    }
    make_dir("/run/sshd", 0o755).map_err(err("create /run/sshd"))?;
    make_dir("/run/lock", 0o1777).map_err(err("create /run/lock"))?;

    host_keys(Path::new("/etc/ssh"), &config.hostname)
        .map_err(|e| fail(node_dir, "generate SSH host keys", e))?;
    write_file(
        "/etc/ssh/sshd_config.d/00-lab.conf",
        &sshd_dropin(config.address),
        0o644,
    )
    .map_err(err("write the sshd drop-in"))?;
    write_file("/etc/hostname", &format!("{}\n", config.hostname), 0o644)
        .map_err(err("write /etc/hostname"))?;
    add_hosts_line(Path::new("/etc/hosts"), config.address, &config.hostname)
        .map_err(err("update /etc/hosts"))?;
    let (uid, gid) = ensure_ec2_user().map_err(|e| fail(node_dir, "create ec2-user", e))?;
    write_file(
        "/etc/sudoers.d/ec2-user",
        "ec2-user ALL=(ALL) NOPASSWD:ALL\n",
        0o440,
    )
    .map_err(err("write sudoers"))?;
    authorize(Path::new("/root"), &config.authorized_key, 0, 0)
        .map_err(err("authorise the key for root"))?;
    authorize(
        Path::new("/home/ec2-user"),
        &config.authorized_key,
        uid,
        gid,
    )
    .map_err(err("authorise the key for ec2-user"))?;

    run_tool(Command::new("/usr/sbin/sshd").args(["-E", SSHD_LOG]))
        .map_err(|e| fail(node_dir, "start sshd", e))?;
    write_file(format!("{STAGING}/{READY_FILE}"), "ready\n", 0o644)
        .map_err(err("write the ready marker"))?;
    // The node no longer needs its dir; detaching it keeps node users from seeing the uppers.
    unmount_detach(STAGING);
    let _ = std::fs::remove_dir(STAGING);
    Ok(())
}

/// The node's sshd settings; read first (00-) so they win over the host's sshd_config.
pub fn sshd_dropin(address: Ipv4Addr) -> String {
    format!(
        "# Written by sparkboot lab-init: this node's sshd, on its own loopback address.\n\
         Port 22\n\
         ListenAddress {address}\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         HostKey /etc/ssh/ssh_host_ecdsa_key\n\
         PidFile /run/sshd.pid\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n"
    )
}

/// Replaces the keys in `ssh_dir` (a plain node sees the host's through its overlay) with the
/// node's own: ed25519 and ECDSA only, since RSA generation is slow enough to matter with 50
/// nodes.
pub(super) fn host_keys(ssh_dir: &Path, hostname: &str) -> Result<(), String> {
    let entries = std::fs::read_dir(ssh_dir).map_err(|e| format!("{}: {e}", ssh_dir.display()))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    for (kind, bits) in [("ed25519", None), ("ecdsa", Some("256"))] {
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-N", "", "-t", kind, "-C"])
            .arg(format!("root@{hostname}"))
            .arg("-f")
            .arg(ssh_dir.join(format!("ssh_host_{kind}_key")));
        if let Some(bits) = bits {
            cmd.args(["-b", bits]);
        }
        run_tool(&mut cmd)?;
    }
    Ok(())
}

/// Creates ec2-user (home from /etc/skel) unless the host already has one; returns uid and gid.
fn ensure_ec2_user() -> Result<(u32, u32), String> {
    let find = || user_ids(Path::new("/etc/passwd"), "ec2-user");
    if find().is_none() {
        run_tool(Command::new("useradd").args(["-m", "-s", "/bin/bash", "-p", "*", "ec2-user"]))?;
    }
    let (uid, gid) = find().ok_or("useradd did not add ec2-user to /etc/passwd")?;
    let home = Path::new("/home/ec2-user");
    if !home.exists() {
        make_dir("/home/ec2-user", 0o755).map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(home, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    Ok((uid, gid))
}

/// A user's uid and gid from a passwd file.
pub(super) fn user_ids(passwd: &Path, user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(passwd).ok()?;
    let line = passwd.lines().find(|l| l.split(':').next() == Some(user))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

/// Installs `key` as the only authorised key of the user whose home is `home`.
pub(super) fn authorize(home: &Path, key: &str, uid: u32, gid: u32) -> std::io::Result<()> {
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh)?;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700))?;
    let file = ssh.join("authorized_keys");
    std::fs::write(&file, format!("{key}\n"))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(&ssh, Some(uid), Some(gid))?;
    std::os::unix::fs::chown(&file, Some(uid), Some(gid))
}

/// Lets the node resolve its own hostname (sudo warns otherwise).
pub(super) fn add_hosts_line(
    file: &Path,
    address: Ipv4Addr,
    hostname: &str,
) -> std::io::Result<()> {
    let hosts = std::fs::read_to_string(file).unwrap_or_default();
    let known = hosts.lines().any(|l| {
        l.split_whitespace().next() == Some(&address.to_string())
            && l.split_whitespace().any(|w| w == hostname)
    });
    if !known {
        let sep = if hosts.is_empty() || hosts.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        std::fs::write(file, format!("{hosts}{sep}{address} {hostname}\n"))?;
    }
    Ok(())
}

/// Waits for any child forever. With no child at all, waitpid fails at once (ECHILD), so sleep
/// briefly before asking again: an orphan reparented later is then reaped within moments.
fn reap_forever() -> ! {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only into `status`, a live local.
        let rc = unsafe { libc::waitpid(-1, &mut status, 0) };
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn run_tool(cmd: &mut Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} exited with {status} (its messages are above in this console log)"
        ))
    }
}

fn make_dir(path: &str, mode: u32) -> std::io::Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

pub(super) fn write_file(path: impl AsRef<Path>, text: &str, mode: u32) -> std::io::Result<()> {
    let path = path.as_ref();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn cstring(text: &str) -> std::io::Result<CString> {
    CString::new(text).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "NUL byte in mount argument",
        )
    })
}

/// mount(2) with owned C strings; `None` passes NULL.
pub(super) fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let source = source.map(cstring).transpose()?;
    let target = cstring(target)?;
    let fstype = fstype.map(cstring).transpose()?;
    let data = data.map(cstring).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NULL or points to a NUL-terminated string alive for the call.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn unmount_detach(path: &str) {
    if let Ok(target) = cstring(path) {
        // SAFETY: umount2 with a NUL-terminated path alive for the call.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropin_listens_only_on_the_node_address() {
        let text = sshd_dropin(Ipv4Addr::new(127, 100, 0, 7));
        assert!(text.contains("ListenAddress 127.100.0.7\n"));
        assert!(text.contains("PermitRootLogin prohibit-password\n"));
        assert!(!text.contains("rsa"));
    }
}
