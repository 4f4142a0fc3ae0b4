//! Checks done before the lab touches anything, so a missing tool or a bad address is one clear
//! sentence instead of a half-created node.
//!
//! Address checks enforce the network-safety rule: a lab address must be loopback (127.0.0.0/8),
//! and a free one: we try to bind a TCP listener on it, which sends no packet anywhere.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use super::state::SystemdImage;
use super::LabError;

/// The PATH the lab's own processes run with, and the directories searched for its tools.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host directories every node overlays (or, for /run, replaces with a tmpfs before it can bind
/// its node dir); the lab dir cannot live below them.
pub const OVERLAID: [&str; 5] = ["/etc", "/opt", "/var", "/srv", "/run"];

pub fn require_root() -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    Ok(())
}

/// Finds an executable in the caller's PATH, then in the standard system directories.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let caller = std::env::var("PATH").unwrap_or_default();
    caller
        .split(':')
        .chain(SYSTEM_PATH.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn require_tool(tool: &str, install: &str) -> Result<PathBuf, LabError> {
    find_tool(tool).ok_or_else(|| LabError::MissingTool {
        tool: tool.to_string(),
        install: install.to_string(),
    })
}

/// Absolute paths of the host tools that creating or driving nodes needs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub unshare: PathBuf,
    pub nsenter: PathBuf,
}

/// Everything `lab up` / `lab add` need: root, util-linux, OpenSSH, sudo, passwd, overlayfs.
pub fn require_node_tools() -> Result<Tools, LabError> {
    require_root()?;
    let unshare = require_tool("unshare", "install util-linux (apt-get install util-linux)")?;
    let nsenter = require_tool("nsenter", "install util-linux (apt-get install util-linux)")?;
    if !Path::new("/usr/sbin/sshd").is_file() {
        return Err(LabError::MissingTool {
            tool: "/usr/sbin/sshd".into(),
            install: "install the OpenSSH server (apt-get install openssh-server)".into(),
        });
    }
    require_tool(
        "ssh-keygen",
        "install the OpenSSH client (apt-get install openssh-client)",
    )?;
    require_tool(
        "sudo",
        "install sudo (apt-get install sudo) so that ec2-user gets passwordless sudo",
    )?;
    require_tool(
        "useradd",
        "install the passwd package (apt-get install passwd)",
    )?;
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Err(LabError::NoOverlay);
    }
    Ok(Tools { unshare, nsenter })
}

/// Inotify instances a lab of `nodes` systemd nodes needs under the kernel's per-user limit:
/// each booted container holds 7 (systemd 5, dbus and logind one each; measured), all as host
/// root, and the host's own processes and other labs need room too.
pub fn inotify_instances_needed(nodes: usize) -> u64 {
    128 + 8 * nodes as u64
}

/// Raises the per-user inotify instance limit when it is too low for `nodes` systemd nodes;
/// returns the old and new values when it did. Past the limit a container's systemd cannot
/// watch its units and its boot stalls before sshd starts (found with 50 nodes: Debian's
/// default of 128 lasts about 17 containers).
pub fn ensure_inotify_instances(nodes: usize) -> Result<Option<(u64, u64)>, LabError> {
    let needed = inotify_instances_needed(nodes);
    let limit_error = |current: u64, reason: String| LabError::InotifyLimit {
        nodes,
        current,
        needed,
        reason,
    };
    let text = std::fs::read_to_string(super::INOTIFY_INSTANCES)
        .map_err(|e| limit_error(0, format!("reading it: {e}")))?;
    let current: u64 = text
        .trim()
        .parse()
        .map_err(|_| limit_error(0, format!("it holds {:?}", text.trim())))?;
    if current >= needed {
        return Ok(None);
    }
    std::fs::write(super::INOTIFY_INSTANCES, needed.to_string())
        .map_err(|e| limit_error(current, e.to_string()))?;
    Ok(Some((current, needed)))
}

/// What `lab stop` / `lab start` need: root and nsenter.
pub fn require_nsenter() -> Result<PathBuf, LabError> {
    require_root()?;
    require_tool("nsenter", "install util-linux (apt-get install util-linux)")
}

/// python3 for building (pip download) and serving the Spark tarball.
pub fn require_python() -> Result<PathBuf, LabError> {
    require_tool(
        "python3",
        "install Python 3 (apt-get install python3 python3-pip) or run `lab up --no-spark`",
    )
}

