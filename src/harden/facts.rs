//! What the harden probe reports about one host, parsed from its marked sections. Pure: the
//! probe script is `crate::shell::harden::audit_script`, and tests feed captured text.

use std::collections::BTreeMap;

use super::imds::{Dmi, Imds};
use super::perms::Stat;

/// Starts each section of the harden probe's output.
pub const MARK: &str = "@@harden:";

/// One home directory that has a `.ssh` directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Home {
    pub path: String,
    pub owner: String,
}

/// A private key file found under a home's `.ssh`, with its public half when derivable.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateKeyFile {
    pub path: String,
    /// `type base64` of the public half (from `ssh-keygen -y` or the `.pub` beside it).
    pub public: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostFacts {
    /// `sshd -T`'s exit status and output.
    pub sshd_status: i32,
    pub sshd_t: String,
    /// Our drop-in's content, when present.
    pub dropin: Option<String>,
    pub homes: Vec<Home>,
    /// Homes the probe would not read, with why (a directory everyone may write on the way).
    pub refused: Vec<String>,
    pub private_keys: Vec<PrivateKeyFile>,
    /// authorized_keys path -> content.
    pub authorized: BTreeMap<String, String>,
    pub stats: Vec<Stat>,
    /// Basename of /opt/spark's target (`spark-3.5.7-bin-hadoop3`), empty when absent.
    pub spark_link: String,
    /// spark-defaults.conf with secret values masked (`<set>`), when present.
    pub spark_defaults: Option<String>,
    /// The SPARK_LOCAL_IP lines of spark-env.sh, when the file is present.
    pub spark_env: Option<String>,
    pub dmi: Dmi,
    /// Set only after the network probe ran (on EC2, never on a lab node).
    pub imds: Option<Imds>,
}

fn sections(output: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push((kind.to_string(), arg.to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

fn present(arg: &str, body: String) -> Option<String> {
    (arg == "present").then_some(body)
}

/// Parses the probe's whole output. Unknown sections are ignored (a newer probe stays readable).
pub fn parse(output: &str) -> Result<HostFacts, String> {
    let mut f = HostFacts::default();
    let mut saw_sshd = false;
    for (kind, arg, body) in sections(output) {
        match kind.as_str() {
            "sshd" => {
                saw_sshd = true;
                f.sshd_status = arg.trim().parse().unwrap_or(-1);
                f.sshd_t = body;
            }
            "dropin" => f.dropin = present(&arg, body),
            "home" => {
                let (owner, path) = arg.split_once('\t').unwrap_or(("", arg.as_str()));
                f.homes.push(Home {
                    path: path.to_string(),
                    owner: owner.to_string(),
                });
            }
            "refused" => {
                let (home, why) = arg.split_once('\t').unwrap_or((arg.as_str(), ""));
                f.refused.push(format!("{home}: {}", why.trim()));
            }
            "privkey" => {
                let public = body
                    .lines()
                    .map(str::split_whitespace)
                    .find_map(|mut w| Some(format!("{} {}", w.next()?, w.next()?)));
                f.private_keys.push(PrivateKeyFile { path: arg, public });
            }
            "authkeys" => {
                f.authorized.insert(arg, body);
            }
            "stat" => f.stats.extend(body.lines().filter_map(Stat::parse)),
            "spark-link" => f.spark_link = body.trim().to_string(),
            "spark-defaults" => f.spark_defaults = present(&arg, body),
            "spark-env" => f.spark_env = present(&arg, body),
            "dmi" => f.dmi.set(&arg, body.trim()),
            _ => {}
        }
    }
    if !saw_sshd {
        return Err("the harden probe printed no sshd section (did the script run?)".into());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = "@@harden:sshd 0\n\
passwordauthentication yes\nport 22\n\
@@harden:dropin absent\n\
@@harden:home ec2-user\t/home/ec2-user\n\
@@harden:stat\n600\tec2-user\tec2-user\tregular file\t/home/ec2-user/.ssh/id_rsa\n\
@@harden:privkey /home/ec2-user/.ssh/id_rsa\nssh-rsa AAAAseed seed@user-data\n\
@@harden:authkeys /home/ec2-user/.ssh/authorized_keys\nssh-ed25519 AAAAop lab\nssh-rsa AAAAseed seed\n\n\
@@harden:spark-link\nspark-3.5.7-bin-hadoop3\n\
@@harden:spark-defaults present\nspark.authenticate true\nspark.authenticate.secret <set>\n\
@@harden:spark-env absent\n\
@@harden:dmi sys_vendor\nAmazon EC2\n";

    #[test]
    fn sections_become_facts() {
        let f = parse(SAMPLE).expect("parses");
        assert_eq!(f.sshd_status, 0);
        assert!(f.sshd_t.contains("passwordauthentication yes"));
        assert_eq!(f.dropin, None);
        assert_eq!(f.homes[0].owner, "ec2-user");
        assert_eq!(f.homes[0].path, "/home/ec2-user");
        assert_eq!(
            f.private_keys[0].public.as_deref(),
            Some("ssh-rsa AAAAseed")
        );
        assert!(f.authorized["/home/ec2-user/.ssh/authorized_keys"].contains("AAAAop"));
        assert_eq!(f.stats.len(), 1);
        assert_eq!(f.spark_link, "spark-3.5.7-bin-hadoop3");
        assert!(f.spark_defaults.is_some() && f.spark_env.is_none());
        assert_eq!(f.dmi.sys_vendor, "Amazon EC2");
    }

    #[test]
    fn a_private_key_without_public_half_is_kept_as_unknown() {
        let f = parse("@@harden:sshd 0\n@@harden:privkey /root/.ssh/id_x\n\n").expect("parses");
        assert_eq!(f.private_keys[0].public, None);
    }

    #[test]
    fn output_without_the_sshd_section_is_an_error() {
        assert!(parse("sh: 1: syntax error\n").is_err());
    }
}
