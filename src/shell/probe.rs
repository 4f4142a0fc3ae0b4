//! The composite fact probe: one POSIX sh script that answers every question a host's plan
//! asks, printed as marked sections that `facts::parse` reads back.

use std::fmt::Write as _;

use super::{guard, quote};
use crate::facts::ProbeRequest;

/// Starts each section of the probe's output. Chosen so no real file or command output begins
/// with it by accident.
pub const MARK: &str = "@@sparkboot:";

const PRELUDE: &str = r#"export LC_ALL=C
sb_pkg() { if command -v dpkg-query >/dev/null 2>&1; then case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" in ii*) echo installed;; *) echo missing;; esac; elif command -v rpm >/dev/null 2>&1; then rpm -q "$1" >/dev/null 2>&1 && echo installed || echo missing; else echo missing; fi; }
sb_unit() { if systemctl is-active --quiet "$1" 2>/dev/null; then echo "running $(systemctl show -p MainPID --value "$1")"; else echo stopped; fi; }
"#;

/// Every fact here is read with shell builtins where the kernel offers a file for it: a probe
/// runs on every host at every reconcile, and on small nodes the processes it starts are most
/// of its cost (a warm `watch` reconcile is nothing but this script). Only `readlink -f` (the
/// Java alternatives chain) starts a process; `uname` and `nproc` are fallbacks for kernels
/// before 6.1 and for a missing /proc.
const SYSTEM: &str = r#"( . /etc/os-release 2>/dev/null; echo "os_id=$ID"; echo "os_version=$VERSION_ID" )
if [ -r /proc/sys/kernel/arch ]; then read -r sb_v < /proc/sys/kernel/arch; echo "arch=$sb_v"; else echo "arch=$(uname -m)"; fi
sb_v=; while IFS= read -r sb_l; do case $sb_l in Uid:*) set -- $sb_l; echo "uid=$3";; Cpus_allowed_list:*) sb_v=${sb_l#*:};; esac; done < /proc/self/status
if [ -n "$sb_v" ]; then echo "cpus_allowed=$sb_v"; else echo "cpus=$(nproc 2>/dev/null || echo 1)"; echo "uid=$(id -u)"; fi
while read -r sb_k sb_v sb_l; do if [ "$sb_k" = MemTotal: ]; then echo "mem_kb=$sb_v"; break; fi; done < /proc/meminfo
if [ -r /proc/sys/kernel/hostname ]; then read -r sb_v < /proc/sys/kernel/hostname; echo "hostname=$sb_v"; else echo "hostname=$(hostname)"; fi
if [ -d /run/systemd/system ]; then echo systemd=1; else echo systemd=0; fi
if command -v apt-get >/dev/null 2>&1; then echo pkg=apt; elif command -v dnf >/dev/null 2>&1; then echo pkg=dnf; elif command -v yum >/dev/null 2>&1; then echo pkg=yum; else echo pkg=none; fi
# The JDK's release file names its version without starting a JVM (which costs ~0.2 s of CPU).
if sb_v=$(command -v java 2>/dev/null) && sb_v=$(readlink -f "$sb_v"); then sb_r=${sb_v%/*/*}/release; if [ -r "$sb_r" ]; then while IFS= read -r sb_l; do case $sb_l in JAVA_VERSION=*) echo "java=$sb_l"; break;; esac; done < "$sb_r"; else echo "java=$(java -version 2>&1 | head -n 1)"; fi; fi
"#;

/// Builds the probe script for one host.
pub fn script(request: &ProbeRequest) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str(PRELUDE);
    s.push_str(super::PID_FN);
    if !request.authorized_keys.is_empty() || !request.contents.is_empty() {
        s.push_str(guard::CTL_FN);
        s.push_str(guard::READ_FN);
    }
    let _ = writeln!(s, "echo '{MARK}system 0'");
    s.push_str(SYSTEM);
    let mut section = |kind: &str, i: usize, call: String| {
        let _ = writeln!(s, "echo '{MARK}{kind} {i}'; {call}");
    };
    if !request.paths.is_empty() {
        // Two processes for every path at once: find reports type, owner, mode and link target
        // (absent paths are simply not printed), sha256sum the content of the regular files.
        let words: Vec<String> = request.paths.iter().map(|p| quote(p)).collect();
        let words = words.join(" ");
        section("paths", 0, format!("find {words} -maxdepth 0 -printf '%y\\t%u\\t%g\\t%m\\t%l\\t%p\\n' 2>/dev/null || true"));
        // Hashing a 600 MB jar on every no-op would cost seconds of CPU per node: files known
        // by a marker are only stat'ed.
        let hashed: Vec<String> = request
            .paths
            .difference(&request.unhashed)
            .map(|p| quote(p))
            .collect();
        let call = if hashed.is_empty() {
            "true".to_string()
        } else {
            format!("sha256sum {} 2>/dev/null || true", hashed.join(" "))
        };
        section("hashes", 0, call);
    }
    for (i, u) in request.users.iter().enumerate() {
        section("user", i, format!("getent passwd {} || true", quote(u)));
    }
    for (i, g) in request.groups.iter().enumerate() {
        section("group", i, format!("getent group {} || true", quote(g)));
    }
    for (i, p) in request.packages.iter().enumerate() {
        section("package", i, format!("sb_pkg {}", quote(p)));
    }
    for (i, probe) in request.services.values().enumerate() {
        let call = match &probe.systemd_unit {
            // Units are checked only where systemd runs; elsewhere the pidfile tells.
            Some(unit) => format!(
                "if [ -d /run/systemd/system ]; then sb_unit {}; else sb_pid {} {}; fi",
                quote(unit),
                quote(&probe.pidfile),
                quote(probe.cmdline_match.as_deref().unwrap_or_default())
            ),
            None => format!(
                "sb_pid {} {}",
                quote(&probe.pidfile),
                quote(probe.cmdline_match.as_deref().unwrap_or_default())
            ),
        };
        section("service", i, call);
    }
    for (i, g) in request.guards.iter().enumerate() {
        section("guard", i, format!("( {g} ) >/dev/null 2>&1; echo $?"));
    }
    for (i, p) in request.contents.iter().enumerate() {
        section("content", i, format!("sb_read {}", quote(p)));
    }
    for (i, command) in request.observe.values().enumerate() {
        section("observe", i, format!("( {command} ) 2>/dev/null"));
    }
    for (i, u) in request.authorized_keys.iter().enumerate() {
        // Read as the home's owner: a job running as that user controls the home.
        // The home is the sixth of seven fields; the last (the shell) cannot hold a colon.
        let call = format!("h=$(getent passwd {}); h=${{h%:*}}; h=${{h##*:}}; if [ -n \"$h\" ]; then sb_read \"$h/.ssh/authorized_keys\"; else echo absent; fi", quote(u));
        section("authorized_keys", i, call);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhashed_paths_are_stated_but_never_hashed() {
        let mut req = ProbeRequest::default();
        req.paths.insert("/opt/s/jars/bundle.jar".into());
        req.paths.insert("/opt/s/conf/a b".into());
        req.unhashed.insert("/opt/s/jars/bundle.jar".into());
        let s = script(&req);
        assert!(
            s.contains("find '/opt/s/conf/a b' /opt/s/jars/bundle.jar -maxdepth 0"),
            "{s}"
        );
        assert!(s.contains("sha256sum '/opt/s/conf/a b' 2>/dev/null"), "{s}");
        req.paths.remove("/opt/s/conf/a b");
        let s = script(&req);
        assert!(!s.contains("sha256sum"), "{s}");
    }

    #[test]
    fn every_requested_item_gets_a_quoted_section() {
        let mut req = ProbeRequest::default();
        req.paths.insert("/opt/my dir".into());
        req.users.insert("spark".into());
        let s = script(&req);
        assert!(
            s.contains("echo '@@sparkboot:paths 0'; find '/opt/my dir' -maxdepth 0"),
            "{s}"
        );
        assert!(s.contains("echo '@@sparkboot:user 0'; getent passwd spark || true"));
        assert!(s.contains("echo '@@sparkboot:system 0'"));
    }
}