/// Refuses a lab dir below a directory that nodes overlay: the overlay would contain its own
/// upper dir, which the kernel rejects.
pub fn check_dir_location(dir: &Path) -> Result<(), LabError> {
    for overlaid in OVERLAID {
        if dir.starts_with(overlaid) {
            return Err(LabError::DirInsideOverlay {
                dir: dir.to_path_buf(),
                overlaid: overlaid.to_string(),
            });
        }
    }
    Ok(())
}

/// Parses an address and enforces the network-safety rule (loopback only) before any I/O.
pub fn parse_loopback(text: &str) -> Result<Ipv4Addr, LabError> {
    let address: Ipv4Addr = text.trim().parse().map_err(|_| LabError::BadAddress {
        address: text.to_string(),
    })?;
    let [first, ..] = address.octets();
    let edge =
        address == Ipv4Addr::new(127, 0, 0, 0) || address == Ipv4Addr::new(127, 255, 255, 255);
    if first != 127 || edge {
        return Err(LabError::NotLoopback {
            address: text.to_string(),
        });
    }
    Ok(address)
}

/// Fails when something already listens on `address:port` (binding sends no packet).
pub fn check_port_free(address: Ipv4Addr, port: u16) -> Result<(), LabError> {
    match TcpListener::bind((address, port)) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(LabError::AddressInUse {
            address: address.to_string(),
            port,
        }),
        Err(e) => Err(LabError::io(
            "bind a test listener on",
            Path::new(&format!("{address}:{port}")),
            e,
        )),
    }
}

/// The systemd flavour's image and tools: systemd-nspawn, a cgroup hierarchy, and a complete
/// image from scripts/debian-rootfs (its stamp is written last, so a half-built tree is refused).
pub fn require_systemd_image(rootfs: Option<&Path>) -> Result<SystemdImage, LabError> {
    require_tool(
        "systemd-nspawn",
        "install systemd-container (apt-get install systemd-container)",
    )?;
    if !super::cgroup::available() {
        return Err(LabError::SystemdImage {
            what: "a cgroup hierarchy under /sys/fs/cgroup (named systemd, or cgroup v2)".into(),
            fix: "mount one; this machine has none, so systemd cannot run in a container here"
                .into(),
        });
    }
    let cache = std::env::var_os("SPARKBOOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sparkboot"));
    let rootfs = rootfs
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cache.join("debian-12-rootfs"));
    let debs = rootfs.with_file_name("debian-12-debs");
    if !rootfs.join(".sparkboot-rootfs").is_file() {
        return Err(LabError::SystemdImage {
            what: format!("a Debian root file system at {}", rootfs.display()),
            fix: "build it with `bash scripts/debian-rootfs` (as root; downloads from Debian once)"
                .into(),
        });
    }
    if !debs.join("Packages").is_file() {
        return Err(LabError::SystemdImage {
            what: format!("the image's apt repository at {}", debs.display()),
            fix: "rebuild the image with `bash scripts/debian-rootfs`".into(),
        });
    }
    let absolute = |p: PathBuf| p.canonicalize().unwrap_or(p);
    Ok(SystemdImage {
        rootfs: absolute(rootfs),
        debs: absolute(debs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_room_grows_with_the_systemd_nodes() {
        // 7 per booted container (measured), plus the default 128 for everything else.
        assert_eq!(inotify_instances_needed(0), 128);
        assert!(inotify_instances_needed(50) >= 128 + 7 * 50);
        assert!(inotify_instances_needed(17) > 128);
    }

    #[test]
    fn only_loopback_addresses_pass() {
        assert_eq!(
            parse_loopback("127.100.1.4").ok(),
            Some(Ipv4Addr::new(127, 100, 1, 4))
        );
        assert!(matches!(
            parse_loopback("10.0.0.5"), // refused: parsing only
            Err(LabError::NotLoopback { .. })
        ));
        assert!(matches!(
            parse_loopback("192.168.1.1"), // refused: parsing only
            Err(LabError::NotLoopback { .. })
        ));
        assert!(matches!(
            parse_loopback("127.255.255.255"),
            Err(LabError::NotLoopback { .. })
        ));
        assert!(matches!(
            parse_loopback("lab-host"),
            Err(LabError::BadAddress { .. })
        ));
    }

    #[test]
    fn lab_dir_must_not_be_overlaid() {
        assert!(check_dir_location(Path::new("/var/tmp/lab")).is_err());
        assert!(check_dir_location(Path::new("/run/lab")).is_err());
        assert!(check_dir_location(Path::new("/etc2/lab")).is_ok());
        assert!(check_dir_location(Path::new("/work/x/.sparkboot/lab")).is_ok());
    }
}
