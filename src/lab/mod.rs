//! `sparkboot lab`: N isolated nodes on this one Linux machine, for tests, rehearsal and demos.
//!
//! Each node is a real host as far as SSH and Spark can tell: its own hostname (UTS namespace),
//! its own PID namespace with an init that reaps orphans, its own view of /etc, /opt, /var and
//! /srv (overlays over the host's), fresh /root, /home and /tmp, a tmpfs /run, and a real OpenSSH
//! sshd with its own host keys on port 22 of its own loopback address (127.0.0.0/8 all routes to
//! `lo`, so no bridge, veth or `ip addr` is needed and no packet can leave the machine). The host's
//! /usr (Java, Python, curl) is shared, which is what a node needs.
//!
//! Layout of this module: [`preflight`] checks the machine and addresses, [`names`] picks node
//! names and addresses, [`state`] owns the files under the lab dir (state.json, inventory.toml,
//! key), [`node`] creates, checks and ends one node from the host side, [`sshd`] stops and starts
//! a node's sshd, [`init`] is the node's PID 1 inside the namespaces, [`spark`] builds the lab's
//! Spark tarball and [`http`] serves it, and [`commands`] / [`ops`] implement the subcommands.
//! Every process the lab starts is recorded by PID and ended by that PID only, after checking
//! that the PID still runs the command line the lab started (so a recycled PID is never killed).

mod boot;
mod cgroup;
mod commands;
mod http;
pub mod init;
mod names;
mod node;
mod ops;
mod preflight;
mod procs;
mod spark;
mod sshd;
mod state;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use thiserror::Error;

use crate::cli::{LabArgs, LabCommand};
use crate::error::Error;

/// The kernel's per-user limit on inotify instances, which booted systemd nodes use up.
pub const INOTIFY_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Every way a lab command can fail, each rendered as one sentence naming the node, file or
/// field and saying what to install or change.
#[derive(Debug, Error)]
pub enum LabError {
    #[error("sparkboot lab must run as root because it creates namespaces, mounts and sshd processes; run it again with sudo")]
    NotRoot,
    #[error("`{tool}` was not found on this machine; {install}")]
    MissingTool { tool: String, install: String },
    #[error("the kernel does not offer overlayfs (no `overlay` in /proc/filesystems); run `modprobe overlay` or use a kernel with CONFIG_OVERLAY_FS")]
    NoOverlay,
    #[error("lab dir {dir} lies under {overlaid}, which every node replaces with its own view (an overlay cannot hold its own upper dir, and /run is a fresh tmpfs); pass --dir somewhere else, for example .sparkboot/lab in your project")]
    DirInsideOverlay { dir: PathBuf, overlaid: String },
    #[error("address {address:?} is not an IPv4 address; pass a loopback IPv4 address such as 127.100.1.4")]
    BadAddress { address: String },
    #[error("address {address} is outside the loopback range 127.0.0.0/8, and lab nodes may only use loopback addresses so that no packet ever leaves this machine (network-safety rule); pick one such as 127.100.1.4")]
    NotLoopback { address: String },
    #[error("address {address}:{port} is already in use by another process; pick another with --address")]
    AddressInUse { address: String, port: u16 },
    #[error("address {address} is already used by lab node {node}; pick another with --address")]
    AddressTaken { address: String, node: String },
    #[error("the lab's address range ran out after {last}; remove nodes with `sparkboot lab remove` or pass --address")]
    AddressesExhausted { last: String },
    #[error("this lab was created with --first-address {existing}, not {requested}; run `sparkboot lab down` first to change it")]
    FirstAddressMismatch { existing: String, requested: String },
    #[error("node name {name:?} must be non-empty, at most 63 characters, and use only letters, digits and '-'")]
    BadName { name: String },
    #[error("a lab node named {name} already exists; pick another with --name")]
    NameTaken { name: String },
    #[error("no lab node named {name} in {dir}; `sparkboot lab status` lists the nodes")]
    UnknownNode { name: String, dir: PathBuf },
    #[error("{name} is the lab's master and cannot be removed alone; run `sparkboot lab down` to remove the whole lab")]
    RemoveMaster { name: String },
    #[error("no lab in {dir}; run `sparkboot lab up` first (or pass the right --dir)")]
    NoLab { dir: PathBuf },
    #[error("node {name} is not running (its init process is gone); run `sparkboot lab up` to recreate it")]
    NodeNotRunning { name: String },
    #[error(
        "cannot {action} {path}: {source}; check that the path exists and is writable by root"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("lab state {path} is not valid ({message}); remove the lab with `sparkboot lab down` and create it again")]
    BadState { path: PathBuf, message: String },
    #[error("`{command}` failed for {what}: {detail}")]
    CommandFailed {
        command: String,
        what: String,
        detail: String,
    },
    #[error("node {name} could not start: {message}")]
    NodeStart { name: String, message: String },
    #[error("node {name} ({address}) did not get an SSH server answering on port 22 ({reason}), so it was removed again; its console log ended with: {tail}")]
    NodeNotReady {
        name: String,
        address: String,
        reason: String,
        tail: String,
    },
    #[error("sshd of node {name} did not {what} on {address}:22 within {secs} s; see the node's sshd log {log}")]
    SshdTimeout {
        name: String,
        what: &'static str,
        address: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("process {pid} ({what}) did not end within {secs} s after SIGKILL; end it by hand with `kill -9 {pid}` and run `sparkboot lab down` again")]
    ProcessStuck { pid: u32, what: String, secs: u64 },
    #[error("the cgroup {group} of lab node {name} could not be removed after its processes ended; check `cat {group}/cgroup.procs`, end what is listed, and run `sparkboot lab down` again")]
    CgroupLeft { name: String, group: PathBuf },
    #[error("the systemd flavour needs {what}: {fix}")]
    SystemdImage { what: String, fix: String },
    #[error("{nodes} systemd nodes need about {needed} inotify instances per user (each booted systemd holds 7) but fs.inotify.max_user_instances is {current}, and raising it failed ({reason}); run `sysctl -w fs.inotify.max_user_instances={needed}` as root, or start fewer nodes")]
    InotifyLimit {
        nodes: usize,
        current: u64,
        needed: u64,
        reason: String,
    },
    #[error("the lab in this dir was created {existing}; `lab up` {requested} cannot change that: run `sparkboot lab down` first, or use another --dir")]
    FlavourMismatch {
        existing: &'static str,
        requested: &'static str,
    },
    #[error("mounts are left under lab dir {dir} ({mounts}); unmount them with `umount -l` and run `sparkboot lab down` again")]
    MountsLeft { dir: PathBuf, mounts: String },
    #[error("lab-init for node dir {dir} failed at step `{step}`: {message}")]
    Init {
        dir: PathBuf,
        step: &'static str,
        message: String,
    },
    #[error("the lab's Spark tarball could not be built from {sdist}: {message}; delete that file so it is downloaded again, or run `lab up --no-spark`")]
    SparkBuild { sdist: PathBuf, message: String },
    #[error("the lab's Spark HTTP server on {address}:{port} did not start: {message}; see {log}, or run `lab up --no-spark`")]
    SparkServer {
        address: String,
        port: u16,
        message: String,
        log: PathBuf,
    },
}

