//! Spark's security settings as the nodes have them: parsing spark-defaults.conf (Java
//! properties) and spark-env.sh, and judging authentication, encryption, the REST submission
//! server, the UI's kill switch and the UI's bind address.
//!
//! Harden never edits these files: `sparkboot converge` renders them from
//! templates/spark-defaults.conf.tera and spark-env.sh.tera, so a fix is a converge (which
//! restarts the daemons only when a file changed), and a later converge changes nothing.

use std::collections::BTreeMap;

use super::Verdict;
use crate::spark::release::{default_cipher, Version, CTR, GCM};

/// Parses Java-properties text as Spark reads spark-defaults.conf: `key value`, `key=value` or
/// `key: value`; `#` and `!` start comments. (Line continuations are not used by sparkboot.)
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let end = line
            .find(|c: char| c.is_whitespace() || c == '=' || c == ':')
            .unwrap_or(line.len());
        let (key, rest) = line.split_at(end);
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest);
        out.insert(key.to_string(), rest.trim().to_string());
    }
    out
}

/// Reads `[export] NAME=value` assignments from spark-env.sh lines (quotes removed).
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.insert(name.to_string(), value.to_string());
    }
    out
}

/// The release from `spark-3.5.7-bin-hadoop3` or `3.5.7`.
pub fn version(text: &str) -> Option<Version> {
    Version::parse(text)
}

/// The cipher a hardened node of this version uses: AES-GCM authenticates traffic, but before
/// SPARK-56227 it drops every message after the first on a channel (`spark::release` holds the
/// table of releases that carry the fix).
pub fn wanted_cipher(version: Version) -> &'static str {
    default_cipher(version)
}

