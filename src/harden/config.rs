//! The `[harden]` section of sparkboot.toml, validated before any connection:
//!
//! ```toml
//! [harden]
//! # Extra sshd directives appended to the drop-in (for example to limit who may log in).
//! sshd_extra = ["AllowUsers ec2-user root"]
//!
//! [harden.skip]
//! # Opt a check out, with the reason recorded in every report.
//! "ssh-password-auth" = "the bastion still needs passwords until OPS-123 ships"
//! ```
//!
//! Unknown keys, unknown check ids and empty reasons are errors, like the rest of the config.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::checks::CHECKS;
use super::HardenError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    skip: BTreeMap<String, String>,
    #[serde(default)]
    sshd_extra: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HardenConfig {
    /// Check id -> the recorded reason for skipping it.
    pub skip: BTreeMap<String, String>,
    pub sshd_extra: Vec<String>,
}

impl HardenConfig {
    pub fn from_value(value: Option<&toml::Value>, path: &str) -> Result<Self, HardenError> {
        let err = |message: String| HardenError::Config {
            path: path.to_string(),
            message,
        };
        let Some(value) = value else {
            return Ok(HardenConfig::default());
        };
        let raw: Raw = value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| err(e.to_string().trim().to_string()))?;
        let known: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
        for (id, reason) in &raw.skip {
            if !known.contains(id.as_str()) {
                let ids: Vec<&str> = known.iter().copied().collect();
                return Err(err(format!(
                    "skip names unknown check {id:?}; the checks are: {}",
                    ids.join(", ")
                )));
            }
            if reason.trim().is_empty() {
                return Err(err(format!(
                    "skip.{id:?} needs a reason, so the report says why the check is off"
                )));
            }
        }
        for line in &raw.sshd_extra {
            let keyword_ok = line
                .split_whitespace()
                .next()
                .is_some_and(|k| k.chars().all(|c| c.is_ascii_alphanumeric()));
            if line.contains(['\n', '\r', '\0'])
                || line.split_whitespace().count() < 2
                || !keyword_ok
            {
                return Err(err(format!(
                    "sshd_extra line {line:?} must be one sshd directive on one line, like \"AllowUsers ec2-user\""
                )));
            }
        }
        Ok(HardenConfig {
            skip: raw.skip,
            sshd_extra: raw.sshd_extra,
        })
    }

    pub fn skipped_ids(&self) -> BTreeSet<String> {
        self.skip.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HardenConfig, HardenError> {
        let v: toml::Value = toml::from_str(text).expect("toml");
        HardenConfig::from_value(v.get("harden"), "sparkboot.toml")
    }

    #[test]
    fn skips_with_reasons_and_extra_lines() {
        let c = parse(
            "[harden]\nsshd_extra = [\"AllowUsers root\"]\n[harden.skip]\n\"imds-v2\" = \"on prem\"\n",
        )
        .expect("valid");
        assert_eq!(c.skip["imds-v2"], "on prem");
        assert_eq!(c.sshd_extra, vec!["AllowUsers root"]);
        assert_eq!(
            HardenConfig::from_value(None, "x").expect("none"),
            HardenConfig::default()
        );
    }

    #[test]
    fn bad_sections_name_the_problem() {
        let e = parse("[harden.skip]\n\"ssh-pasword-auth\" = \"typo\"\n").expect_err("unknown");
        assert!(
            e.to_string().contains("ssh-pasword-auth")
                && e.to_string().contains("ssh-password-auth"),
            "{e}"
        );
        let e = parse("[harden.skip]\n\"imds-v2\" = \" \"\n").expect_err("no reason");
        assert!(e.to_string().contains("reason"), "{e}");
        let e = parse("[harden]\nskipp = 1\n").expect_err("unknown key");
        assert!(e.to_string().contains("skipp"), "{e}");
        let e = parse("[harden]\nsshd_extra = [\"AllowUsers a\\nPermitRootLogin yes\"]\n")
            .expect_err("newline");
        assert!(e.to_string().contains("one line"), "{e}");
    }
}
