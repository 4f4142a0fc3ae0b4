//! Scripts that make changes. Each takes plain words and quotes them; content and secrets are
//! never part of a script, they arrive on stdin.

use super::{as_user, join, quote, write_file_from_stdin};

/// Shell helpers shared by scripts that need to check a pidfile.
const PID_FN: &str = r#"sb_alive() { pid=$(cat "$1" 2>/dev/null); [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" && { [ -z "$2" ] || tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$2"; }; }"#;

pub fn install_packages(manager: &str, names: &[String]) -> String {
    let names = join(names);
    match manager {
        // An image's apt lists may be empty or stale; update once, then install.
        "apt" => format!("export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends {names}"),
        "dnf" => format!("dnf install -y -q {names}"),
        _ => format!("yum install -y -q {names}"),
    }
}

pub fn add_group(name: &str, system: bool) -> String {
    let flag = if system { "--system " } else { "" };
    format!("groupadd {flag}{}", quote(name))
}

pub fn add_user(
    name: &str,
    group: Option<&str>,
    system: bool,
    home: Option<&str>,
    shell: Option<&str>,
) -> String {
    let mut words = vec!["useradd".to_string()];
    if system {
        words.push("--system".into());
    }
    if let Some(g) = group {
        words.extend(["--gid".into(), g.to_string()]);
    }
    match home {
        Some(h) => words.extend(["--home-dir".into(), h.to_string(), "--create-home".into()]),
        None => words.push("--no-create-home".into()),
    }
    if let Some(s) = shell {
        words.extend(["--shell".into(), s.to_string()]);
    }
    words.push(name.to_string());
    join(&words)
}

pub fn ensure_directory(path: &str, owner: &str, group: &str, mode: &str) -> String {
    format!(
        "mkdir -p {p} && chown {o}:{g} {p} && chmod {m} {p}",
        p = quote(path),
        o = quote(owner),
        g = quote(group),
        m = quote(mode)
    )
}

pub fn set_owner_mode(path: &str, owner: &str, group: &str, mode: &str) -> String {
    format!(
        "chown {o}:{g} {p} && chmod {m} {p}",
        p = quote(path),
        o = quote(owner),
        g = quote(group),
        m = quote(mode)
    )
}

/// The file's content arrives on stdin; the parent directory must exist (a directory step).
pub fn write_file(path: &str, owner: &str, group: &str, mode: &str) -> String {
    write_file_from_stdin(path, owner, group, mode)
}

/// Points `path` at `target` atomically (a new link renamed over the old one).
pub fn symlink(path: &str, target: &str) -> String {
    let tmp = format!("{path}.sparkboot-tmp");
    format!(
        "ln -sfn {t} {tmp} && mv -T {tmp} {p}",
        t = quote(target),
        tmp = quote(&tmp),
        p = quote(path)
    )
}

/// Downloads (or, with `from_stdin`, receives) an archive, verifies its SHA-512, unpacks it into
/// a temporary directory beside `dest` and renames that into place. A mismatch exits 3 before
/// anything is unpacked; an interruption leaves only a `.sparkboot-dl.*` directory, which never
/// looks installed because the marker is written before the final rename.
pub fn download_unpack(
    sha512: &str,
    dest: &str,
    owner: &str,
    group: &str,
    from_stdin: bool,
) -> String {
    // The URL arrives on stdin, not in this script: a presigned URL is a credential, and a
    // script or argv is readable by every user of the node through /proc while it runs.
    let fetch = if from_stdin {
        "url=pushed; cat > \"$tmp/archive\"".to_string()
    } else {
        "IFS= read -r url\nif command -v curl >/dev/null 2>&1; then printf 'url = \"%s\"\\n' \"$url\" | curl -fsSL --retry 3 -o \"$tmp/archive\" -K -; else printf '%s\\n' \"$url\" | wget -q -O \"$tmp/archive\" -i -; fi".to_string()
    };
    format!(
        r#"set -e
dest={dest}; parent=$(dirname "$dest"); mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.sparkboot-dl.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
{fetch}
actual=$(sha512sum "$tmp/archive" | cut -d' ' -f1)
if [ "$actual" != {sha} ]; then echo "checksum mismatch for $url: expected "{sha}", got $actual; nothing was installed" >&2; exit 3; fi
mkdir "$tmp/unpack"; tar -xzf "$tmp/archive" -C "$tmp/unpack" --strip-components=1 --no-same-owner
chown -R {owner}:{group} "$tmp/unpack"
printf '%s\n' {sha} > "$tmp/unpack/.sparkboot-sha512"
if [ -e "$dest" ]; then mv "$dest" "$tmp/previous"; fi
mv "$tmp/unpack" "$dest""#,
        dest = quote(dest),
        sha = quote(sha512),
        owner = quote(owner),
        group = quote(group),
    )
}

