//! Owners and modes of the files that hold keys, secrets and configuration, and of Spark's
//! directories. Each rule gives an owner and the widest mode allowed; a fix only chowns and
//! removes permission bits, never adds any, and the Spark rules come from the same layout the
//! roles render with (the spark role's `[layout]`: conf files root with `modes.conf`, Spark dirs
//! the Spark user with `modes.dirs`), so harden and converge never undo each other.

use super::facts::Home;
use super::Verdict;
use crate::spark::layout::Layout;

/// One `stat` line from the probe: mode (octal), owner, group, type, path.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub kind: String,
    pub path: String,
}

impl Stat {
    /// Parses `%a\t%U\t%G\t%F\t%n`.
    pub fn parse(line: &str) -> Option<Stat> {
        let mut f = line.splitn(5, '\t');
        let mode = u32::from_str_radix(f.next()?, 8).ok()?;
        Some(Stat {
            mode,
            owner: f.next()?.to_string(),
            group: f.next()?.to_string(),
            kind: f.next()?.to_string(),
            path: f.next()?.to_string(),
        })
    }
}

/// Which check a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Ssh,
    Spark,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub area: Area,
    /// Required owner; `None` checks the mode only.
    pub owner: Option<String>,
    pub max_mode: u32,
}

fn rule(area: Area, owner: Option<&str>, max_mode: u32) -> Option<Rule> {
    Some(Rule {
        area,
        owner: owner.map(str::to_string),
        max_mode,
    })
}

/// The rule for a path the probe reported, given the homes it found and the Spark layout.
pub fn rule_for(stat: &Stat, homes: &[Home], layout: &Layout) -> Option<Rule> {
    let p = stat.path.as_str();
    let dir = stat.kind == "directory";
    match p {
        "/etc/ssh/sshd_config" => return rule(Area::Ssh, Some("root"), 0o644),
        "/etc/ssh/sshd_config.d" => return rule(Area::Ssh, Some("root"), 0o755),
        _ => {}
    }
    // Root's, readable by the Spark group: a job running as the Spark user must not change what
    // the daemons (or root, sourcing spark-env.sh) run.
    if p == layout.conf_file("spark-defaults.conf") || p == layout.conf_file("spark-env.sh") {
        return rule(Area::Spark, Some("root"), layout.mode(&layout.modes.conf));
    }
    if p == layout.user_home {
        return rule(Area::Spark, Some(&layout.user), 0o755);
    }
    if [
        &layout.pid_dir,
        &layout.work_dir,
        &layout.local_dir,
        &layout.log_dir,
        &layout.event_log_dir,
    ]
    .contains(&&p.to_string())
    {
        return rule(
            Area::Spark,
            Some(&layout.user),
            layout.mode(&layout.modes.dirs),
        );
    }
    if let Some(name) = p.strip_prefix("/etc/ssh/sshd_config.d/") {
        return name
            .ends_with(".conf")
            .then(|| rule(Area::Ssh, Some("root"), 0o644))
            .flatten();
    }
    if let Some(name) = p.strip_prefix("/etc/ssh/ssh_host_") {
        // Amazon Linux keeps host keys root:ssh_keys 0640.
        return name
            .ends_with("_key")
            .then(|| rule(Area::Ssh, Some("root"), 0o640))
            .flatten();
    }
    let home = homes.iter().find(|h| {
        let dir = format!("{}/.ssh", h.path.trim_end_matches('/'));
        p == dir || p.starts_with(&format!("{dir}/"))
    })?;
    let area = if home.owner == layout.user {
        Area::Spark
    } else {
        Area::Ssh
    };
    let owner = Some(home.owner.as_str());
    let name = p.rsplit('/').next().unwrap_or_default();
    if dir {
        rule(area, owner, 0o700)
    } else if name.ends_with(".pub") || name.starts_with("known_hosts") || name == "config" {
        rule(area, owner, 0o644)
    } else {
        // authorized_keys, private keys and anything else in .ssh.
        rule(area, owner, 0o600)
    }
}

/// One path to repair: chown to `owner` (when set) and chmod to `mode`.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    pub path: String,
    pub owner: Option<String>,
    pub mode: u32,
    pub why: String,
}

