//! Pure parsers for the composite probe's output. No I/O here: tests feed captured text.

use std::collections::BTreeMap;

use base64::Engine;

use super::{FactError, Facts, PathFact, ProbeRequest, ServiceFact, SystemFacts, UserFact};
use crate::shell::probe::MARK;

/// Splits the output into `(kind, index) -> body` sections.
fn sections(output: &str) -> BTreeMap<(String, usize), String> {
    let mut map = BTreeMap::new();
    let mut current: Option<(String, usize)> = None;
    let mut body = String::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            if let Some(key) = current.take() {
                map.insert(key, std::mem::take(&mut body));
            }
            let mut parts = rest.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_string();
            let index = parts.next().and_then(|i| i.parse().ok()).unwrap_or(0);
            current = Some((kind, index));
        } else if current.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(key) = current {
        map.insert(key, body);
    }
    map
}

pub fn parse(request: &ProbeRequest, output: &str) -> Result<Facts, FactError> {
    let secs = sections(output);
    let get = |kind: &str, i: usize| -> Result<&str, FactError> {
        secs.get(&(kind.to_string(), i))
            .map(String::as_str)
            .ok_or_else(|| FactError::MissingSection(format!("{kind} {i}")))
    };
    let mut facts = Facts {
        system: parse_system(get("system", 0)?)?,
        ..Facts::default()
    };
    if !request.paths.is_empty() {
        facts.paths = parse_paths(&request.paths, get("paths", 0)?, get("hashes", 0)?)?;
    }
    for (i, user) in request.users.iter().enumerate() {
        facts
            .users
            .insert(user.clone(), parse_passwd(get("user", i)?)?);
    }
    for (i, group) in request.groups.iter().enumerate() {
        facts
            .groups
            .insert(group.clone(), parse_group(get("group", i)?)?);
    }
    for (i, pkg) in request.packages.iter().enumerate() {
        facts
            .packages
            .insert(pkg.clone(), get("package", i)?.trim() == "installed");
    }
    for (i, name) in request.services.keys().enumerate() {
        facts
            .services
            .insert(name.clone(), parse_service(get("service", i)?));
    }
    for (i, guard) in request.guards.iter().enumerate() {
        let text = get("guard", i)?.trim();
        let status = text
            .parse()
            .map_err(|_| bad("guard", format!("exit status {text:?} is not a number")))?;
        facts.guards.insert(guard.clone(), status);
    }
    for (i, path) in request.contents.iter().enumerate() {
        facts
            .contents
            .insert(path.clone(), parse_content(get("content", i)?)?);
    }
    for (i, user) in request.authorized_keys.iter().enumerate() {
        facts
            .authorized_keys
            .insert(user.clone(), parse_content(get("authorized_keys", i)?)?);
    }
    for (i, name) in request.observe.keys().enumerate() {
        facts
            .observed
            .insert(name.clone(), get("observe", i)?.to_string());
    }
    Ok(facts)
}

fn bad(section: &str, message: String) -> FactError {
    FactError::Bad {
        section: section.to_string(),
        message,
    }
}

/// `key=value` lines from the system section.
pub fn parse_system(body: &str) -> Result<SystemFacts, FactError> {
    let mut s = SystemFacts::default();
    for line in body.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key {
            "os_id" => s.os_id = value.to_string(),
            "os_version" => s.os_version = value.to_string(),
            "arch" => s.arch = value.to_string(),
            "cpus" => s.cpus = value.parse().unwrap_or(1),
            "cpus_allowed" => s.cpus = cpus_in_list(value).unwrap_or(1),
            "mem_kb" => s.memory_mb = value.parse::<u64>().unwrap_or(0) / 1024,
            "uid" => {
                s.uid = value
                    .parse()
                    .map_err(|_| bad("system", format!("uid {value:?}")))?
            }
            "hostname" => s.hostname = value.to_string(),
            "systemd" => s.systemd = value == "1",
            "pkg" => s.package_manager = value.to_string(),
            "java" => s.java_major = java_major(value),
            _ => {}
        }
    }
    if s.hostname.is_empty() {
        return Err(bad("system", "no hostname line".into()));
    }
    Ok(s)
}

/// How many CPUs a kernel CPU list names (`Cpus_allowed_list` of /proc/PID/status, the set
/// `nproc` counts): `0-1` -> 2, `0,2,4-7` -> 6. None for anything that is not such a list.
pub fn cpus_in_list(list: &str) -> Option<u32> {
    let mut count: u32 = 0;
    for part in list.trim().split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        count = count.checked_add(last.checked_sub(first)?.checked_add(1)?)?;
    }
    (count > 0).then_some(count)
}

/// Major version from the first line of `java -version`: `"17.0.15"` -> 17, `"1.8.0_392"` -> 8.
pub fn java_major(line: &str) -> u32 {
    let Some(start) = line.find('"') else {
        return 0;
    };
    let version = line[start + 1..].split('"').next().unwrap_or_default();
    let mut parts = version.split(['.', '_', '-', '+']);
    match parts.next().and_then(|p| p.parse().ok()) {
        Some(1) => parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
        Some(n) => n,
        None => 0,
    }
}

