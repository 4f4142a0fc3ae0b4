//! Which SSH keys on a node sparkboot accounts for, and which were left behind.
//!
//! The pattern harden removes is the one user-data scripts leave: a private key in some home's
//! `.ssh` whose public half is also in an authorized_keys on the same node (one shared key pair
//! baked into every instance, so whoever reads one node logs in to all). Everything else that
//! sparkboot does not manage is only reported. Two kinds of key are never touched: the
//! operator's own (the public half of the inventory's identity file, or of the agent's keys),
//! and the cluster key (`sparkboot-cluster`, rotated by converge).

use std::collections::{BTreeMap, BTreeSet};

use super::facts::HostFacts;

/// The comment that marks the cluster key in authorized_keys (roles/spark-authorize).
pub const CLUSTER_TAG: &str = "sparkboot-cluster";

/// One parsed authorized_keys line.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizedKey {
    pub options: Option<String>,
    pub kind: String,
    pub blob: String,
    pub comment: String,
}

fn is_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"]
        .iter()
        .any(|p| word.starts_with(p))
}

/// Splits off the first word, where double quotes may protect spaces (authorized_keys options).
fn first_word(line: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

/// Parses one line; blank lines and comments give `None`, as do lines sshd would not accept.
pub fn parse_line(line: &str) -> Option<AuthorizedKey> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (first, rest) = first_word(line);
    let (options, rest) = if is_key_type(first) {
        (None, line)
    } else {
        (Some(first.to_string()), rest)
    };
    let mut words = rest.splitn(3, char::is_whitespace);
    let kind = words.next()?.to_string();
    let blob = words.next()?.trim().to_string();
    if !is_key_type(&kind) || blob.is_empty() {
        return None;
    }
    Some(AuthorizedKey {
        options,
        kind,
        blob,
        comment: words.next().unwrap_or_default().trim().to_string(),
    })
}

/// The base64 blob of a `type base64 [comment]` public key line.
pub fn blob_of(public: &str) -> Option<&str> {
    let mut w = public.split_whitespace();
    let kind = w.next()?;
    is_key_type(kind).then_some(())?;
    w.next()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// The key the operator logs in with: never removed.
    Operator,
    /// Tagged `sparkboot-cluster`, or the cluster key pair itself.
    Managed,
    /// A private key on the node whose public half is authorized on the node.
    Seed,
    Unmanaged,
}

/// Classifies an authorized key. `seed_blobs` are the public halves of the node's private keys
/// (the cluster key excluded). The operator test comes first, so the operator's key is never
/// taken for a seed key even when its private half was copied onto the node.
pub fn classify(
    key: &AuthorizedKey,
    operator: &BTreeSet<String>,
    seed_blobs: &BTreeSet<String>,
) -> Class {
    if operator.contains(&key.blob) {
        Class::Operator
    } else if key.comment.split_whitespace().last() == Some(CLUSTER_TAG) {
        Class::Managed
    } else if seed_blobs.contains(&key.blob) {
        Class::Seed
    } else {
        Class::Unmanaged
    }
}

/// A finding about keys on one node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyAudit {
    /// Seed private key path -> its blob.
    pub seed_private: BTreeMap<String, String>,
    /// authorized_keys path -> seed blobs authorized there.
    pub seed_authorized: BTreeMap<String, BTreeSet<String>>,
    /// Human lines for keys harden reports but does not remove.
    pub unmanaged: Vec<String>,
}

impl KeyAudit {
    pub fn seed_blobs(&self) -> BTreeSet<String> {
        self.seed_private.values().cloned().collect()
    }
}

