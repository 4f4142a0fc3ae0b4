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

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use super::init::{self, NodeConfig};
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
    init::mount(
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

/// Writes the node's identity into its (not yet booted) root, with lab-init's own helpers.
fn configure(root: &Path, config: &NodeConfig) -> Result<(), String> {
    let at = |rel: &str| root.join(rel);
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    init::write_file(at("etc/hostname"), &format!("{}\n", config.hostname), 0o644)
        .map_err(io("etc/hostname"))?;
    init::add_hosts_line(&at("etc/hosts"), config.address, &config.hostname)
        .map_err(io("etc/hosts"))?;
    init::write_file(
        at("etc/ssh/sshd_config.d/00-lab.conf"),
        &init::sshd_dropin(config.address),
        0o644,
    )
    .map_err(io("the sshd drop-in"))?;
    init::host_keys(&at("etc/ssh"), &config.hostname)?;
    init::authorize(&at("root"), &config.authorized_key, 0, 0).map_err(io("root's key"))?;
    let (uid, gid) = init::user_ids(&at("etc/passwd"), "ec2-user")
        .ok_or("the image has no ec2-user; rebuild it with scripts/debian-rootfs")?;
    init::authorize(&at("home/ec2-user"), &config.authorized_key, uid, gid)
        .map_err(io("ec2-user's key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn hosts_gains_the_node_line_after_a_missing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost").unwrap();
        init::add_hosts_line(&hosts, Ipv4Addr::new(127, 100, 0, 2), "master").unwrap();
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "127.0.0.1 localhost\n127.100.0.2 master\n"
        );
    }

    #[test]
    fn user_ids_come_from_the_image_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/bash\nec2-user:x:1000:1001::/home/ec2-user:/bin/bash\n",
        )
        .unwrap();
        assert_eq!(init::user_ids(&passwd, "ec2-user"), Some((1000, 1001)));
        assert_eq!(init::user_ids(&passwd, "ec2"), None);
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