/// The batched path probe: `find -printf '%y\t%u\t%g\t%m\t%l\t%p\n'` lines for the paths
/// that exist, and `sha256sum` lines (`<hex>  <path>`) for the regular files among them.
/// Paths that find did not print are absent.
pub fn parse_paths(
    requested: &std::collections::BTreeSet<String>,
    find: &str,
    hashes: &str,
) -> Result<BTreeMap<String, PathFact>, FactError> {
    let sums: BTreeMap<&str, &str> = hashes
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(hash, path)| (path, hash))
        .collect();
    let mode = |m: &str| {
        u32::from_str_radix(m, 8).map_err(|_| bad("paths", format!("mode {m:?} is not octal")))
    };
    let mut found = BTreeMap::new();
    for line in find.lines() {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let [kind, owner, group, m, target, path] = f.as_slice() else {
            return Err(bad("paths", format!("unexpected line {line:?}")));
        };
        let (owner, group) = (owner.to_string(), group.to_string());
        let fact = match *kind {
            "l" => PathFact::Link {
                target: target.to_string(),
            },
            "d" => PathFact::Dir {
                owner,
                group,
                mode: mode(m)?,
            },
            "f" => PathFact::File {
                owner,
                group,
                mode: mode(m)?,
                sha256: sums.get(path).copied().unwrap_or_default().to_string(),
            },
            _ => PathFact::Other,
        };
        found.insert(path.to_string(), fact);
    }
    Ok(requested
        .iter()
        .map(|p| (p.clone(), found.remove(p).unwrap_or(PathFact::Absent)))
        .collect())
}

/// `getent passwd` output, or nothing when the user does not exist.
pub fn parse_passwd(body: &str) -> Result<Option<UserFact>, FactError> {
    let line = body.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return Err(bad(
            "user",
            format!("passwd line {line:?} has {} fields, expected 7", f.len()),
        ));
    }
    let num = |s: &str| {
        s.parse()
            .map_err(|_| bad("user", format!("{s:?} is not a number")))
    };
    Ok(Some(UserFact {
        uid: num(f[2])?,
        gid: num(f[3])?,
        home: f[5].to_string(),
        shell: f[6].to_string(),
    }))
}

/// `getent group` output, or nothing when the group does not exist.
pub fn parse_group(body: &str) -> Result<Option<u32>, FactError> {
    let line = body.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let gid = line.split(':').nth(2).and_then(|g| g.parse().ok());
    gid.map(Some)
        .ok_or_else(|| bad("group", format!("group line {line:?} has no gid")))
}

/// `running PID` or `stopped`.
pub fn parse_service(body: &str) -> ServiceFact {
    let mut words = body.split_whitespace();
    match (words.next(), words.next()) {
        (Some("running"), pid) => ServiceFact {
            running: true,
            pid: pid.and_then(|p| p.parse().ok()),
        },
        _ => ServiceFact {
            running: false,
            pid: None,
        },
    }
}

