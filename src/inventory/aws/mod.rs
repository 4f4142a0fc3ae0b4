//! The `aws` inventory source, and the AWS half of `terraform:DIR`.
//!
//! Workers come and go with the Auto Scaling group (scale events, spot interruptions, capacity
//! rebalancing), so their addresses are written down nowhere: they are read from the AWS API each
//! time sparkboot runs. The master is found by the module's tags (`sparkboot:cluster`,
//! `sparkboot:role = master`), or taken from Terraform's outputs and confirmed against EC2
//! (running, at its current addresses); the workers are the group's InService instances that
//! EC2 reports running. Anything else (Pending, Terminating, Standby, stopped, ...) is left out
//! with a note on stderr: sparkboot connects only to nodes meant to serve. A group with fewer
//! workers than its desired capacity gets a warning with the reason AWS gives; notes and
//! warnings also reach `converge --json` through [`Inventory::notes`]. Credentials, profile, region and endpoints come from aws-config's standard chains, so
//! `AWS_PROFILE`, SSO, `AWS_REGION` and `AWS_ENDPOINT_URL*` (a local emulator) work with no
//! sparkboot switch; `[aws] profile` and `region` pin them.

mod discover;
mod settings;

use std::future::Future;
use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use super::{Host, Inventory, InventoryError, NodeRole};
pub use discover::{discover, Found, Node, Query};
pub use settings::{resolve, terraform_binary_ok, AwsSettings, RawAws};

pub const CLUSTER_TAG: &str = "sparkboot:cluster";
pub const ROLE_TAG: &str = "sparkboot:role";

/// Where a cloud source found the cluster, kept on the [`Inventory`] for the S3 distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Cloud {
    pub region: String,
    pub profile: Option<String>,
    pub bucket: Option<String>,
    /// The workers' Auto Scaling group (lifecycle actions are completed on it).
    pub asg: String,
    /// The SQS queue the module's EventBridge rules deliver to (`watch`).
    pub queue_url: Option<String>,
}

/// Runs one AWS conversation to completion. sparkboot's commands are synchronous until the
/// engine starts, so each cloud step gets a small runtime of its own.
pub fn block_on<F: Future>(work: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(work))
}

/// The standard aws-config chains (env, profile, SSO, instance role), with `[aws]` pins.
pub async fn sdk_config(region: Option<&str>, profile: Option<&str>) -> Result<SdkConfig, String> {
    // The crates are built without their default HTTPS client (see Cargo.toml): every client
    // and credential provider made from this config uses this one.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(
            "no AWS region: set [aws] region, AWS_REGION, or a region in the AWS profile".into(),
        );
    }
    Ok(sdk)
}

/// Formats an SDK error with its whole cause chain, naming the API call.
pub fn api_error(call: &str, e: impl std::error::Error) -> String {
    format!(
        "{call} failed: {}; check the AWS credentials, profile and region",
        aws_sdk_ec2::error::DisplayErrorContext(e)
    )
}

/// How sparkboot logs in to discovered nodes.
pub struct Login {
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub jump_host: Option<String>,
}

/// Turns discovered instances into hosts: the master is `master`, each worker its instance ID.
pub fn into_inventory(
    source: String,
    found: Found,
    login: &Login,
    cloud: Cloud,
) -> Result<Inventory, InventoryError> {
    for warning in &found.warnings {
        eprintln!("sparkboot: warning: {warning}");
    }
    for note in &found.notes {
        eprintln!("sparkboot: note: {note}");
    }
    let notes: Vec<String> = found
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .chain(found.notes.iter().cloned())
        .collect();
    let invalid = |field: String, message: String| InventoryError::Invalid {
        source_name: source.clone(),
        field,
        message,
    };
    let jump_host = match login.jump_host.as_deref() {
        Some("master") => Some(found.master.public_ip.clone().ok_or_else(|| {
            invalid("aws.jump_host".into(), format!("\"master\" needs the master's public IP, but {} has none; turn on associate_public_ip_address in the module, or name another jump host", found.master.id))
        })?),
        other => other.map(str::to_string),
    };
    let host = |n: Node, name: String, role: NodeRole, field: String| {
        let vars = [
            ("instance_id", Some(n.id)),
            ("instance_type", Some(n.instance_type)),
            ("availability_zone", Some(n.zone)),
            ("public_ip", n.public_ip),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
        .collect();
        Host::new(
            name,
            n.private_ip,
            login.port,
            login.user.clone(),
            login.identity_file.clone(),
            jump_host.clone(),
            role,
            vars,
        )
        .map_err(|m| invalid(field, m))
    };
    let master = host(
        found.master,
        "master".into(),
        NodeRole::Master,
        "master".into(),
    )?;
    let mut workers = Vec::with_capacity(found.workers.len());
    for (i, w) in found.workers.into_iter().enumerate() {
        let name = w.id.clone();
        workers.push(host(w, name, NodeRole::Worker, format!("workers[{i}]"))?);
    }
    let mut inventory = Inventory::new(source, master, workers)?.with_cloud(cloud);
    inventory.notes = notes;
    Ok(inventory)
}

/// `--inventory aws`: the master by tags, the workers from the group.
pub fn load(
    settings: &AwsSettings,
    cluster_name: &str,
    launching: bool,
) -> Result<Inventory, InventoryError> {
    let cluster = settings.cluster.as_deref().unwrap_or(cluster_name);
    let mut source = format!("aws (cluster {cluster})");
    let fail = |source: &str, message: String| InventoryError::Discovery {
        source_name: source.to_string(),
        message,
    };
    let (found, region) = block_on(async {
        let sdk = sdk_config(settings.region.as_deref(), settings.profile.as_deref()).await?;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let q = Query {
            cluster,
            asg: settings.asg.as_deref(),
            master: None,
            launching,
        };
        discover(&sdk, q).await.map(|f| (f, region))
    })
    .and_then(|r| r)
    .map_err(|m| fail(&source, m))?;
    source = format!("aws (cluster {cluster}, {region})");
    let login = Login {
        user: settings.ssh_user.clone().unwrap_or_else(|| "admin".into()),
        port: settings.port,
        identity_file: settings.identity_file.clone(),
        jump_host: settings.jump_host.clone(),
    };
    let cloud = Cloud {
        region,
        profile: settings.profile.clone(),
        bucket: settings.bucket.clone(),
        asg: found.asg.clone(),
        queue_url: settings.queue_url.clone(),
    };
    into_inventory(source, found, &login, cloud)
}
