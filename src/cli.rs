//! Command-line definitions only: what the user can type. Turning these flags into a resolved
//! configuration happens in `config`, and doing the work in the command modules, so this file
//! stays a readable reference of the interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueHint};

#[derive(Debug, Parser)]
#[command(
    name = "sparkboot",
    version,
    about = "Converge a Spark standalone cluster over SSH",
    long_about = "Converge a Spark standalone cluster over SSH.\n\n\
        After `terraform apply` has created bare infrastructure (or for any hosts named in an \
        inventory file), `sparkboot converge` configures every node over SSH, in parallel: \
        Java, Spark downloaded and verified against its SHA-512, config rendered from \
        templates, a cluster key made on the master, daemons started master first and every \
        worker checked as registered. Re-run it after every scale event: it changes only what \
        needs changing. Configuration is read from sparkboot.toml (see the README)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command that talks to the cluster.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// sparkboot.toml to read; a missing default file means built-in defaults.
    #[arg(long, default_value = "sparkboot.toml", global = true, value_hint = ValueHint::FilePath)]
    pub config: PathBuf,
    /// Inventory: FILE, `terraform:DIR` or `aws` (default: `inventory` in the config).
    ///
    /// FILE: a static TOML inventory (for example .sparkboot/lab/inventory.toml).
    /// `terraform:DIR`: runs `terraform output -json` in DIR (or OpenTofu: [aws] terraform or
    /// SPARKBOOT_TERRAFORM) and reads the module's `sparkboot_inventory` output; the master is
    /// confirmed running through the AWS API and the workers are its Auto Scaling group's
    /// InService instances. `aws`: the AWS API alone, the master and the group found by the
    /// cluster's tags ([aws] settings).
    #[arg(
        long,
        short = 'i',
        global = true,
        value_name = "FILE|terraform:DIR|aws",
        value_hint = ValueHint::AnyPath
    )]
    pub inventory: Option<String>,
    /// Only these hosts: comma-separated names, addresses, `master` or `workers`.
    #[arg(long, global = true)]
    pub limit: Option<String>,
    /// How many hosts to work on at once.
    #[arg(long, global = true)]
    pub forks: Option<usize>,
    /// Print one JSON object on stdout instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,
    /// Refuse hosts whose key is not yet in known_hosts (default: record new keys).
    #[arg(long, global = true)]
    pub strict: bool,
    /// More detail: each step's reason, and remote output on failure.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring every host to the state roles/ describes.
    Converge(ConvergeArgs),
    /// Show the discovered hosts.
    Inventory(InventoryArgs),
    /// Run an ad hoc command on every host (or --limit).
    Exec(ExecArgs),
    /// Log in to one host through the pinned host keys.
    Ssh(SshArgs),
    /// Show each node's Spark and daemon, and the master's workers against the inventory.
    Status(StatusArgs),
    /// Audit and fix the security baseline: sshd, stray keys, Spark auth/encryption, modes, IMDSv2.
    Harden(HardenArgs),
    /// Keep the cluster converged by itself: new workers joined, leaving ones decommissioned.
    Watch(WatchArgs),
    /// Run a Spark application on the cluster: copy it to the master, spark-submit it there,
    /// stream the driver's output, and exit with the application's outcome.
    Submit(SubmitArgs),
    /// Forward local ports to the master's UIs and Spark Connect over the pinned SSH session.
    Tunnel(TunnelArgs),
    /// Manage the pinned host keys (`forget` a rebuilt node's key once you have confirmed it).
    #[command(name = "known-hosts")]
    KnownHosts(KnownHostsArgs),
    /// Manage local lab nodes (isolated namespaces with real sshd).
    Lab(LabArgs),
    /// Print a shell completion script, generated from these definitions (see README).
    Completions(CompletionsArgs),
    /// Print the manual page sparkboot(1) in roff, every command in it (see README).
    Man,
    /// Internal: init process of a lab node. Not for direct use.
    #[command(hide = true, name = "lab-init")]
    LabInit(LabInitArgs),
}

