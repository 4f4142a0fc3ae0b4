//! `sparkboot converge`: load and validate everything, then run the engine and report.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::apply::{self, HostRun, Prepared, Settings};
use crate::cli::ConvergeArgs;
use crate::config::Config;
use crate::error::{Error, EXIT_CHANGES_PENDING, EXIT_HOST_FAILED};
use crate::inventory::Inventory;
use crate::plan::{PlanOptions, Redactor};
use crate::report::{Progress, RunReport};
use crate::roles::{EvalContext, Library};
use crate::transport::KnownHosts;

use super::Target;

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))
}

/// Roles whose presence means "this is a Spark cluster": check registration at the end.
const DAEMON_ROLES: [&str; 2] = ["spark-master", "spark-worker"];

/// What to converge and how; shared by `converge` and `harden` (whose Spark fixes are a
/// converge).
pub struct Request<'a> {
    pub roles: &'a [String],
    pub selected: &'a BTreeSet<String>,
    pub check: bool,
    pub diff: bool,
    pub progress: &'a Progress,
}

/// Loads the roles and sparkboot's Spark values, runs the engine phase by phase and, for a Spark
/// cluster, the registration check. Returns every selected host's run and cluster-level notes.
pub fn execute(
    config: Config,
    inventory: Inventory,
    known: Arc<KnownHosts>,
    req: Request,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Vec<HostRun>, Vec<String>), Error> {
    let library = Library {
        roles_dir: config.roles_dir.clone(),
        templates_dir: config.templates_dir.clone(),
    };
    let roles = library.load_roles(req.roles)?;
    let eval = EvalContext::new(&library, &roles)?;
    let (forks, keep_sessions, note) = apply::plan_concurrency(config.forks, req.selected.len());
    if let Some(n) = note {
        eprintln!("sparkboot: note: {n}");
    }
    let settings = |check| Settings {
        check,
        forks,
        max_handshakes: config.max_handshakes,
        keep_sessions,
    };
    let mut secrets = secret_vars(&config);
    let mut extra = serde_json::json!({});
    let mut pushed = Default::default();
    let mut created_secret = None;
    if roles
        .iter()
        .any(|r| r.data.context.iter().any(|c| c == "spark"))
    {
        let spark = crate::spark::prepare_for(&config, inventory.cloud.as_ref(), req.check)?;
        secrets.extend(spark.secrets);
        extra = spark.context;
        pushed = spark.pushed;
        created_secret = spark.created_secret;
    }
    let options = PlanOptions {
        diff: req.diff,
        check: req.check,
        redactor: Redactor::new(secrets),
        pushed,
    };
    let spark_cluster = roles
        .iter()
        .any(|r| DAEMON_ROLES.contains(&r.name.as_str()));
    let (apply_settings, verify_settings) = (settings(req.check), settings(false));
    let prep = Arc::new(Prepared {
        config,
        inventory,
        roles,
        eval,
        options,
        extra,
        diff: req.diff,
    });
    let (runs, notes) = runtime.block_on(async {
        let runs = apply::converge(
            prep.clone(),
            known.clone(),
            apply_settings,
            req.selected,
            req.progress,
        )
        .await;
        if spark_cluster && !req.check {
            crate::spark::cluster::verify(runs, &prep, &known, &verify_settings).await
        } else {
            (runs, Vec::new())
        }
    });
    for line in new_state_notes(&prep, &known, created_secret.as_deref(), &runs) {
        eprintln!("sparkboot: {line}");
    }
    Ok((runs, notes))
}

/// Says so when this run started a new known_hosts or Spark secret, and warns when the hosts
/// were configured by sparkboot before: then an earlier run kept its state elsewhere (another
/// directory or machine), and this run is pinning keys and handing out a secret afresh.
fn new_state_notes(
    prep: &Prepared,
    known: &KnownHosts,
    created_secret: Option<&std::path::Path>,
    runs: &[HostRun],
) -> Vec<String> {
    let mut lines = Vec::new();
    let conf = prep.extra["spark"]["home"]
        .as_str()
        .map(|home| format!("{home}/conf/spark-defaults.conf"));
    let configured = runs
        .iter()
        .filter(|r| {
            let facts = r.facts.as_ref();
            conf.as_ref().is_some_and(|c| {
                facts.is_some_and(|f| matches!(f.path(c), crate::facts::PathFact::File { .. }))
            })
        })
        .count();
    let state = prep.config.state_dir.display();
    if known.is_new() && known.recorded() > 0 {
        lines.push(format!(
            "note: started a new known_hosts at {}: recorded the keys of {} host(s) on first sight",
            known.path().display(),
            known.recorded()
        ));
    }
    if let Some(path) = created_secret {
        lines.push(format!(
            "note: created a new Spark secret at {} (0600)",
            path.display()
        ));
    }
    let fresh = (known.is_new() && known.recorded() > 0) || created_secret.is_some();
    if fresh && configured > 0 {
        lines.push(format!(
            "warning: {configured} host(s) already hold a Spark configuration from sparkboot, but this run's state dir {state} was new: if this cluster was converged before from another directory or machine, its known_hosts and Spark secret are in that state dir (state_dir is resolved against the config file); {}",
            if created_secret.is_some() {
                "with this new secret every daemon restarts"
            } else {
                "the keys just recorded were trusted on first sight"
            }
        ));
    }
    lines
}

pub fn run(args: &ConvergeArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let target = Target::resolve(&args.common)?;
    let selected = target.inventory.select(args.common.limit.as_deref())?;
    let roles = if args.roles.is_empty() {
        target.config.roles.clone()
    } else {
        args.roles.clone()
    };
    let progress = Progress::new(!args.common.json);
    let req = Request {
        roles: &roles,
        selected: &selected,
        check: args.check,
        diff: args.diff,
        progress: &progress,
    };
    let known = Arc::new(target.known_hosts);
    let (runs, notes) = execute(target.config, target.inventory, known, req, &runtime()?)?;
    apply::finish_bars(&runs);
    progress.clear();
    let mut report = RunReport::new(
        "converge",
        args.check,
        started.elapsed(),
        apply::recap(runs),
    );
    report.notes = notes;
    if args.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text(args.common.verbose, args.diff));
    }
    let s = &report.summary;
    Ok(ExitCode::from(if s.failed > 0 || s.unreachable > 0 {
        EXIT_HOST_FAILED
    } else if args.check && s.changed > 0 {
        EXIT_CHANGES_PENDING
    } else {
        0
    }))
}

/// Values of config vars whose names mark them as secret; they are redacted from every diff and
/// error message.
pub fn secret_vars(config: &Config) -> Vec<String> {
    const MARKERS: [&str; 5] = ["secret", "password", "token", "private", "credential"];
    config
        .vars
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            MARKERS.iter().any(|m| k.contains(m))
        })
        .filter_map(|(_, v)| v.as_str().map(str::to_string))
        .collect()
}
