//! The catalogue: every check harden knows, defined once for both the audit and the fix.
//!
//! A [`Check`] has a stable id (used in reports and in `[harden.skip]`), a severity, a pure audit
//! over the probe's [`HostFacts`], the [`Fix`] that repairs it, and the one-line fix text shown
//! to the operator.

use std::collections::{BTreeMap, BTreeSet};

use super::facts::HostFacts;
use super::perms::{self, Area};
use super::sshd::{self, SshdConfig};
use super::{imds, keys, spark, Severity, Verdict};
use crate::spark::layout::Layout;

/// How `sparkboot harden` (without `--check`) repairs a failing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// The sshd drop-in, validated, reloaded and proven with a fresh login.
    SshdDropIn,
    /// Remove the shared key pair and its authorized_keys lines; rotate the cluster key.
    SeedKeys,
    /// Run converge with the config's roles (the templates hold the hardened values).
    Converge,
    /// chown / chmod the paths the audit lists.
    Permissions(Area),
    /// Nothing harden may change by itself: the fix text says what to do.
    Manual,
}

/// What an audit needs besides the probe's facts.
#[derive(Debug, Clone)]
pub struct AuditContext<'a> {
    pub address: &'a str,
    pub login_is_root: bool,
    /// Blobs of the keys the operator logs in with.
    pub operator: &'a BTreeSet<String>,
    /// The config's roles include `spark`, so converge owns Spark's files.
    pub spark_managed: bool,
    /// `[spark] version` from the config, used when the node's link does not tell.
    pub config_version: &'a str,
    /// `[harden.skip]` ids and `sshd_extra` lines: what the drop-in should hold.
    pub skipped: &'a BTreeSet<String>,
    pub sshd_extra: &'a [String],
    /// Where Spark lives (the spark role's layout): paths, owners and modes to check.
    pub layout: &'a Layout,
}

pub struct Check {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub fix: Fix,
    pub fix_text: &'static str,
    pub audit: fn(&HostFacts, &AuditContext) -> Verdict,
}

fn sshd_with(f: &HostFacts, judge: impl Fn(&SshdConfig) -> Verdict) -> Verdict {
    if f.sshd_status != 0 {
        let first = f.sshd_t.lines().next().unwrap_or("no output");
        return Verdict::Fail(format!(
            "sshd -T failed with status {}: {first}",
            f.sshd_status
        ));
    }
    judge(&SshdConfig::parse(&f.sshd_t))
}

fn spark_props(f: &HostFacts, c: &AuditContext) -> Result<BTreeMap<String, String>, Verdict> {
    if !c.spark_managed {
        return Err(Verdict::NotApplicable(
            "the config's roles do not include spark".into(),
        ));
    }
    match &f.spark_defaults {
        Some(text) => Ok(spark::parse_properties(text)),
        None => Err(Verdict::Fail(format!(
            "{} is missing",
            c.layout.conf_file("spark-defaults.conf")
        ))),
    }
}

fn with_props(
    f: &HostFacts,
    c: &AuditContext,
    judge: impl Fn(&BTreeMap<String, String>) -> Verdict,
) -> Verdict {
    match spark_props(f, c) {
        Ok(p) => judge(&p),
        Err(v) => v,
    }
}

/// The installed release (the Spark link's target), else the configured one.
fn spark_version(f: &HostFacts, c: &AuditContext) -> crate::spark::release::Version {
    spark::version(&f.spark_link)
        .or_else(|| spark::version(c.config_version))
        .unwrap_or(crate::spark::release::DEFAULT)
}