/// Audits every private key and authorized_keys line the probe found.
/// `cluster_key` is the layout's cluster key (sparkboot's own, never a seed key).
pub fn audit(facts: &HostFacts, operator: &BTreeSet<String>, cluster_key: &str) -> KeyAudit {
    let mut authorized_blobs = BTreeSet::new();
    let mut parsed: Vec<(&String, AuthorizedKey)> = Vec::new();
    for (path, text) in &facts.authorized {
        for key in text.lines().filter_map(parse_line) {
            authorized_blobs.insert(key.blob.clone());
            parsed.push((path, key));
        }
    }
    let mut out = KeyAudit::default();
    for pk in &facts.private_keys {
        let blob = pk.public.as_deref().and_then(blob_of).map(str::to_string);
        match blob {
            _ if pk.path == cluster_key => {}
            Some(b) if operator.contains(&b) => out.unmanaged.push(format!(
                "{}: your own login key's private half is on the node; delete it by hand",
                pk.path
            )),
            Some(b) if authorized_blobs.contains(&b) => {
                out.seed_private.insert(pk.path.clone(), b);
            }
            Some(_) => out.unmanaged.push(format!(
                "{}: private key not authorized on this node",
                pk.path
            )),
            None => out.unmanaged.push(format!(
                "{}: private key whose public half cannot be read",
                pk.path
            )),
        }
    }
    let seed = out.seed_blobs();
    for (path, key) in parsed {
        match classify(&key, operator, &seed) {
            Class::Seed => {
                out.seed_authorized
                    .entry(path.clone())
                    .or_default()
                    .insert(key.blob);
            }
            Class::Unmanaged => out.unmanaged.push(format!(
                "{path}: {} key {}…{} not managed by sparkboot",
                key.kind,
                key.blob.chars().take(12).collect::<String>(),
                if key.comment.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", key.comment)
                }
            )),
            Class::Operator | Class::Managed => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::facts::PrivateKeyFile;

    const CLUSTER_KEY_FOR_TESTS: &str = "/var/lib/spark/.ssh/id_ed25519";

    #[test]
    fn parses_options_with_quoted_spaces() {
        let k = parse_line(
            r#"from="192.0.2.1",command="echo hi there" ssh-ed25519 AAAAnew sparkboot-cluster"#,
        )
        .expect("key");
        assert_eq!(
            k.options.as_deref(),
            Some(r#"from="192.0.2.1",command="echo hi there""#)
        );
        assert_eq!(
            (k.kind.as_str(), k.blob.as_str()),
            ("ssh-ed25519", "AAAAnew")
        );
        assert_eq!(k.comment, "sparkboot-cluster");
        let plain = parse_line("ssh-rsa AAAAB3 seed@user data").expect("key");
        assert_eq!(
            (plain.options, plain.comment.as_str()),
            (None, "seed@user data")
        );
        assert_eq!(parse_line("# comment"), None);
        assert_eq!(parse_line("   "), None);
        assert_eq!(parse_line("garbage"), None);
    }

    fn facts() -> HostFacts {
        let key = |path: &str, public: &str| PrivateKeyFile {
            path: path.into(),
            public: Some(public.into()),
        };
        let authorized = [
            (
                "/home/ec2-user/.ssh/authorized_keys",
                "ssh-ed25519 AAAAop operator\nssh-rsa AAAAseed seed@user-data\n",
            ),
            (
                "/root/.ssh/authorized_keys",
                "ssh-ed25519 AAAAop operator\nssh-rsa AAAAseed\nssh-ed25519 AAAAother bob\n",
            ),
            (
                "/var/lib/spark/.ssh/authorized_keys",
                "from=\"127.1.0.2\" ssh-ed25519 AAAAcluster sparkboot-cluster\n",
            ),
        ];
        HostFacts {
            private_keys: vec![
                key("/home/ec2-user/.ssh/id_rsa", "ssh-rsa AAAAseed"),
                key(CLUSTER_KEY_FOR_TESTS, "ssh-ed25519 AAAAcluster"),
                key("/root/.ssh/id_ed25519", "ssh-ed25519 AAAAop"),
            ],
            authorized: authorized
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
            ..HostFacts::default()
        }
    }

    #[test]
    fn the_operator_key_is_never_a_seed_key_even_with_its_private_half_on_the_node() {
        let operator: BTreeSet<String> = ["AAAAop".to_string()].into();
        let a = audit(&facts(), &operator, CLUSTER_KEY_FOR_TESTS);
        assert_eq!(
            a.seed_private,
            [(
                "/home/ec2-user/.ssh/id_rsa".to_string(),
                "AAAAseed".to_string()
            )]
            .into()
        );
        let blobs: BTreeSet<String> = ["AAAAseed".to_string()].into();
        assert_eq!(a.seed_authorized.len(), 2);
        assert!(a.seed_authorized.values().all(|b| *b == blobs));
        assert!(a
            .unmanaged
            .iter()
            .any(|l| l.contains("AAAAother") && l.contains("bob")));
        assert!(a
            .unmanaged
            .iter()
            .any(|l| l.starts_with("/root/.ssh/id_ed25519:") && l.contains("your own login key")));
        assert!(!a.unmanaged.iter().any(|l| l.contains("cluster")), "{a:?}");
    }

    #[test]
    fn classification_order() {
        let op: BTreeSet<String> = ["AAAAop".to_string()].into();
        let seed: BTreeSet<String> = ["AAAAop".to_string(), "AAAAs".to_string()].into();
        let key = |blob: &str, comment: &str| AuthorizedKey {
            options: None,
            kind: "ssh-ed25519".into(),
            blob: blob.into(),
            comment: comment.into(),
        };
        assert_eq!(classify(&key("AAAAop", ""), &op, &seed), Class::Operator);
        assert_eq!(
            classify(&key("AAAAx", CLUSTER_TAG), &op, &seed),
            Class::Managed
        );
        assert_eq!(classify(&key("AAAAs", ""), &op, &seed), Class::Seed);
        assert_eq!(classify(&key("AAAAz", ""), &op, &seed), Class::Unmanaged);
    }

    #[test]
    fn without_operator_keys_nothing_is_hidden() {
        let a = audit(&facts(), &BTreeSet::new(), CLUSTER_KEY_FOR_TESTS);
        // The copied operator key now looks like a seed key: the command refuses to remove keys
        // when it cannot tell the operator's key (see checks), so this is only a report.
        assert!(a.seed_private.contains_key("/root/.ssh/id_ed25519"));
    }
}