impl LabError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        LabError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the lab keeps each of its files; every path is absolute.
#[derive(Debug, Clone)]
pub(crate) struct LabPaths {
    pub dir: PathBuf,
}

impl LabPaths {
    /// Resolves `--dir` against the current directory without requiring it to exist.
    pub fn new(dir: &Path) -> Result<Self, LabError> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            let cwd = std::env::current_dir()
                .map_err(|e| LabError::io("read the current directory", dir, e))?;
            cwd.join(dir)
        };
        // Canonicalise when possible so that mount-table comparisons see the real path.
        let dir = dir.canonicalize().unwrap_or(dir);
        Ok(LabPaths { dir })
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn pubkey(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.toml")
    }
    pub fn sample_config(&self) -> PathBuf {
        self.dir.join("sparkboot.toml")
    }
    pub fn http_log(&self) -> PathBuf {
        self.dir.join("http.log")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    pub fn nodes(&self) -> PathBuf {
        self.dir.join("nodes")
    }
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.nodes().join(name)
    }
}

/// An exclusive lock on the lab dir, held for the duration of one mutating command so that two
/// concurrent `lab` commands on the same dir cannot interleave their state updates.
pub(crate) struct LabLock {
    _file: File,
}

impl LabLock {
    pub fn acquire(paths: &LabPaths) -> Result<Self, LabError> {
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| LabError::io("create the lab dir", &paths.dir, e))?;
        let path = paths.lock();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io("open the lab lock file", &path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(LabError::io("lock", &path, io::Error::last_os_error()));
        }
        Ok(LabLock { _file: file })
    }
}

/// Entry point for `sparkboot lab ...`.
pub fn run(args: &LabArgs) -> Result<ExitCode, Error> {
    let paths = LabPaths::new(&args.dir)?;
    let code = match &args.command {
        LabCommand::Up {
            workers,
            no_spark,
            first_address,
            systemd,
            rootfs,
            spark_version,
        } => {
            let flavour = commands::Flavour {
                systemd: *systemd,
                rootfs: rootfs.clone(),
            };
            commands::up(
                &paths,
                *workers,
                !*no_spark,
                first_address.as_deref(),
                &flavour,
                spark_version,
            )?
        }
        LabCommand::Add { address, name } => {
            commands::add(&paths, address.as_deref(), name.as_deref())?
        }
        LabCommand::Remove { name } => ops::remove(&paths, name)?,
        LabCommand::Stop { name } => ops::stop(&paths, name)?,
        LabCommand::Start { name } => ops::start(&paths, name)?,
        LabCommand::Status { json } => ops::status(&paths, *json)?,
        LabCommand::Down => ops::down(&paths)?,
    };
    Ok(code)
}
