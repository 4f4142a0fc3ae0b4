//! The SSH daemon's hardened settings: reading `sshd -T` (the effective configuration, after
//! every Include and drop-in), judging each setting, and rendering the one drop-in that fixes
//! them all.
//!
//! sshd keeps the first value it reads for a keyword, and Debian's and Amazon Linux's
//! sshd_config Include `sshd_config.d/*.conf` at the top, so the drop-in's low number (10-) makes
//! it win over the usual image drop-ins (`50-cloud-init.conf`, `60-cloudimg-settings.conf`). A
//! drop-in sorted even earlier still wins over ours; the re-audit with `sshd -T` then shows the
//! check still failing and names the keyword to look for.

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;

/// Where harden writes its settings.
pub const DROPIN: &str = "/etc/ssh/sshd_config.d/10-sparkboot-harden.conf";

/// `sshd -T` output: lowercase keyword -> every value printed for it, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SshdConfig(BTreeMap<String, Vec<String>>);

impl SshdConfig {
    pub fn parse(text: &str) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            map.entry(key.to_ascii_lowercase())
                .or_default()
                .push(value.trim().to_string());
        }
        SshdConfig(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// The keyword this sshd uses for keyboard-interactive login (OpenSSH >= 8.7 renamed it).
    pub fn kbd_keyword(&self) -> &'static str {
        if self.get("kbdinteractiveauthentication").is_none()
            && self.get("challengeresponseauthentication").is_some()
        {
            "ChallengeResponseAuthentication"
        } else {
            "KbdInteractiveAuthentication"
        }
    }
}

fn value<'a>(c: &'a SshdConfig, key: &str) -> Result<&'a str, String> {
    c.get(key)
        .ok_or_else(|| format!("sshd -T does not report {key}"))
}