/// `absent`, or `present` followed by one line of base64.
pub fn parse_content(body: &str) -> Result<Option<String>, FactError> {
    let mut lines = body.lines();
    match lines.next() {
        Some("absent") => Ok(None),
        Some("present") => {
            let b64: String = lines.collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| bad("content", format!("bad base64: {e}")))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Some(line) if line.starts_with("refused ") => Err(bad(
            "content",
            line.trim_start_matches("refused ").trim().to_string(),
        )),
        other => Err(bad("content", format!("unexpected line {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ServiceProbe;

    // Captured from a lab node (Debian 12 userland) with `sparkboot converge -vv`.
    const SYSTEM: &str = "os_id=debian\nos_version=\"12\"\narch=x86_64\ncpus=2\nmem_kb=24600708\nuid=0\nhostname=lab-worker-1\nsystemd=0\npkg=apt\njava=openjdk version \"17.0.15\" 2025-04-15\n";

    #[test]
    fn system_facts_from_a_debian_node() {
        let s = parse_system(SYSTEM).expect("parses");
        assert_eq!(s.os_id, "debian");
        assert_eq!(s.os_version, "12");
        assert_eq!(s.cpus, 2);
        assert_eq!(s.memory_mb, 24024);
        assert_eq!(s.hostname, "lab-worker-1");
        assert!(!s.systemd);
        assert_eq!(s.package_manager, "apt");
        assert_eq!(s.java_major, 17);
    }

    #[test]
    fn system_facts_read_with_builtins() {
        // The probe's own output on a lab node since it reads /proc instead of running nproc.
        let out = "os_id=debian\nos_version=12\narch=x86_64\nuid=0\ncpus_allowed=0-1\nmem_kb=24600708\nhostname=lab-worker-1\nsystemd=0\npkg=apt\njava=JAVA_VERSION=\"17.0.15\"\n";
        let s = parse_system(out).expect("parses");
        assert_eq!((s.cpus, s.uid, s.java_major), (2, 0, 17));
        assert_eq!(s.arch, "x86_64");
    }

    #[test]
    fn cpu_lists_count_like_nproc() {
        assert_eq!(cpus_in_list("0-1"), Some(2));
        assert_eq!(cpus_in_list("\t0,2,4-7"), Some(6));
        assert_eq!(cpus_in_list("5"), Some(1));
        assert_eq!(cpus_in_list("3-1"), None);
        assert_eq!(cpus_in_list(""), None);
        assert_eq!(cpus_in_list("0-4294967295"), None);
    }

    #[test]
    fn java_versions_old_and_new() {
        assert_eq!(java_major("openjdk version \"17.0.15\" 2025-04-15"), 17);
        assert_eq!(java_major("java version \"1.8.0_392\""), 8);
        assert_eq!(java_major("openjdk version \"21\" 2023-09-19"), 21);
        assert_eq!(java_major(""), 0);
        // From the JDK's release file, as the probe reads it.
        assert_eq!(java_major("JAVA_VERSION=\"17.0.15\""), 17);
    }

    #[test]
    fn batched_path_lines() {
        let requested: std::collections::BTreeSet<String> =
            ["/opt/spark", "/opt/d", "/opt/f", "/opt/none", "/dev/null"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        // Captured from `find ... -maxdepth 0 -printf` and `sha256sum` on a lab node.
        let find = "l\troot\troot\t777\t/opt/spark-3.5.7\t/opt/spark\nd\tspark\tspark\t750\t\t/opt/d\nf\troot\troot\t600\t\t/opt/f\nc\troot\troot\t666\t\t/dev/null\n";
        let hashes = "abc123  /opt/f\n";
        let facts = parse_paths(&requested, find, hashes).expect("parses");
        assert_eq!(
            facts["/opt/spark"],
            PathFact::Link {
                target: "/opt/spark-3.5.7".into()
            }
        );
        assert_eq!(
            facts["/opt/d"],
            PathFact::Dir {
                owner: "spark".into(),
                group: "spark".into(),
                mode: 0o750
            }
        );
        assert_eq!(
            facts["/opt/f"],
            PathFact::File {
                owner: "root".into(),
                group: "root".into(),
                mode: 0o600,
                sha256: "abc123".into()
            }
        );
        assert_eq!(facts["/opt/none"], PathFact::Absent);
        assert_eq!(facts["/dev/null"], PathFact::Other);
        assert!(parse_paths(&requested, "f\troot\n", "").is_err());
        assert!(parse_paths(&requested, "d\troot\troot\t9z\t\t/opt/d\n", "").is_err());
    }

    #[test]
    fn users_groups_and_services() {
        let u = parse_passwd("spark:x:999:998::/var/lib/spark:/usr/sbin/nologin\n")
            .expect("user")
            .expect("present");
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (999, 998, "/var/lib/spark")
        );
        assert_eq!(parse_passwd("\n").expect("absent"), None);
        assert_eq!(parse_group("spark:x:998:\n").expect("group"), Some(998));
        assert_eq!(parse_group("").expect("absent"), None);
        assert_eq!(
            parse_service("running 4242\n"),
            ServiceFact {
                running: true,
                pid: Some(4242)
            }
        );
        assert_eq!(
            parse_service("stopped\n"),
            ServiceFact {
                running: false,
                pid: None
            }
        );
    }

    #[test]
    fn whole_probe_output_maps_back_to_the_request() {
        let mut req = ProbeRequest::default();
        req.paths.insert("/opt/a".into());
        req.paths.insert("/opt/b".into());
        req.users.insert("spark".into());
        req.services.insert(
            "demo".into(),
            ServiceProbe {
                pidfile: "/run/demo.pid".into(),
                cmdline_match: None,
                systemd_unit: None,
            },
        );
        req.guards.insert("test -e /x".into());
        req.contents.insert("/root/.ssh/authorized_keys".into());
        let out = format!(
            "{m}system\n{SYSTEM}{m}paths 0\nd\troot\troot\t755\t\t/opt/b\n{m}hashes 0\n{m}user 0\n\n{m}service 0\nrunning 7\n{m}guard 0\n1\n{m}content 0\npresent\nc3NoLWVkMjU1MTkgQUFBQSBvcAo=\n",
            m = MARK
        );
        let facts = parse(&req, &out).expect("parses");
        assert_eq!(facts.path("/opt/a"), &PathFact::Absent);
        assert!(matches!(facts.path("/opt/b"), PathFact::Dir { .. }));
        assert_eq!(facts.users["spark"], None);
        assert!(facts.services["demo"].running);
        assert_eq!(facts.guards["test -e /x"], 1);
        assert_eq!(
            facts.contents["/root/.ssh/authorized_keys"].as_deref(),
            Some("ssh-ed25519 AAAA op\n")
        );
    }

    #[test]
    fn truncated_output_names_the_missing_section() {
        let mut req = ProbeRequest::default();
        req.paths.insert("/opt/a".into());
        let out = format!("{MARK}system\n{SYSTEM}");
        assert_eq!(
            parse(&req, &out),
            Err(FactError::MissingSection("paths 0".into()))
        );
    }
}
