//! `lab-init` for a systemd-flavour node: boots systemd as PID 1 from a Debian root file system
//! with systemd-nspawn, the way an EC2 instance boots its image.
//!
//! lab-init runs in a private mount namespace made by `unshare`. It joins the node's own cgroup
//! (see [`super::cgroup`]), mounts an overlay of the shared image (read-only lower layer, built
//! by scripts/debian-rootfs) with the node dir's upper layer, writes what cloud-init would (the
//! hostname, sshd on the node's loopback address, fresh host keys, the lab key for root and
//! ec2-user), and runs systemd-nspawn as its child until the container ends. The overlay lives
//! only in that mount namespace, so it goes away with the node's last process.
//!
//! The node shares the host's network namespace (each sshd listens on its own 127.x address,
//! like the plain flavour); the image's apt reads only a local repository bind-mounted read-only,
//! and nspawn is told not to copy the host's resolv.conf, so nothing in a node reaches off the
//! machine.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::init::{sshd_dropin, NodeConfig};
use super::preflight::SYSTEM_PATH;
use super::state::SystemdImage;
use super::{cgroup, LabError};

/// Where a node sees the image's local apt repository (scripts/debian-rootfs writes the
/// matching sources.list line).
pub const DEBS_IN_NODE: &str = "/var/local/sparkboot-lab-debs";
/// The node's merged root, inside the node dir (mounted only in the node's mount namespace).
pub const ROOT_DIR: &str = "root";
/// The overlay's upper and work dirs, inside the node dir.
pub const UPPER: &str = "fs/root.upper";
pub const WORK: &str = "fs/root.work";

fn fail(node_dir: &Path, step: &'static str, message: impl ToString) -> LabError {
    LabError::Init {
        dir: node_dir.to_path_buf(),
        step,
        message: message.to_string(),
    }
}

/// Boots the node and waits for its container to end; returns nspawn's exit status.
pub fn run(
    node_dir: &Path,
    config: &NodeConfig,
    image: &SystemdImage,
) -> Result<ExitCode, LabError> {
    let err = |step: &'static str| move |e: std::io::Error| fail(node_dir, step, e);
    cgroup::enter(config.address).map_err(err("join the node's cgroup"))?;
    let root = node_dir.join(ROOT_DIR);
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        text(node_dir, &image.rootfs)?,
        text(node_dir, &node_dir.join(UPPER))?,
        text(node_dir, &node_dir.join(WORK))?
    );
    super::init::mount(
        Some("overlay"),
        text(node_dir, &root)?,
        Some("overlay"),
        0,
        Some(&options),
    )
    .map_err(|e| {
        fail(
            node_dir,
            "mount the root overlay",
            format!("{e}; the lab dir must be on a local file system such as ext4 (pass --dir)"),
        )
    })?;
    configure(&root, config).map_err(|e| fail(node_dir, "configure the node", e))?;

    let nspawn = super::preflight::find_tool("systemd-nspawn").ok_or_else(|| {
        fail(
            node_dir,
            "find systemd-nspawn",
            "install systemd-container (apt-get install systemd-container)",
        )
    })?;
    let mut command = Command::new(nspawn);
    command
        .args(["--boot", "--quiet", "--register=no", "--keep-unit"])
        // The node keeps the image's empty resolv.conf and zone: no DNS server off the machine.
        .args(["--resolv-conf=off", "--timezone=off", "--link-journal=no"])
        .arg(format!("--machine={}", config.hostname))
        .arg(format!("--directory={}", text(node_dir, &root)?))
        .arg(format!(
            "--bind-ro={}:{DEBS_IN_NODE}",
            text(node_dir, &image.debs)?
        ))
        .env_clear()
        .env("PATH", SYSTEM_PATH);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe; if lab-init is killed, nspawn goes
    // too (the container's processes are then ended through the node's cgroup).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    println!("lab-init: booting systemd in {}", root.display());
    let status = command
        .status()
        .map_err(|e| fail(node_dir, "run systemd-nspawn", e))?;
    println!("lab-init: the container ended ({status})");
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A path as mount and nspawn options take it: UTF-8, and no comma or colon (their separators).
fn text<'a>(node_dir: &Path, path: &'a Path) -> Result<&'a str, LabError> {
    path.to_str()
        .filter(|p| !p.contains([',', ':']))
        .ok_or_else(|| {
            fail(
                node_dir,
                "check paths",
                format!(
                    "{} must be UTF-8 without ',' or ':' (pass another --dir or --rootfs)",
                    path.display()
                ),
            )
        })
}