/// An existing drop-in must say what sparkboot.toml asks for now (`sshd_extra`, skips), so a
/// changed config reaches the nodes; without one, the other sshd checks decide.
fn dropin_current(f: &HostFacts, c: &AuditContext) -> Verdict {
    let Some(current) = &f.dropin else {
        return Verdict::Pass("no drop-in yet".into());
    };
    let kbd = SshdConfig::parse(&f.sshd_t).kbd_keyword();
    let wanted = sshd::render_dropin(c.skipped, c.login_is_root, kbd, c.sshd_extra);
    if current.trim_end() == wanted.trim_end() {
        Verdict::Pass(format!("{} matches sparkboot.toml", sshd::DROPIN))
    } else {
        Verdict::Fail(format!(
            "{} differs from what sparkboot.toml asks for ([harden] sshd_extra, skips)",
            sshd::DROPIN
        ))
    }
}

fn seed_keys(f: &HostFacts, c: &AuditContext) -> Verdict {
    let a = keys::audit(f, c.operator, &c.layout.cluster_key);
    if a.seed_private.is_empty() {
        return Verdict::Pass("no key pair whose public half is authorized on the node".into());
    }
    let lines: Vec<String> = a
        .seed_private
        .iter()
        .map(|(path, blob)| {
            let files: Vec<&str> = a
                .seed_authorized
                .iter()
                .filter(|(_, b)| b.contains(blob))
                .map(|(p, _)| p.as_str())
                .collect();
            format!("{path} is authorized in {}", files.join(", "))
        })
        .collect();
    Verdict::Fail(lines.join("; "))
}

fn unmanaged_keys(f: &HostFacts, c: &AuditContext) -> Verdict {
    let a = keys::audit(f, c.operator, &c.layout.cluster_key);
    if a.unmanaged.is_empty() {
        Verdict::Pass(
            "no keys besides the operator's, sparkboot's and those in ssh-seed-keys".into(),
        )
    } else {
        Verdict::Fail(a.unmanaged.join("; "))
    }
}

