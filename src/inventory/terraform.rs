//! The `terraform:DIR` inventory source: what `terraform apply` built, without writing an
//! inventory file by hand.
//!
//! It runs `terraform output -no-color -json` in DIR (the binary is `[aws] terraform` or
//! `SPARKBOOT_TERRAFORM`, so OpenTofu's `tofu` works too) and reads the module's
//! `sparkboot_inventory` output (schema 1: cluster name, region, SSH user, the master, the
//! workers' Auto Scaling group, the bucket); no other output is read. The master in the state
//! is confirmed against EC2 before anything connects: it must exist and be running, and EC2's
//! current addresses win over the state's. Workers are not outputs, because they change with
//! every scale event and spot interruption; they come from the AWS API (the group's InService
//! instances, see `aws/discover.rs`). Values set in `[aws]` win over the outputs, so one AMI's
//! login user or a profile can be pinned in sparkboot.toml.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::aws::{self, AwsSettings, Cloud, Login, Node, Query};
use super::{Inventory, InventoryError};

/// The `sparkboot_inventory` output, schema 1 (terraform/outputs.tf).
#[derive(Debug, Deserialize, PartialEq)]
pub struct TfInventory {
    pub cluster_name: String,
    pub region: String,
    pub ssh_user: String,
    pub master: TfMaster,
    pub workers: TfWorkers,
    pub bucket: Option<String>,
    /// The queue `watch` reads (null when the module's watch plumbing is off).
    #[serde(default)]
    pub queue_url: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct TfMaster {
    pub instance_id: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct TfWorkers {
    pub asg_name: String,
}

const OUTPUT: &str = "sparkboot_inventory";

/// Names the Terraform binary in the environment (wins over `[aws] terraform`).
pub const TERRAFORM_ENV: &str = "SPARKBOOT_TERRAFORM";

/// The Terraform binary to run and where that choice came from: `SPARKBOOT_TERRAFORM`, else
/// `[aws] terraform` (validated with the config), else `terraform`.
pub fn terraform_binary(
    env: Option<&str>,
    settings: &AwsSettings,
    source: &str,
) -> Result<(String, &'static str), InventoryError> {
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        if !aws::terraform_binary_ok(value) {
            return Err(InventoryError::Invalid {
                source_name: source.to_string(),
                field: TERRAFORM_ENV.into(),
                message: format!(
                    "{value:?} must be a command name on PATH (such as \"tofu\") or an absolute path"
                ),
            });
        }
        return Ok((value.to_string(), TERRAFORM_ENV));
    }
    Ok(match &settings.terraform {
        Some(t) => (t.clone(), "[aws] terraform"),
        None => ("terraform".to_string(), "the default"),
    })
}

/// Runs `terraform output -no-color -json` in `dir`. The update check is off (it would call
/// out to the internet) and input is never asked for.
fn read_outputs(
    dir: &Path,
    settings: &AwsSettings,
    source: &str,
) -> Result<String, InventoryError> {
    let fail = |message: String| InventoryError::Discovery {
        source_name: source.to_string(),
        message,
    };
    let env = std::env::var(TERRAFORM_ENV).ok();
    let (binary, from) = terraform_binary(env.as_deref(), settings, source)?;
    if !dir.is_dir() {
        return Err(fail(format!(
            "{} is not a directory; name the directory you ran `{binary} apply` in",
            dir.display()
        )));
    }
    let out = Command::new(&binary)
        .arg(format!("-chdir={}", dir.display()))
        .args(["output", "-no-color", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail(format!(
                "`{binary}` ({from}) is not found; install Terraform (>= 1.5) or OpenTofu, set [aws] terraform or {TERRAFORM_ENV} to its name or absolute path, or write a static inventory file"
            )),
            _ => fail(format!("cannot run `{binary}` ({from}): {e}")),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(4)
            .collect();
        return Err(fail(format!(
            "`{binary} output -no-color -json` failed ({}): {}; run `{binary} init` in {} if needed",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            dir.display()
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| {
        fail(format!(
            "`{binary} output` printed something that is not UTF-8"
        ))
    })
}

/// Picks and checks `sparkboot_inventory` out of `terraform output -json`.
pub fn parse(json: &str, source: &str) -> Result<TfInventory, InventoryError> {
    let invalid = |field: &str, message: String| InventoryError::Invalid {
        source_name: source.to_string(),
        field: field.to_string(),
        message,
    };
    let outputs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| invalid("terraform output -json", format!("not a JSON object: {e}")))?;
    if outputs.is_empty() {
        return Err(invalid(
            OUTPUT,
            "there are no outputs at all: has `terraform apply` run in this directory?".into(),
        ));
    }
    let value = outputs.get(OUTPUT).and_then(|o| o.get("value")).ok_or_else(|| {
        invalid(OUTPUT, format!(
            "no such output; add `output \"{OUTPUT}\" {{ value = module.<name>.{OUTPUT} }}` to the root module (the sparkboot module provides it) and run `terraform apply`"
        ))
    })?;
    let schema = value.get("schema").and_then(|s| s.as_u64());
    if schema != Some(1) {
        return Err(invalid(&format!("{OUTPUT}.schema"), format!(
            "schema {} is not one this sparkboot reads (1); upgrade sparkboot or use the matching module version",
            schema.map_or("(missing)".to_string(), |s| s.to_string())
        )));
    }
    let tf: TfInventory =
        serde_json::from_value(value.clone()).map_err(|e| invalid(OUTPUT, e.to_string()))?;
    if tf.master.private_ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(invalid(
            &format!("{OUTPUT}.master.private_ip"),
            format!("{:?} is not an IPv4 address", tf.master.private_ip),
        ));
    }
    Ok(tf)
}

/// `--inventory terraform:DIR`.
pub fn load(
    dir: &Path,
    settings: &AwsSettings,
    launching: bool,
) -> Result<Inventory, InventoryError> {
    let source = format!("terraform:{}", dir.display());
    let tf = parse(&read_outputs(dir, settings, &source)?, &source)?;
    let region = settings.region.clone().unwrap_or(tf.region);
    let asg = settings.asg.clone().unwrap_or(tf.workers.asg_name);
    let master = Node {
        id: tf.master.instance_id,
        private_ip: tf.master.private_ip,
        public_ip: tf.master.public_ip,
        instance_type: String::new(),
        zone: String::new(),
    };
    let found = aws::block_on(async {
        let sdk = aws::sdk_config(Some(&region), settings.profile.as_deref()).await?;
        let q = Query {
            cluster: &tf.cluster_name,
            asg: Some(&asg),
            master: Some(master),
            launching,
        };
        aws::discover(&sdk, q).await
    })
    .and_then(|r| r)
    .map_err(|message| InventoryError::Discovery {
        source_name: source.clone(),
        message,
    })?;
    let login = Login {
        user: settings.ssh_user.clone().unwrap_or(tf.ssh_user),
        port: settings.port,
        identity_file: settings.identity_file.clone(),
        jump_host: settings.jump_host.clone(),
    };
    let cloud = Cloud {
        region,
        profile: settings.profile.clone(),
        bucket: settings.bucket.clone().or(tf.bucket),
        asg: found.asg.clone(),
        queue_url: settings.queue_url.clone().or(tf.queue_url),
    };
    aws::into_inventory(source, found, &login, cloud)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUTS: &str = r#"{
      "region": {"sensitive": false, "type": "string", "value": "eu-west-1"},
      "sparkboot_inventory": {"sensitive": false, "type": ["object", {}], "value": {
        "schema": 1, "cluster_name": "spark-prod", "region": "eu-west-1", "ssh_user": "admin",
        "master": {"instance_id": "i-0abc", "private_ip": "192.0.2.10", "public_ip": null,
                   "dns_name": "master.spark-prod.sparkboot.internal"},
        "workers": {"asg_name": "spark-prod-workers",
                    "tags": {"sparkboot:cluster": "spark-prod", "sparkboot:role": "worker"}},
        "bucket": "spark-prod-2024"}}
    }"#;

    #[test]
    fn the_terraform_binary_comes_from_the_environment_then_the_config() {
        let mut settings = AwsSettings::default();
        let pick = |env: Option<&str>, s: &AwsSettings| {
            terraform_binary(env, s, "terraform:x").map(|(b, from)| (b, from.to_string()))
        };
        assert_eq!(
            pick(None, &settings).expect("default").0,
            "terraform".to_string()
        );
        settings.terraform = Some("tofu".into());
        assert_eq!(
            pick(None, &settings).expect("config"),
            ("tofu".into(), "[aws] terraform".into())
        );
        assert_eq!(
            pick(Some(""), &settings).expect("empty env").0,
            "tofu".to_string()
        );
        assert_eq!(
            pick(Some("/usr/local/bin/terraform"), &settings).expect("env"),
            ("/usr/local/bin/terraform".into(), TERRAFORM_ENV.into())
        );
        let err = pick(Some("bin/tofu"), &settings)
            .expect_err("relative")
            .to_string();
        assert!(err.contains(TERRAFORM_ENV), "{err}");
    }

    #[test]
    fn reads_the_module_output() {
        let tf = parse(OUTPUTS, "terraform:x").expect("parsed");
        assert_eq!(tf.cluster_name, "spark-prod");
        assert_eq!(tf.master.private_ip, "192.0.2.10");
        assert_eq!(tf.master.public_ip, None);
        assert_eq!(tf.workers.asg_name, "spark-prod-workers");
        assert_eq!(tf.bucket.as_deref(), Some("spark-prod-2024"));
    }

    #[test]
    fn errors_say_what_is_missing_and_how_to_fix_it() {
        let none = parse("{}", "terraform:x").expect_err("empty").to_string();
        assert!(none.contains("terraform apply"), "{none}");
        let other = parse(r#"{"region": {"value": "x"}}"#, "terraform:x")
            .expect_err("no output")
            .to_string();
        assert!(
            other.contains("module.<name>.sparkboot_inventory"),
            "{other}"
        );
        let newer = OUTPUTS.replace("\"schema\": 1", "\"schema\": 2");
        let err = parse(&newer, "terraform:x")
            .expect_err("schema")
            .to_string();
        assert!(
            err.contains("sparkboot_inventory.schema") && err.contains("upgrade"),
            "{err}"
        );
        let bad_ip = OUTPUTS.replace("192.0.2.10", "pending");
        let err = parse(&bad_ip, "terraform:x").expect_err("ip").to_string();
        assert!(err.contains("master.private_ip"), "{err}");
        let no_master = OUTPUTS.replace("\"master\":", "\"mister\":");
        let err = parse(&no_master, "terraform:x")
            .expect_err("field")
            .to_string();
        assert!(err.contains("master"), "{err}");
    }
}