/// The repairs needed in `area`.
pub fn repairs(stats: &[Stat], homes: &[Home], area: Area, layout: &Layout) -> Vec<Repair> {
    let mut out = Vec::new();
    for s in stats {
        let Some(r) = rule_for(s, homes, layout).filter(|r| r.area == area) else {
            continue;
        };
        let wrong_owner = r.owner.as_ref().filter(|o| **o != s.owner).cloned();
        let extra = s.mode & 0o777 & !r.max_mode;
        if wrong_owner.is_none() && extra == 0 {
            continue;
        }
        let mut why = Vec::new();
        if let Some(o) = &wrong_owner {
            why.push(format!("owner {} (want {o})", s.owner));
        }
        if extra != 0 {
            why.push(format!("mode {:o} (at most {:o})", s.mode, r.max_mode));
        }
        out.push(Repair {
            path: s.path.clone(),
            owner: wrong_owner,
            mode: s.mode & (r.max_mode | 0o7000),
            why: why.join(", "),
        });
    }
    out
}

pub fn verdict(repairs: &[Repair], checked: usize) -> Verdict {
    if repairs.is_empty() {
        return Verdict::Pass(format!("{checked} path(s) checked"));
    }
    let list: Vec<String> = repairs
        .iter()
        .map(|r| format!("{}: {}", r.path, r.why))
        .collect();
    Verdict::Fail(list.join("; "))
}

/// How many probed paths fall in `area` (for the pass message).
pub fn checked(stats: &[Stat], homes: &[Home], area: Area, layout: &Layout) -> usize {
    stats
        .iter()
        .filter(|s| rule_for(s, homes, layout).is_some_and(|r| r.area == area))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mode: u32, owner: &str, kind: &str, path: &str) -> Stat {
        Stat {
            mode,
            owner: owner.into(),
            group: owner.into(),
            kind: kind.into(),
            path: path.into(),
        }
    }

    fn homes() -> Vec<Home> {
        vec![
            Home {
                path: "/home/ec2-user".into(),
                owner: "ec2-user".into(),
            },
            Home {
                path: "/var/lib/spark".into(),
                owner: "spark".into(),
            },
        ]
    }

    #[test]
    fn parses_stat_lines() {
        let s = Stat::parse("2750\tspark\tspark\tdirectory\t/var/lib/spark/run").expect("stat");
        assert_eq!((s.mode, s.kind.as_str()), (0o2750, "directory"));
        assert_eq!(Stat::parse("rw\tx"), None);
    }

    #[test]
    fn loose_modes_and_wrong_owners_are_repaired_by_removing_bits() {
        let stats = vec![
            stat(
                0o644,
                "root",
                "regular file",
                "/opt/spark/conf/spark-defaults.conf",
            ),
            stat(
                0o640,
                "root",
                "regular file",
                "/opt/spark/conf/spark-env.sh",
            ),
            stat(
                0o600,
                "root",
                "regular file",
                "/var/lib/spark/.ssh/id_ed25519",
            ),
            stat(0o2770, "spark", "directory", "/var/lib/spark/run"),
            stat(
                0o644,
                "ec2-user",
                "regular file",
                "/home/ec2-user/.ssh/authorized_keys",
            ),
            stat(
                0o644,
                "ec2-user",
                "regular file",
                "/home/ec2-user/.ssh/id_rsa.pub",
            ),
            stat(
                0o600,
                "root",
                "regular file",
                "/etc/ssh/ssh_host_ed25519_key",
            ),
            stat(0o640, "root", "regular file", "/etc/ssh/ssh_host_ecdsa_key"),
            stat(
                0o666,
                "root",
                "regular file",
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
            ),
            stat(0o644, "root", "regular file", "/etc/ssh/moduli"),
        ];
        let layout = crate::spark::layout::tests::builtin();
        let spark = repairs(&stats, &homes(), Area::Spark, &layout);
        let paths: Vec<(&str, Option<&str>, u32)> = spark
            .iter()
            .map(|r| (r.path.as_str(), r.owner.as_deref(), r.mode))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/opt/spark/conf/spark-defaults.conf", None, 0o640),
                ("/var/lib/spark/.ssh/id_ed25519", Some("spark"), 0o600),
                ("/var/lib/spark/run", None, 0o2750),
            ]
        );
        let ssh = repairs(&stats, &homes(), Area::Ssh, &layout);
        let paths: Vec<&str> = ssh.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/home/ec2-user/.ssh/authorized_keys",
                "/etc/ssh/sshd_config.d/50-cloud-init.conf"
            ]
        );
        assert!(verdict(&ssh, 9).detail().contains("mode 666 (at most 644)"));
        assert_eq!(checked(&stats, &homes(), Area::Ssh, &layout), 5);
        assert!(!verdict(&[], 3).failed());
    }
}