/// Writes the node's identity into its (not yet booted) root.
fn configure(root: &Path, config: &NodeConfig) -> Result<(), String> {
    let write = |rel: &str, body: &str, mode: u32| -> Result<(), String> {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    write("etc/hostname", &format!("{}\n", config.hostname), 0o644)?;
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
    write(
        "etc/hosts",
        &hosts_with(&hosts, config.address, &config.hostname),
        0o644,
    )?;
    write(
        "etc/ssh/sshd_config.d/00-lab.conf",
        &sshd_dropin(config.address),
        0o644,
    )?;
    host_keys(root, &config.hostname)?;
    let key = format!("{}\n", config.authorized_key);
    authorize(root, "root", &key, 0, 0)?;
    let (uid, gid) = user_ids(root, "ec2-user")
        .ok_or("the image has no ec2-user; rebuild it with scripts/debian-rootfs")?;
    authorize(root, "home/ec2-user", &key, uid, gid)
}

/// /etc/hosts with a line for the node's own name (sudo warns without one).
fn hosts_with(hosts: &str, address: Ipv4Addr, hostname: &str) -> String {
    let mut text = hosts.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{address} {hostname}\n"));
    text
}

/// Fresh ed25519 and ECDSA host keys for this node (the image ships none).
fn host_keys(root: &Path, hostname: &str) -> Result<(), String> {
    for (kind, bits) in [("ed25519", None), ("ecdsa", Some("256"))] {
        let file = root.join(format!("etc/ssh/ssh_host_{kind}_key"));
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(file.with_extension("pub"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-N", "", "-t", kind, "-C"])
            .arg(format!("root@{hostname}"))
            .arg("-f")
            .arg(&file);
        if let Some(bits) = bits {
            cmd.args(["-b", bits]);
        }
        let status = cmd.status().map_err(|e| format!("ssh-keygen: {e}"))?;
        if !status.success() {
            return Err(format!(
                "ssh-keygen for {} exited with {status}",
                file.display()
            ));
        }
    }
    Ok(())
}

/// A user's uid and gid from the image's /etc/passwd.
fn user_ids(root: &Path, user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    let line = passwd.lines().find(|l| l.split(':').next() == Some(user))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

/// Installs `key` as the only authorised key below `home` (relative to the node's root).
fn authorize(root: &Path, home: &str, key: &str, uid: u32, gid: u32) -> Result<(), String> {
    let ssh: PathBuf = root.join(home).join(".ssh");
    let file = ssh.join("authorized_keys");
    let describe = |e: std::io::Error| format!("{}: {e}", ssh.display());
    std::fs::create_dir_all(&ssh).map_err(describe)?;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).map_err(describe)?;
    std::fs::write(&file, key).map_err(describe)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(describe)?;
    std::os::unix::fs::chown(&ssh, Some(uid), Some(gid)).map_err(describe)?;
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).map_err(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_gains_the_node_line_after_a_missing_newline() {
        let text = hosts_with(
            "127.0.0.1 localhost",
            Ipv4Addr::new(127, 100, 0, 2),
            "master",
        );
        assert_eq!(text, "127.0.0.1 localhost\n127.100.0.2 master\n");
    }

    #[test]
    fn user_ids_come_from_the_image_passwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/bash\nec2-user:x:1000:1001::/home/ec2-user:/bin/bash\n",
        )
        .unwrap();
        assert_eq!(user_ids(dir.path(), "ec2-user"), Some((1000, 1001)));
        assert_eq!(user_ids(dir.path(), "ec2"), None);
    }

    #[test]
    fn option_paths_refuse_separators() {
        let dir = Path::new("/tmp/x");
        assert!(text(dir, Path::new("/var/cache/a,b")).is_err());
        assert!(text(dir, Path::new("/var/cache/a:b")).is_err());
        assert_eq!(
            text(dir, Path::new("/var/cache/ab")).unwrap(),
            "/var/cache/ab"
        );
    }
}