fn file_perms(f: &HostFacts, area: Area, layout: &Layout) -> Verdict {
    if area == Area::Ssh && !f.refused.is_empty() {
        return Verdict::Fail(format!(
            "not audited, because reading them would follow paths other users control: {}",
            f.refused.join("; ")
        ));
    }
    let r = perms::repairs(&f.stats, &f.homes, area, layout);
    perms::verdict(&r, perms::checked(&f.stats, &f.homes, area, layout))
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "ssh-password-auth",
        severity: Severity::Critical,
        title: "SSH password and keyboard-interactive login are off",
        fix: Fix::SshdDropIn,
        fix_text: "drop-in 10-sparkboot-harden.conf: PasswordAuthentication no, KbdInteractiveAuthentication no (sshd -t, reload, fresh-login check)",
        audit: |f, _| sshd_with(f, sshd::password_auth),
    },
    Check {
        id: "ssh-root-login",
        severity: Severity::High,
        title: "root cannot log in over SSH (keys only when root is the login user)",
        fix: Fix::SshdDropIn,
        fix_text: "drop-in: PermitRootLogin no, or prohibit-password when the inventory logs in as root",
        audit: |f, c| sshd_with(f, |s| sshd::root_login(s, c.login_is_root)),
    },
    Check {
        id: "ssh-forwarding",
        severity: Severity::Medium,
        title: "SSH X11 and agent forwarding are off",
        fix: Fix::SshdDropIn,
        fix_text: "drop-in: X11Forwarding no, AllowAgentForwarding no",
        audit: |f, _| sshd_with(f, sshd::forwarding),
    },
    Check {
        id: "ssh-max-auth-tries",
        severity: Severity::Low,
        title: "SSH allows at most 3 authentication attempts per connection",
        fix: Fix::SshdDropIn,
        fix_text: "drop-in: MaxAuthTries 3 (offer your key with -i / IdentitiesOnly if an agent holds many)",
        audit: |f, _| sshd_with(f, sshd::max_auth_tries),
    },
    Check {
        id: "ssh-client-alive",
        severity: Severity::Low,
        title: "idle SSH sessions are dropped",
        fix: Fix::SshdDropIn,
        fix_text: "drop-in: ClientAliveInterval 300, ClientAliveCountMax 2",
        audit: |f, _| sshd_with(f, sshd::client_alive),
    },
    Check {
        id: "ssh-dropin-current",
        severity: Severity::Low,
        title: "the sshd drop-in matches sparkboot.toml",
        fix: Fix::SshdDropIn,
        fix_text: "rewrites the drop-in from [harden] sshd_extra and the skips (sshd -t, reload, fresh-login check)",
        audit: dropin_current,
    },
    Check {
        id: "ssh-seed-keys",
        severity: Severity::Critical,
        title: "no shared key pair left by user-data",
        fix: Fix::SeedKeys,
        fix_text: "removes the private key, its .pub and its authorized_keys lines (never your login key), then rotates the cluster key through converge",
        audit: seed_keys,
    },
    Check {
        id: "ssh-unmanaged-keys",
        severity: Severity::Medium,
        title: "every SSH key is accounted for",
        fix: Fix::Manual,
        fix_text: "review and delete these keys by hand, or record why they stay: [harden.skip] \"ssh-unmanaged-keys\" = \"reason\"",
        audit: unmanaged_keys,
    },
    Check {
        id: "spark-auth",
        severity: Severity::Critical,
        title: "Spark RPC authentication is on, with a secret",
        fix: Fix::Converge,
        fix_text: "converge renders spark.authenticate true and the cluster secret into spark-defaults.conf (keep [spark] authenticate = true)",
        audit: |f, c| with_props(f, c, spark::auth),
    },
    Check {
        id: "spark-rpc-encryption",
        severity: Severity::High,
        title: "Spark RPC traffic is encrypted",
        fix: Fix::Converge,
        fix_text: "converge renders spark.network.crypto.enabled true with AES/GCM/NoPadding on releases that carry SPARK-56227 (3.5.9+, 4.1.3+, 4.2.0+) and AES/CTR/NoPadding on the others, whose GCM drops messages",
        audit: |f, c| with_props(f, c, |p| spark::rpc_encryption(p, spark_version(f, c))),
    },
    Check {
        id: "spark-io-encryption",
        severity: Severity::Medium,
        title: "Spark encrypts shuffle and spill files",
        fix: Fix::Converge,
        fix_text: "converge renders spark.io.encryption.enabled true",
        audit: |f, c| with_props(f, c, spark::io_encryption),
    },
    Check {
        id: "spark-rest-server",
        severity: Severity::High,
        title: "the master's REST submission server is off",
        fix: Fix::Converge,
        fix_text: "converge renders spark.master.rest.enabled false (the REST server runs any submitted job without authentication)",
        audit: |f, c| with_props(f, c, spark::rest_server),
    },
    Check {
        id: "spark-ui-kill",
        severity: Severity::Medium,
        title: "the Spark UI cannot kill jobs",
        fix: Fix::Converge,
        fix_text: "converge renders spark.ui.killEnabled false",
        audit: |f, c| with_props(f, c, spark::ui_kill),
    },
    Check {
        id: "spark-bind-address",
        severity: Severity::Medium,
        title: "Spark UIs listen on the node's private address only",
        fix: Fix::Converge,
        fix_text: "converge renders SPARK_LOCAL_IP=<the node's inventory address> into spark-env.sh",
        audit: |f, c| match spark_props(f, c) {
            Err(v) => v,
            Ok(_) => match &f.spark_env {
                Some(text) => spark::bind_address(&spark::parse_env(text), c.address),
                None => Verdict::Fail(format!(
                    "{} is missing",
                    c.layout.conf_file("spark-env.sh")
                )),
            },
        },
    },
    Check {
        id: "ssh-file-perms",
        severity: Severity::High,
        title: "SSH configs, host keys and ~/.ssh have safe owners and modes",
        fix: Fix::Permissions(Area::Ssh),
        fix_text: "chown to the owner and remove extra bits: sshd config 0644, host keys 0640, ~/.ssh 0700, keys and authorized_keys 0600",
        audit: |f, c| file_perms(f, Area::Ssh, c.layout),
    },
    Check {
        id: "spark-file-perms",
        severity: Severity::High,
        title: "Spark's config, secret, keys and directories belong to spark and are not world-readable",
        fix: Fix::Permissions(Area::Spark),
        fix_text: "chown and remove extra bits, as the spark role's [layout] says: spark-defaults.conf and spark-env.sh root with modes.conf (0640), Spark dirs the Spark user with modes.dirs (0750), its ~/.ssh 0700",
        audit: |f, c| {
            if c.spark_managed {
                file_perms(f, Area::Spark, c.layout)
            } else {
                Verdict::NotApplicable("the config's roles do not include spark".into())
            }
        },
    },
    Check {
        id: "imds-v2",
        severity: Severity::High,
        title: "the EC2 metadata service requires IMDSv2 tokens",
        fix: Fix::Manual,
        fix_text: "require tokens: metadata_options { http_tokens = \"required\" } in Terraform, or aws ec2 modify-instance-metadata-options --http-tokens required",
        audit: |f, c| imds::verdict(&f.dmi, c.address, f.imds.as_ref()),
    },
];