#[derive(Debug, Args)]
pub struct ConvergeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Change nothing; print what would change.
    #[arg(long)]
    pub check: bool,
    /// Show unified diffs of files (secrets redacted).
    #[arg(long)]
    pub diff: bool,
    /// Roles to apply, in order (default: the config's `roles`).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// When another run holds the cluster lock, wait up to this many seconds for it (at
    /// least 3) before giving up with exit 6.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Run through sudo when the login user is not root.
    #[arg(long)]
    pub sudo: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct HardenArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Audit only: change nothing; exit 3 when a check fails.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Reconcile once and exit (for cron or CI): exit 0 when converged, 2 when a host failed.
    #[arg(long)]
    pub once: bool,
    /// Reconcile against the inventory at least this often, events or not.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,
    /// After a launch event, wait this long for more before converging them together.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub batch_window: u64,
    /// How long a leaving worker's executors get to migrate their blocks before its daemon
    /// stops (a spot interruption gives two minutes in all; executors exit by themselves 40 s
    /// after they are told, see spark.executor.decommission.forceKillTimeout).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub decommission_timeout: u64,
    /// Converges a new worker may fail before its launch action is answered ABANDON.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// The SQS queue to read (default: `[aws] queue_url`, else the Terraform output).
    #[arg(long)]
    pub queue: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeployMode {
    /// The driver runs on the master, inside this submission; its output streams back.
    Client,
    /// The driver runs on a worker; sparkboot waits for its final state.
    Cluster,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The application: a jar or a Python file on this machine.
    pub app: PathBuf,
    /// Python files (.py, .zip, .egg) the application imports; copied with it.
    #[arg(long, value_delimiter = ',', value_name = "FILES")]
    pub py_files: Vec<PathBuf>,
    /// Files placed in each executor's working directory; copied with it.
    #[arg(long, value_delimiter = ',', value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Jars added to the driver's and executors' class paths; copied with it.
    #[arg(long, value_delimiter = ',', value_name = "JARS")]
    pub jars: Vec<PathBuf>,
    /// The main class of a jar application.
    #[arg(long)]
    pub class: Option<String>,
    /// The application's name in the UIs.
    #[arg(long)]
    pub name: Option<String>,
    /// A Spark property for this application (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub conf: Vec<String>,
    /// Where the driver runs.
    #[arg(long, value_enum, default_value_t = DeployMode::Client)]
    pub deploy_mode: DeployMode,
    /// The application's own arguments, after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TunnelArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// First local port: the master UI gets it, the application UI the next, then the history
    /// server, then Spark Connect. 0: free ports picked by the system. Default: the remote port
    /// numbers themselves (8080, 4040, 18080, 15002).
    #[arg(long)]
    pub port_base: Option<u16>,
}

#[derive(Debug, Args)]
pub struct KnownHostsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: KnownHostsCommand,
}

#[derive(Debug, Subcommand)]
pub enum KnownHostsCommand {
    /// Remove the keys pinned for a host (an inventory name, an address, or an instance ID), so
    /// the next run records its new key. Only after you have confirmed the node was rebuilt.
    Forget {
        /// An inventory name, an address or an instance ID.
        host: String,
    },
}

#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Host name, address or `master`.
    pub host: String,
    /// Optional command to run instead of a login shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Directory holding all lab state: keys, inventory, node file systems.
    #[arg(long, default_value = ".sparkboot/lab", global = true, value_hint = ValueHint::DirPath)]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create (or complete) a lab of one master and N workers. Idempotent.
    Up {
        /// How many worker nodes besides the master.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Do not build or serve the lab's Spark tarball.
        #[arg(long)]
        no_spark: bool,
        /// Loopback address of the master (default 127.100.0.2); workers take the next ones and
        /// the Spark server takes .255.254 of the same /16. Lets parallel labs use own ranges.
        #[arg(long)]
        first_address: Option<String>,
        /// Nodes boot systemd as PID 1 (systemd-nspawn) from a Debian root file system, as EC2
        /// instances do: Spark runs under systemd units and Java comes from apt. Build the image
        /// once with `scripts/debian-rootfs`.
        #[arg(long)]
        systemd: bool,
        /// The Debian tree for --systemd (default: $SPARKBOOT_CACHE/debian-12-rootfs, with its
        /// apt repository in the sibling debian-12-debs).
        #[arg(long, requires = "systemd")]
        rootfs: Option<PathBuf>,
        /// The Spark release the lab builds (from PyPI pyspark==V, cached per version), serves
        /// and names in its sparkboot.toml. Every version built before is served too, so a lab
        /// can converge one release and then upgrade to another.
        #[arg(long, value_name = "V", default_value = crate::spark::release::DEFAULT_VERSION)]
        spark_version: String,
    },
    /// Add one worker node, optionally at a given loopback address.
    Add {
        /// Its loopback address (default: the next free one after the lab's nodes).
        #[arg(long)]
        address: Option<String>,
        /// Its name (default: lab-worker-N).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove one node (its processes, mounts and files).
    Remove {
        /// The node's name.
        name: String,
    },
    /// Stop one node's sshd (the node stays up): a fault for tests.
    Stop {
        /// The node's name.
        name: String,
    },
    /// Start one node's sshd again.
    Start {
        /// The node's name.
        name: String,
    },
    /// Show the nodes and whether their sshd is running.
    Status {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Tear down everything the lab started.
    Down,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct LabInitArgs {
    /// Node directory (holds the node's script and file systems).
    pub node_dir: PathBuf,
}
