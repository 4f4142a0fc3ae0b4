//! `[aws]` in sparkboot.toml: which cluster to discover and how to log in to its nodes.
//!
//! Kept apart from discovery so that config loading validates the section (naming the field)
//! without knowing anything about the AWS API.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[aws]` in sparkboot.toml, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    cluster: Option<String>,
    region: Option<String>,
    profile: Option<String>,
    asg: Option<String>,
    bucket: Option<String>,
    ssh_user: Option<String>,
    identity_file: Option<PathBuf>,
    port: Option<u16>,
    jump_host: Option<String>,
    queue_url: Option<String>,
    terraform: Option<String>,
}

/// `[aws]`, validated. Unset values fall back to Terraform's outputs, then to AWS's own chains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsSettings {
    /// Value of the nodes' `sparkboot:cluster` tag (`aws` source; default: `[cluster] name`).
    pub cluster: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// The workers' Auto Scaling group (default: the one tagged with the cluster, role worker).
    pub asg: Option<String>,
    /// The cluster bucket, for `[spark] distribution = "s3"`.
    pub bucket: Option<String>,
    pub ssh_user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub port: u16,
    /// `user@host:port`, or `master`: every node through the master's public address.
    pub jump_host: Option<String>,
    /// The SQS queue `watch` reads (default: the Terraform output `queue_url`).
    pub queue_url: Option<String>,
    /// The Terraform binary `terraform:DIR` runs (`tofu` for OpenTofu): a command name looked
    /// up on PATH or an absolute path. `SPARKBOOT_TERRAFORM` wins over it; default `terraform`.
    pub terraform: Option<String>,
}

/// A Terraform binary as `[aws] terraform` or `SPARKBOOT_TERRAFORM` may name it: a command name
/// looked up on PATH (letters, digits, `.`, `_`, `+`, `-`; not starting with `-`) or an absolute
/// path (no control characters). A relative path would depend on the working directory.
pub fn terraform_binary_ok(value: &str) -> bool {
    if value.starts_with('/') {
        return value.len() > 1 && !value.chars().any(|c| c.is_control());
    }
    !value.is_empty()
        && value.len() <= 255
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

fn word_ok(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// Validates `[aws]`, or returns `(field, message)`. Relative key paths are relative to the
/// config file, and `~/` is the home directory.
pub fn resolve(raw: RawAws, config_path: &Path) -> Result<AwsSettings, (String, String)> {
    let bad = |field: &str, msg: String| Err((format!("aws.{field}"), msg));
    let checks: [(&str, &Option<String>, &[char], &str); 6] = [
        (
            "cluster",
            &raw.cluster,
            &['-', '_', '.'],
            "the value of the sparkboot:cluster tag",
        ),
        ("region", &raw.region, &['-'], "like eu-west-1"),
        (
            "profile",
            &raw.profile,
            &['-', '_', '.', '/', '@', '+'],
            "a profile name",
        ),
        (
            "asg",
            &raw.asg,
            &['-', '_', '.', ':', '/', ' '],
            "an Auto Scaling group name",
        ),
        ("bucket", &raw.bucket, &['-', '.'], "an S3 bucket name"),
        (
            "ssh_user",
            &raw.ssh_user,
            &['-', '_', '.'],
            "a login name such as admin",
        ),
    ];
    for (field, value, extra, what) in checks {
        if let Some(v) = value.as_deref().filter(|v| !word_ok(v, extra)) {
            return bad(field, format!("{v:?} must be {what}"));
        }
    }
    if raw.port == Some(0) {
        return bad("port", "must be between 1 and 65535".into());
    }
    if let Some(j) = raw.jump_host.as_deref().filter(|j| j.trim().is_empty()) {
        return bad(
            "jump_host",
            format!("{j:?} must be user@host:port or \"master\""),
        );
    }
    if let Some(q) = &raw.queue_url {
        let ok = (q.starts_with("https://") || q.starts_with("http://"))
            && !q.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return bad(
                "queue_url",
                format!("{q:?} must be the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"),
            );
        }
    }
    if let Some(t) = raw.terraform.as_deref().filter(|t| !terraform_binary_ok(t)) {
        return bad(
            "terraform",
            format!("{t:?} must be a command name on PATH (such as \"tofu\") or an absolute path"),
        );
    }
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    let identity_file = raw.identity_file.map(|p| match p.strip_prefix("~") {
        Ok(rest) => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(rest),
        Err(_) if p.is_relative() => base.join(p),
        Err(_) => p,
    });
    Ok(AwsSettings {
        cluster: raw.cluster,
        region: raw.region,
        profile: raw.profile,
        asg: raw.asg,
        bucket: raw.bucket,
        ssh_user: raw.ssh_user,
        identity_file,
        port: raw.port.unwrap_or(22),
        jump_host: raw.jump_host,
        queue_url: raw.queue_url,
        terraform: raw.terraform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AwsSettings, (String, String)> {
        resolve(
            toml::from_str(text).expect("toml"),
            Path::new("/etc/sb/sparkboot.toml"),
        )
    }

    #[test]
    fn settings_resolve_paths_and_name_bad_fields() {
        let s = parse("cluster = \"c1\"\nidentity_file = \"keys/id\"\n").expect("ok");
        assert_eq!(s.identity_file, Some(PathBuf::from("/etc/sb/keys/id")));
        assert_eq!(s.port, 22);
        assert_eq!(
            parse("region = \"eu west\"").expect_err("region").0,
            "aws.region"
        );
        assert_eq!(
            parse("ssh_user = \"a b\"").expect_err("user").0,
            "aws.ssh_user"
        );
        assert_eq!(parse("port = 0").expect_err("port").0, "aws.port");
        assert!(
            toml::from_str::<RawAws>("regoin = \"x\"").is_err(),
            "unknown fields are refused"
        );
        assert_eq!(
            parse("terraform = \"tofu\"")
                .expect("tofu")
                .terraform
                .as_deref(),
            Some("tofu")
        );
        assert!(parse("terraform = \"/opt/tofu/bin/tofu\"").is_ok());
        for bad in ["bin/tofu", "tofu -x", "-tofu", "", "/", "a;b", "/x\ny"] {
            let text = format!("terraform = {bad:?}");
            assert_eq!(parse(&text).expect_err(bad).0, "aws.terraform", "{bad:?}");
        }
    }
}