pub fn find(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// Audits every check (skips are applied by the report, so the audit still shows the truth).
pub fn audit_all(facts: &HostFacts, ctx: &AuditContext) -> BTreeMap<&'static str, Verdict> {
    CHECKS
        .iter()
        .map(|c| (c.id, (c.audit)(facts, ctx)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let ids: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CHECKS.len());
        assert!(ids.iter().all(|id| id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')));
        for id in sshd::DROPIN_CHECKS {
            assert_eq!(find(id).map(|c| c.fix), Some(Fix::SshdDropIn), "{id}");
        }
    }

    #[test]
    fn an_empty_probe_fails_closed_except_where_not_applicable() {
        let op = BTreeSet::new();
        let layout = crate::spark::layout::tests::builtin();
        let ctx = AuditContext {
            address: "192.0.2.5",
            login_is_root: false,
            operator: &op,
            spark_managed: true,
            config_version: "3.5.7",
            skipped: &BTreeSet::new(),
            sshd_extra: &[],
            layout: &layout,
        };
        let v = audit_all(&HostFacts::default(), &ctx);
        assert!(v["ssh-password-auth"].failed());
        assert!(v["spark-auth"].detail().contains("missing"));
        assert!(matches!(v["imds-v2"], Verdict::NotApplicable(_)));
        let off = AuditContext {
            spark_managed: false,
            ..ctx
        };
        let v = audit_all(&HostFacts::default(), &off);
        assert!(matches!(v["spark-bind-address"], Verdict::NotApplicable(_)));
        assert!(
            !v["ssh-dropin-current"].failed(),
            "no drop-in: nothing to compare"
        );
    }

    #[test]
    fn a_drop_in_that_no_longer_matches_the_config_fails() {
        let op = BTreeSet::new();
        let layout = crate::spark::layout::tests::builtin();
        let extra = vec!["AllowUsers root".to_string()];
        let ctx = AuditContext {
            address: "192.0.2.5",
            login_is_root: true,
            operator: &op,
            spark_managed: true,
            config_version: "3.5.7",
            skipped: &BTreeSet::new(),
            sshd_extra: &extra,
            layout: &layout,
        };
        let written = sshd::render_dropin(
            &BTreeSet::new(),
            true,
            "KbdInteractiveAuthentication",
            &extra,
        );
        let facts = HostFacts {
            sshd_t: "kbdinteractiveauthentication no\n".into(),
            dropin: Some(format!("{written}\n")),
            ..HostFacts::default()
        };
        assert!(!dropin_current(&facts, &ctx).failed());
        let changed = AuditContext {
            sshd_extra: &[],
            ..ctx
        };
        assert!(dropin_current(&facts, &changed).failed());
    }
}