/// Replaces `user`'s authorized_keys with stdin, creating ~/.ssh with safe modes.
pub fn write_authorized_keys(user: &str) -> String {
    format!(
        r#"set -e; umask 077
h=$(getent passwd {u} | cut -d: -f6); [ -n "$h" ] || {{ echo "user "{u}" does not exist" >&2; exit 1; }}
g=$(id -gn {u}); mkdir -p "$h/.ssh"; chown {u}:"$g" "$h/.ssh"; chmod 700 "$h/.ssh"
cat > "$h/.ssh/authorized_keys.sparkboot-tmp"; chown {u}:"$g" "$h/.ssh/authorized_keys.sparkboot-tmp"
chmod 600 "$h/.ssh/authorized_keys.sparkboot-tmp"; mv -f "$h/.ssh/authorized_keys.sparkboot-tmp" "$h/.ssh/authorized_keys""#,
        u = quote(user)
    )
}

/// Runs a start command detached from the SSH channel, then waits until the pidfile names a
/// live process (or reports the start command's output and fails).
pub fn start_service(
    user: &str,
    start: &str,
    pidfile: &str,
    cmdline_match: Option<&str>,
) -> String {
    format!(
        r#"{PID_FN}
out=$(mktemp)
if ! ( {cmd} ) </dev/null >"$out" 2>&1; then cat "$out" >&2; rm -f "$out"; exit 1; fi
i=0; while [ $i -lt 100 ]; do if sb_alive {pf} {m}; then rm -f "$out"; exit 0; fi; sleep 0.1; i=$((i+1)); done
cat "$out" >&2; rm -f "$out"; echo "started, but "{pf}" names no live process after 10s" >&2; exit 1"#,
        cmd = as_user(user, start),
        pf = quote(pidfile),
        m = quote(cmdline_match.unwrap_or_default()),
    )
}

pub fn restart_service(
    user: &str,
    stop: &str,
    start: &str,
    pidfile: &str,
    cmdline_match: Option<&str>,
) -> String {
    format!(
        "( {stop} ) </dev/null >/dev/null 2>&1 || true\n{start}",
        stop = as_user(user, stop),
        start = start_service(user, start, pidfile, cmdline_match)
    )
}

pub fn systemd_start(unit: &str) -> String {
    format!(
        "systemctl daemon-reload && systemctl enable --now {}",
        quote(unit)
    )
}

pub fn systemd_restart(unit: &str) -> String {
    format!(
        "systemctl daemon-reload && systemctl restart {}",
        quote(unit)
    )
}

/// `sparkboot status` on one node: the installed Spark and whether its daemon runs.
/// Prints `version=<dir the link points at>` and `running=<yes|no>`.
pub fn spark_status(pidfile: &str, cmdline_match: &str) -> String {
    format!(
        "{PID_FN}\necho \"version=$(basename \"$(readlink /opt/spark 2>/dev/null)\")\"\nif sb_alive {} {}; then echo running=yes; else echo running=no; fi",
        quote(pidfile),
        quote(cmdline_match)
    )
}

/// A role's command step, run as `user`.
pub fn command(user: &str, run: &str) -> String {
    as_user(user, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_verifies_before_unpacking() {
        let s = download_unpack("abc", "/opt/spark-3.5.7", "root", "root", false);
        let verify = s.find("sha512sum").expect("verifies");
        let unpack = s.find("tar -xzf").expect("unpacks");
        let rename = s.find("mv \"$tmp/unpack\" \"$dest\"").expect("renames");
        assert!(verify < unpack && unpack < rename);
        assert!(s.contains("exit 3"));
        assert!(
            s.contains("IFS= read -r url"),
            "the URL comes on stdin, never in the script"
        );
        assert!(
            download_unpack("abc", "/d", "root", "root", true).contains("cat > \"$tmp/archive\"")
        );
    }

    #[test]
    fn user_and_package_words_are_quoted() {
        assert_eq!(
            add_user("spark", Some("spark"), true, None, Some("/sbin/nologin")),
            "useradd --system --gid spark --no-create-home --shell /sbin/nologin spark"
        );
        assert!(install_packages("apt", &["a b".into()]).ends_with("'a b'"));
    }

    #[test]
    fn start_detaches_and_checks_the_pidfile() {
        let s = start_service("spark", "run it", "/run/x.pid", Some("Master"));
        assert!(s.contains("runuser -u spark -- sh -c 'run it'"), "{s}");
        assert!(s.contains("</dev/null"));
        assert!(s.contains("sb_alive /run/x.pid Master"));
    }
}