fn expect(c: &SshdConfig, pairs: &[(&str, &str)]) -> Verdict {
    let mut bad = Vec::new();
    for (key, want) in pairs {
        match value(c, key) {
            Ok(v) if v.eq_ignore_ascii_case(want) => {}
            Ok(v) => bad.push(format!("{key} is {v}")),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        let seen: Vec<String> = pairs.iter().map(|(k, w)| format!("{k} {w}")).collect();
        Verdict::Pass(seen.join(", "))
    } else {
        Verdict::Fail(bad.join(", "))
    }
}

pub fn password_auth(c: &SshdConfig) -> Verdict {
    let kbd = c.kbd_keyword().to_ascii_lowercase();
    expect(c, &[("passwordauthentication", "no"), (&kbd, "no")])
}

/// Values that allow root only with a key (OpenSSH prints `without-password` for the old name).
const ROOT_KEY_ONLY: [&str; 3] = [
    "prohibit-password",
    "without-password",
    "forced-commands-only",
];

pub fn root_login(c: &SshdConfig, login_is_root: bool) -> Verdict {
    let v = match value(c, "permitrootlogin") {
        Ok(v) => v.to_ascii_lowercase(),
        Err(e) => return Verdict::Fail(e),
    };
    if login_is_root && ROOT_KEY_ONLY.contains(&v.as_str()) {
        Verdict::Pass(format!(
            "permitrootlogin {v} (root is the login user: keys only)"
        ))
    } else if !login_is_root && v == "no" {
        Verdict::Pass("permitrootlogin no".into())
    } else if login_is_root {
        Verdict::Fail(format!(
            "permitrootlogin is {v}; root logs in here, so prohibit-password"
        ))
    } else {
        Verdict::Fail(format!("permitrootlogin is {v}"))
    }
}

pub fn forwarding(c: &SshdConfig) -> Verdict {
    expect(
        c,
        &[("x11forwarding", "no"), ("allowagentforwarding", "no")],
    )
}

fn number(c: &SshdConfig, key: &str) -> Result<u64, String> {
    let v = value(c, key)?;
    v.parse()
        .map_err(|_| format!("{key} is {v:?}, not a number"))
}

pub fn max_auth_tries(c: &SshdConfig) -> Verdict {
    match number(c, "maxauthtries") {
        Ok(n) if (1..=3).contains(&n) => Verdict::Pass(format!("maxauthtries {n}")),
        Ok(n) => Verdict::Fail(format!("maxauthtries is {n}")),
        Err(e) => Verdict::Fail(e),
    }
}

pub fn client_alive(c: &SshdConfig) -> Verdict {
    match (
        number(c, "clientaliveinterval"),
        number(c, "clientalivecountmax"),
    ) {
        (Ok(i), Ok(n)) if (1..=300).contains(&i) && (1..=2).contains(&n) => {
            Verdict::Pass(format!("clientaliveinterval {i}, clientalivecountmax {n}"))
        }
        (Ok(i), Ok(n)) => Verdict::Fail(format!(
            "clientaliveinterval is {i}, clientalivecountmax is {n} (idle sessions are {})",
            if i == 0 {
                "never dropped"
            } else {
                "kept too long"
            }
        )),
        (Err(e), _) | (_, Err(e)) => Verdict::Fail(e),
    }
}

/// The check ids whose settings the drop-in carries, with the lines for each.
pub fn dropin_lines(id: &str, login_is_root: bool, kbd_keyword: &str) -> Vec<String> {
    let lines: Vec<String> = match id {
        "ssh-password-auth" => vec![
            "PasswordAuthentication no".into(),
            format!("{kbd_keyword} no"),
        ],
        "ssh-root-login" => vec![format!(
            "PermitRootLogin {}",
            if login_is_root {
                "prohibit-password"
            } else {
                "no"
            }
        )],
        "ssh-forwarding" => vec!["X11Forwarding no".into(), "AllowAgentForwarding no".into()],
        "ssh-max-auth-tries" => vec!["MaxAuthTries 3".into()],
        "ssh-client-alive" => vec![
            "ClientAliveInterval 300".into(),
            "ClientAliveCountMax 2".into(),
        ],
        _ => Vec::new(),
    };
    lines
}

/// The check ids the drop-in fixes, in the order its lines are written.
pub const DROPIN_CHECKS: [&str; 5] = [
    "ssh-password-auth",
    "ssh-root-login",
    "ssh-forwarding",
    "ssh-max-auth-tries",
    "ssh-client-alive",
];

/// Renders the drop-in: every sshd check not skipped, then the operator's `sshd_extra` lines
/// (last, so a `Match` block there cannot swallow ours).
pub fn render_dropin(
    skipped: &BTreeSet<String>,
    login_is_root: bool,
    kbd_keyword: &str,
    extra: &[String],
) -> String {
    let mut out = String::from(
        "# Written by `sparkboot harden`. sshd keeps the first value it reads, and this file's low\n\
         # number puts it before the image's drop-ins. Delete it and reload sshd to undo.\n",
    );
    for id in DROPIN_CHECKS.iter().filter(|id| !skipped.contains(**id)) {
        for line in dropin_lines(id, login_is_root, kbd_keyword) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !extra.is_empty() {
        out.push_str("# From [harden] sshd_extra in sparkboot.toml:\n");
        for line in extra {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "port 22\naddressfamily any\nlistenaddress 127.1.0.2:22\n\
permitrootlogin without-password\npasswordauthentication yes\nkbdinteractiveauthentication no\n\
x11forwarding yes\nallowagentforwarding yes\nmaxauthtries 6\nclientaliveinterval 0\n\
clientalivecountmax 3\npidfile /run/sshd.pid\nsubsystem sftp /usr/lib/openssh/sftp-server\n";

    const HARDENED: &str = "permitrootlogin without-password\npasswordauthentication no\n\
kbdinteractiveauthentication no\nx11forwarding no\nallowagentforwarding no\nmaxauthtries 3\n\
clientaliveinterval 300\nclientalivecountmax 2\n";

    #[test]
    fn parses_sshd_t_output() {
        let c = SshdConfig::parse(SEED);
        assert_eq!(c.get("pidfile"), Some("/run/sshd.pid"));
        assert_eq!(
            c.get("subsystem"),
            Some("sftp /usr/lib/openssh/sftp-server")
        );
        assert_eq!(c.kbd_keyword(), "KbdInteractiveAuthentication");
        let old = SshdConfig::parse("challengeresponseauthentication no\n");
        assert_eq!(old.kbd_keyword(), "ChallengeResponseAuthentication");
        // Error lines (a path or punctuation first) are not keywords.
        assert!(SshdConfig::parse("/etc/ssh/x: line 3: Bad option\n")
            .0
            .is_empty());
    }

    #[test]
    fn seed_settings_fail_and_hardened_ones_pass() {
        let seed = SshdConfig::parse(SEED);
        assert_eq!(
            password_auth(&seed),
            Verdict::Fail("passwordauthentication is yes".into())
        );
        assert!(forwarding(&seed).failed());
        assert!(max_auth_tries(&seed).failed());
        assert!(client_alive(&seed).detail().contains("never dropped"));
        assert!(!root_login(&seed, true).failed());
        assert!(root_login(&seed, false).failed());
        let ok = SshdConfig::parse(HARDENED);
        for v in [
            password_auth(&ok),
            forwarding(&ok),
            max_auth_tries(&ok),
            client_alive(&ok),
            root_login(&ok, true),
        ] {
            assert!(!v.failed(), "{v:?}");
        }
        assert!(password_auth(&SshdConfig::parse("")).failed());
    }

    #[test]
    fn dropin_honours_skips_login_user_and_extra_lines() {
        let skipped: BTreeSet<String> = ["ssh-max-auth-tries".to_string()].into();
        let text = render_dropin(
            &skipped,
            true,
            "KbdInteractiveAuthentication",
            &["AllowUsers root".into()],
        );
        assert!(text.contains("PermitRootLogin prohibit-password\n"));
        assert!(text.contains("KbdInteractiveAuthentication no\n"));
        assert!(!text.contains("MaxAuthTries"));
        assert!(text.trim_end().ends_with("AllowUsers root"));
        let plain = render_dropin(
            &BTreeSet::new(),
            false,
            "ChallengeResponseAuthentication",
            &[],
        );
        assert!(plain.contains("PermitRootLogin no\n"));
        assert!(plain.contains("ChallengeResponseAuthentication no\n"));
        assert!(plain.contains("MaxAuthTries 3\nClientAliveInterval 300\nClientAliveCountMax 2\n"));
    }
}