fn is_true(p: &BTreeMap<String, String>, key: &str) -> bool {
    p.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn shown(p: &BTreeMap<String, String>, key: &str) -> String {
    match p.get(key) {
        Some(v) => format!("{key} is {v}"),
        None => format!("{key} is not set"),
    }
}

pub fn auth(p: &BTreeMap<String, String>) -> Verdict {
    let secret = p
        .get("spark.authenticate.secret")
        .is_some_and(|v| !v.is_empty());
    match (is_true(p, "spark.authenticate"), secret) {
        (true, true) => Verdict::Pass("spark.authenticate true, secret set".into()),
        (true, false) => Verdict::Fail("spark.authenticate.secret is not set".into()),
        (false, _) => Verdict::Fail(shown(p, "spark.authenticate")),
    }
}

pub fn rpc_encryption(p: &BTreeMap<String, String>, version: Version) -> Verdict {
    if !is_true(p, "spark.network.crypto.enabled") {
        return Verdict::Fail(shown(p, "spark.network.crypto.enabled"));
    }
    let cipher = p
        .get("spark.network.crypto.cipher")
        .map(String::as_str)
        .unwrap_or(CTR);
    let want = wanted_cipher(version);
    if cipher.eq_ignore_ascii_case(want) {
        Verdict::Pass(format!("network crypto on with {cipher}"))
    } else if want == CTR {
        Verdict::Fail(format!(
            "cipher {cipher} on Spark {version}: its AES-GCM drops messages (SPARK-56227 is fixed from 3.5.9, 4.1.3 and 4.2.0); use {CTR}"
        ))
    } else {
        Verdict::Fail(format!(
            "cipher {cipher} on Spark {version}: use {GCM}, which also authenticates traffic"
        ))
    }
}

pub fn io_encryption(p: &BTreeMap<String, String>) -> Verdict {
    if is_true(p, "spark.io.encryption.enabled") {
        Verdict::Pass("spark.io.encryption.enabled true".into())
    } else {
        Verdict::Fail(shown(p, "spark.io.encryption.enabled"))
    }
}

/// Spark's default is off; only an explicit `true` starts the unauthenticated REST server.
pub fn rest_server(p: &BTreeMap<String, String>) -> Verdict {
    if is_true(p, "spark.master.rest.enabled") {
        Verdict::Fail("spark.master.rest.enabled is true".into())
    } else {
        Verdict::Pass(format!("{} (off)", shown(p, "spark.master.rest.enabled")))
    }
}

/// Spark's default is on, so the property must say `false`.
pub fn ui_kill(p: &BTreeMap<String, String>) -> Verdict {
    match p.get("spark.ui.killEnabled") {
        Some(v) if v.eq_ignore_ascii_case("false") => {
            Verdict::Pass("spark.ui.killEnabled false".into())
        }
        _ => Verdict::Fail(format!(
            "{} (Spark's default lets anyone reaching the UI kill jobs)",
            shown(p, "spark.ui.killEnabled")
        )),
    }
}

pub fn bind_address(env: &BTreeMap<String, String>, address: &str) -> Verdict {
    match env.get("SPARK_LOCAL_IP") {
        Some(ip) if ip == address => Verdict::Pass(format!("SPARK_LOCAL_IP={ip}")),
        Some(ip) => Verdict::Fail(format!(
            "SPARK_LOCAL_IP is {ip}, not this node's address {address}"
        )),
        None => Verdict::Fail("SPARK_LOCAL_IP is not set: the UIs listen on 0.0.0.0".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect(text)
    }

    #[test]
    fn properties_in_every_separator_style() {
        let p = parse_properties(
            "# comment\n! also\nspark.master   spark://h:7077\nspark.a=1\nspark.b : two words\n\
             spark.authenticate.secret <set>\n  spark.c\tx\nspark.empty\n",
        );
        assert_eq!(p["spark.master"], "spark://h:7077");
        assert_eq!(p["spark.a"], "1");
        assert_eq!(p["spark.b"], "two words");
        assert_eq!(p["spark.c"], "x");
        assert_eq!(p["spark.empty"], "");
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn env_assignments() {
        let e = parse_env(
            "export SPARK_LOCAL_IP=192.0.2.5\nSPARK_X=\"a b\"\n# SPARK_Y=1\nexport PATH\n",
        );
        assert_eq!(e["SPARK_LOCAL_IP"], "192.0.2.5");
        assert_eq!(e["SPARK_X"], "a b");
        assert_eq!(e.len(), 2);
        assert!(!bind_address(&e, "192.0.2.5").failed());
        assert!(bind_address(&e, "192.0.2.6").failed());
        assert!(bind_address(&BTreeMap::new(), "192.0.2.6")
            .detail()
            .contains("0.0.0.0"));
    }

    #[test]
    fn versions_and_ciphers() {
        assert_eq!(version("spark-3.5.7-bin-hadoop3"), Version::parse("3.5.7"));
        assert_eq!(version(""), None);
        assert_eq!(wanted_cipher(v("3.5.7")), CTR);
        assert_eq!(wanted_cipher(v("3.5.9")), GCM);
        assert_eq!(wanted_cipher(v("4.2.0")), GCM);
        assert_eq!(wanted_cipher(v("4.3.0")), GCM);
        assert_eq!(wanted_cipher(v("5.0.0")), GCM);
    }

    #[test]
    fn seed_spark_config_fails_and_rendered_one_passes() {
        let seed =
            parse_properties("spark.master spark://h:7077\nspark.master.rest.enabled true\n");
        assert!(auth(&seed).failed());
        assert!(rpc_encryption(&seed, v("3.5.7")).failed());
        assert!(io_encryption(&seed).failed());
        assert!(rest_server(&seed).failed());
        assert!(ui_kill(&seed).failed());
        let good = parse_properties(
            "spark.authenticate true\nspark.authenticate.secret <set>\n\
             spark.network.crypto.enabled true\nspark.network.crypto.cipher AES/CTR/NoPadding\n\
             spark.io.encryption.enabled true\nspark.master.rest.enabled false\nspark.ui.killEnabled false\n",
        );
        for v in [
            auth(&good),
            rpc_encryption(&good, v("3.5.7")),
            io_encryption(&good),
            rest_server(&good),
            ui_kill(&good),
        ] {
            assert!(!v.failed(), "{v:?}");
        }
        assert!(rpc_encryption(&good, v("4.3.0")).detail().contains("GCM"));
        let mut gcm = good.clone();
        gcm.insert("spark.network.crypto.cipher".into(), GCM.into());
        assert!(rpc_encryption(&gcm, v("3.5.7"))
            .detail()
            .contains("SPARK-56227"));
        assert!(!rpc_encryption(&gcm, v("4.3.0")).failed());
        let mut no_secret = good;
        no_secret.insert("spark.authenticate.secret".into(), String::new());
        assert!(auth(&no_secret).failed());
        assert!(!rest_server(&BTreeMap::new()).failed(), "off by default");
    }
}
