//! Scripts that make changes. Each takes plain words and quotes them; content and secrets are
//! never part of a script, they arrive on stdin.

use super::{as_user, guard, join, quote};

use super::PID_FN;

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

/// Refuses to act on a path that is itself a symlink (`$2` in a guarded body).
const NOT_A_LINK: &str = "if [ -L \"$2\" ]; then echo \"sparkboot: $2 is a symlink; refusing to follow it (move it away and run again)\" >&2; exit 1; fi";

pub fn ensure_directory(path: &str, owner: &str, group: &str, mode: &str) -> String {
    let body = format!(
        "set -e; {NOT_A_LINK}; mkdir -p -- \"$2\"; {own}; chmod {m} -- \"$2\"",
        own = guard::own("\"$2\"", owner, group),
        m = quote(mode)
    );
    guard::as_controller("", &quote(path), Some(owner), &body)
}

pub fn set_owner_mode(path: &str, owner: &str, group: &str, mode: &str) -> String {
    let body = format!(
        "set -e; {NOT_A_LINK}; {own}; chmod {m} -- \"$2\"",
        own = guard::own("\"$2\"", owner, group),
        m = quote(mode)
    );
    guard::as_controller("", &quote(path), Some(owner), &body)
}

/// Writes stdin to `path` atomically with the given owner, group and mode: a temporary file in
/// the same directory (created fresh, never through an existing name), then rename, so a reader
/// never sees half a file. The parent directory must exist (a directory step).
pub fn write_file(path: &str, owner: &str, group: &str, mode: &str) -> String {
    let body = format!(
        "set -e; umask 077; t=\"$2.sparkboot-tmp\"; rm -f -- \"$t\"; (set -C; cat > \"$t\"); {own}; chmod {m} -- \"$t\"; mv -f -- \"$t\" \"$2\"",
        own = guard::own("\"$t\"", owner, group),
        m = quote(mode)
    );
    guard::as_controller("", &quote(path), Some(owner), &body)
}

/// Writes stdin to `path` like [`write_file`], but renames it into place only when its SHA-256
/// is `sha256`: a stream cut short (a dropped session) or altered never lands under the final
/// name. A mismatch exits 3 and leaves the old file, if any, untouched. Then, and only then,
/// `<path>.sparkboot-sha256` records the checksum (0644, atomically), which later probes read
/// instead of hashing the file.
pub fn write_verified_file(
    path: &str,
    owner: &str,
    group: &str,
    mode: &str,
    sha256: &str,
) -> String {
    let body = write_verified_body(owner, group, mode, sha256);
    guard::as_controller("", &quote(path), Some(owner), &body)
}

/// The body of [`write_verified_file`], run by whoever controls the path's directory (`$1` is
/// that user, `$2` the path).
fn write_verified_body(owner: &str, group: &str, mode: &str, sha256: &str) -> String {
    format!(
        "set -e; umask 077; t=\"$2.sparkboot-tmp\"; rm -f -- \"$t\"; (set -C; cat > \"$t\"); \
         actual=$(sha256sum < \"$t\" | cut -d' ' -f1); \
         if [ \"$actual\" != {sha} ]; then rm -f -- \"$t\"; echo \"sparkboot: $2: received sha256 $actual, expected \"{sha}\"; nothing was installed\" >&2; exit 3; fi; \
         {own}; chmod {m} -- \"$t\"; mv -f -- \"$t\" \"$2\"; \
         k=\"$2.sparkboot-sha256\"; rm -f -- \"$k.tmp\"; (set -C; printf '%s\\n' {sha} > \"$k.tmp\"); \
         {own_k}; chmod 0644 -- \"$k.tmp\"; mv -f -- \"$k.tmp\" \"$k\"",
        own_k = guard::own("\"$k.tmp\"", owner, group),
        sha = quote(sha256),
        own = guard::own("\"$t\"", owner, group),
        m = quote(mode)
    )
}

/// Points `path` at `target` atomically (a new link renamed over the old one).
pub fn symlink(path: &str, target: &str) -> String {
    let body = format!(
        "set -e; t=\"$2.sparkboot-tmp\"; rm -f -- \"$t\"; ln -s -- {t} \"$t\"; mv -T -- \"$t\" \"$2\"",
        t = quote(target)
    );
    guard::as_controller("", &quote(path), None, &body)
}

/// Downloads (or, with `from_stdin`, receives) an archive, verifies its SHA-512, unpacks it into
/// a temporary directory beside `dest` and renames that into place. A mismatch exits 3 before
/// anything is unpacked; an interruption leaves only a `.sparkboot-dl.*` directory, which never
/// looks installed because the marker is written before the final rename. Unpacked files lose
/// setuid/setgid bits and group/world write, and belong to `owner:group`.
pub fn download_unpack(
    sha512: &str,
    dest: &str,
    owner: &str,
    group: &str,
    from_stdin: bool,
) -> String {
    let body = download_body(sha512, owner, group, from_stdin);
    guard::as_controller("", &quote(dest), Some(owner), &body)
}

/// The body of [`download_unpack`], run by whoever controls `dest`'s directory (`$2` is dest).
///
/// A run killed mid-download (SIGKILL skips the trap) leaves its temporary directory behind;
/// the next download into the same directory removes it first. Runs that change a cluster hold
/// the cluster lock, so no other run's download is in progress there.
fn download_body(sha512: &str, owner: &str, group: &str, from_stdin: bool) -> String {
    // The check prefers openssl: its SHA-512 is twice as fast as coreutils' (0.6 against 1.2 s
    // of CPU for Spark's 316 MB archive), and sha512sum stays the fallback.
    // The URL arrives on stdin, not in this script: a presigned URL is a credential, and a
    // script or argv is readable by every user of the node through /proc while it runs. An
    // https URL may not be redirected to plain http (curl's --proto-redir; wget cannot say so,
    // so it follows no redirect at all for https).
    //
    // While it downloads, a background loop prints `sparkboot-progress <bytes> <total>` on
    // stdout once a second (the controller shows it on the host's line): the size of the file
    // so far, and the last Content-Length among the response headers curl saved beside it (0
    // when unknown, as with wget); once the download is complete, one last line whose total is
    // the size when no header gave one, so the controller knows it is done. Only those two numbers are printed, never a header or the
    // URL. It rides on this one command (no round trip is added) and stops when the download
    // ends, when this script exits (its trap), or when this shell is gone; its `sleep` does not
    // hold stdout, so the command's output ends with the script.
    let fetch = if from_stdin {
        "url=pushed; cat > \"$tmp/archive\"".to_string()
    } else {
        format!(
            r#"IFS= read -r url
case "$url" in https://*) redir='=https'; wmax=0;; *) redir='=http,https'; wmax=20;; esac
sparkboot_report() {{ n=$(stat -c %s -- "$tmp/archive" 2>/dev/null) || n=0; t=$(tr 'A-Z' 'a-z' < "$tmp/headers" 2>/dev/null | sed -n 's/^content-length:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | tail -n 1); printf '{marker} %s %s\n' "$n" "${{t:-$1}}"; }}
sparkboot_progress() {{ while kill -0 "$1" 2>/dev/null; do sleep 1 </dev/null >/dev/null 2>&1; sparkboot_report 0; done; }}
sparkboot_progress $$ & poller=$!; trap 'kill "$poller" 2>/dev/null || :; rm -rf -- "$tmp"' EXIT
if command -v curl >/dev/null 2>&1; then printf 'url = "%s"\n' "$url" | curl -fsSL --retry 3 --proto '=http,https' --proto-redir "$redir" -D "$tmp/headers" -o "$tmp/archive" -K -; else printf '%s\n' "$url" | wget -q --max-redirect="$wmax" -O "$tmp/archive" -i -; fi
kill "$poller" 2>/dev/null || :; sparkboot_report "$(stat -c %s -- "$tmp/archive" 2>/dev/null || echo 0)""#,
            marker = crate::report::transfer::MARKER
        )
    };
    format!(
        r#"set -e
dest=$2; parent=$(dirname -- "$dest"); mkdir -p -- "$parent"
for old in "$parent"/.sparkboot-dl.*; do if [ -d "$old" ] && [ ! -L "$old" ]; then rm -rf -- "$old"; fi; done
tmp=$(mktemp -d "$parent/.sparkboot-dl.XXXXXX"); trap 'rm -rf -- "$tmp"' EXIT
{fetch}
actual=; if command -v openssl >/dev/null 2>&1; then actual=$(openssl dgst -sha512 -r "$tmp/archive" 2>/dev/null | cut -d' ' -f1); fi
[ -n "$actual" ] || actual=$(sha512sum "$tmp/archive" | cut -d' ' -f1)
if [ "$actual" != {sha} ]; then echo "checksum mismatch for $url: expected "{sha}", got $actual; nothing was installed" >&2; exit 3; fi
mkdir "$tmp/unpack"; tar -xzf "$tmp/archive" -C "$tmp/unpack" --strip-components=1 --no-same-owner --no-same-permissions
chmod -R ug-s,go-w -- "$tmp/unpack"
if [ "$1" = root ]; then chown -R -h -- {owner}:{group} "$tmp/unpack"; else chgrp -R -h -- {group} "$tmp/unpack"; fi
printf '%s\n' {sha} > "$tmp/unpack/.sparkboot-sha512"
if [ -e "$dest" ] || [ -L "$dest" ]; then mv -- "$dest" "$tmp/previous"; fi
mv -- "$tmp/unpack" "$dest""#,
        sha = quote(sha512),
        owner = quote(owner),
        group = quote(group),
    )
}

/// Replaces `user`'s authorized_keys with stdin, creating ~/.ssh (0700) as needed. The home
/// belongs to the user, so the work runs as the user (see `guard`): a `~/.ssh` or temporary
/// name planted as a link gains the user nothing.
pub fn write_authorized_keys(user: &str) -> String {
    let prelude = format!(
        "h=$(getent passwd {u} | cut -d: -f6); [ -n \"$h\" ] || {{ echo \"sparkboot: user \"{u}\" does not exist\" >&2; exit 1; }}\n",
        u = quote(user)
    );
    let body = format!(
        r#"set -e; umask 077; d=${{2%/*}}; u={u}
if [ -L "$d" ]; then echo "sparkboot: $d is a symlink; refusing to follow it (remove it and run again)" >&2; exit 1; fi
mkdir -p -- "$d"; if [ "$1" = root ]; then chown -h -- "$u:$(id -gn -- "$u")" "$d"; fi; chmod 700 -- "$d"
t="$2.sparkboot-tmp"; rm -f -- "$t"; (set -C; cat > "$t")
if [ "$1" = root ]; then chown -h -- "$u:$(id -gn -- "$u")" "$t"; fi; chmod 600 -- "$t"; mv -f -- "$t" "$2""#,
        u = quote(user)
    );
    guard::as_controller(&prelude, "\"$h/.ssh/authorized_keys\"", Some(user), &body)
}

/// Prints a file for a later phase (`present` and base64, or `absent`), read by whoever
/// controls its directories; see `facts::parse_content`.
pub fn read_export(path: &str) -> String {
    format!("{}{}sb_read {}", guard::CTL_FN, guard::READ_FN, quote(path))
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
i=0; while [ $i -lt 100 ]; do if sb_pid {pf} {m} >/dev/null; then rm -f "$out"; exit 0; fi; sleep 0.1; i=$((i+1)); done
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
        "{stop}\n{start}",
        stop = stop_service(user, stop, pidfile, cmdline_match),
        start = start_service(user, start, pidfile, cmdline_match)
    )
}

/// Seconds a stopped daemon gets to exit before SIGKILL (systemd's TimeoutStopSec plays this
/// part where it runs).
pub const STOP_GRACE_SECS: u32 = 30;

/// Runs a stop command, then waits until the process the pidfile named has exited: Spark's
/// `spark-daemon.sh stop` sends SIGTERM and returns at once, and a JVM running its shutdown
/// hooks on a busy node can still hold its port when the next start (or the next converge's
/// check) comes. After `STOP_GRACE_SECS` it is killed, as its own user: the pid came from a
/// file that user controls, so root never signals it.
pub fn stop_service(user: &str, stop: &str, pidfile: &str, cmdline_match: Option<&str>) -> String {
    stop_service_within(user, stop, pidfile, cmdline_match, STOP_GRACE_SECS)
}

fn stop_service_within(
    user: &str,
    stop: &str,
    pidfile: &str,
    cmdline_match: Option<&str>,
    grace_secs: u32,
) -> String {
    let m = quote(cmdline_match.unwrap_or_default());
    let ticks = grace_secs * 10;
    format!(
        r#"{PID_FN}
old=$(sb_pid {pf} {m}) && old=${{old#running }} || old=
( {cmd} ) </dev/null >/dev/null 2>&1 || true
if [ -n "$old" ]; then
i=0; while [ $i -lt {ticks} ] && sb_live "$old" {m} >/dev/null; do sleep 0.1; i=$((i+1)); done
if sb_live "$old" {m} >/dev/null; then echo "sparkboot: pid $old did not exit {grace_secs} s after its stop command; killing it" >&2; {kill}; fi
i=0; while [ $i -lt 50 ] && sb_live "$old" {m} >/dev/null; do sleep 0.1; i=$((i+1)); done
if sb_live "$old" {m} >/dev/null; then echo "sparkboot: pid $old is still running after SIGKILL" >&2; exit 1; fi
fi"#,
        pf = quote(pidfile),
        cmd = as_user(user, stop),
        kill = if user == "root" {
            "kill -KILL \"$old\"".to_string()
        } else {
            format!("runuser -u {} -- kill -KILL \"$old\"", quote(user))
        },
    )
}

/// Stops a unit and keeps it from starting at boot.
pub fn systemd_stop(unit: &str) -> String {
    format!("systemctl disable --now {}", quote(unit))
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

/// A role's command step, run as `user`.
pub fn command(user: &str, run: &str) -> String {
    as_user(user, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node side of a download's progress, run here with a stand-in `curl` that writes
    /// its headers and then the body slowly: the script prints progress lines with the bytes
    /// so far and the Content-Length, nothing of the URL, and ends as soon as it is done (the
    /// progress loop holds no output open).
    /// Starts `body` as a daemon with a pidfile, runs the stop script, and returns how long the
    /// script took, its stderr, and whether the daemon had exited when the script returned.
    fn stop_a_daemon(body: &str, grace_secs: u32) -> (f64, String, bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("demo.pid");
        let marker = format!("sbstopdemo{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{body} # {marker}"))
            .spawn()
            .expect("start the daemon");
        std::fs::write(&pidfile, child.id().to_string()).expect("pidfile");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pf = pidfile.display().to_string();
        let stop = format!("kill $(cat {})", quote(&pf));
        let script = stop_service_within("root", &stop, &pf, Some(&marker), grace_secs);
        let started = std::time::Instant::now();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run the stop script");
        let took = started.elapsed().as_secs_f64();
        let exited = child.try_wait().expect("try_wait").is_some();
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            took,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            exited,
        )
    }

    /// A daemon that takes a second and a half to exit after SIGTERM (a JVM running its shutdown
    /// hooks): the stop returns only once it has exited, without killing it.
    #[test]
    fn a_stop_waits_until_the_daemon_has_exited() {
        let (took, stderr, exited) = stop_a_daemon(
            "trap 'sleep 1.5; exit 0' TERM; while :; do sleep 0.1; done",
            10,
        );
        assert!(exited, "the stop returned while the daemon still ran");
        assert!(took >= 1.3, "returned after {took:.2} s");
        assert!(!stderr.contains("killing"), "{stderr}");
    }

    /// A daemon that ignores SIGTERM is killed once the grace period is over.
    #[test]
    fn a_daemon_that_ignores_its_stop_is_killed_after_the_grace_period() {
        let (took, stderr, exited) = stop_a_daemon("trap '' TERM; while :; do sleep 0.1; done", 1);
        assert!(exited, "the daemon survived its stop");
        assert!((1.0..8.0).contains(&took), "took {took:.2} s");
        assert!(
            stderr.contains("did not exit 1 s after its stop command; killing it"),
            "{stderr}"
        );
    }

    /// The node side of a pushed file, run here: the right bytes land under the final name with
    /// the mode asked and the marker after them; bytes that do not match (a cut stream) exit 3
    /// and leave the installed file, its marker and no temporary file behind.
    #[test]
    fn a_pushed_file_is_renamed_into_place_only_when_its_sha256_matches() {
        use sha2::Digest;
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("x.jar");
        let id = |flag: &str| {
            let out = std::process::Command::new("id")
                .arg(flag)
                .output()
                .expect("id");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let (user, group) = (id("-un"), id("-gn"));
        let run = |bytes: &[u8], sha: &str| {
            let body = write_verified_body(&user, &group, "0644", sha);
            let mut child = std::process::Command::new("sh")
                .args([
                    "-c",
                    &body,
                    "sh",
                    if user == "root" { "root" } else { &user },
                ])
                .arg(&dest)
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(bytes).expect("stdin");
            }
            child.wait_with_output().expect("wait")
        };
        let good = hex::encode(sha2::Sha256::digest(b"jar v1"));
        let out = run(b"jar v1", &good);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&dest).expect("installed"), b"jar v1");
        let mode = std::fs::metadata(&dest).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let marker = dir.path().join("x.jar.sparkboot-sha256");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("marker"),
            format!("{good}\n")
        );
        let other = hex::encode(sha2::Sha256::digest(b"jar v2"));
        let out = run(b"jar v2, cut sh", &other);
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&other) && err.contains("nothing was installed"),
            "{err}"
        );
        assert_eq!(std::fs::read(&dest).expect("kept"), b"jar v1");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("marker"),
            format!("{good}\n")
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }

    #[test]
    fn a_download_reports_its_progress_on_stdout_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let curl = bin.join("curl");
        std::fs::write(
            &curl,
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -D) h=$2; shift;; -o) o=$2; shift;; esac; shift; done\n\
             cat >/dev/null\nprintf 'HTTP/1.1 200 OK\\r\\nContent-Length: 3000000\\r\\n\\r\\n' > \"$h\"\n\
             head -c 1000000 /dev/zero > \"$o\"; sleep 1.3; head -c 1000000 /dev/zero >> \"$o\"; sleep 1.3\n\
             head -c 1000000 /dev/zero >> \"$o\"\n",
        )
        .expect("write curl");
        std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let dest = dir.path().join("opt/spark");
        let body = download_body(&"a".repeat(128), "root", "root", false);
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new("sh")
            .args(["-c", &body, "sh", "root"])
            .arg(&dest)
            .env("PATH", path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(b"https://bucket.example/spark.tgz?X-Amz-Signature=SECRET\n")
                .expect("url");
        }
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The bytes are zeros, not the archive: the checksum check refuses them.
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "it ended promptly"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines.len() >= 2, "a line a second: {stdout}");
        let mut last = 0;
        for line in &lines {
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(words.len(), 3, "{line}");
            assert_eq!(words[0], "sparkboot-progress");
            let done: u64 = words[1].parse().expect("bytes");
            assert!(done >= last && done <= 3_000_000, "{line}");
            last = done;
            assert_eq!(words[2], "3000000", "the Content-Length: {line}");
        }
        assert_eq!(
            lines.last().copied(),
            Some("sparkboot-progress 3000000 3000000"),
            "a last line once the download is complete: {stdout}"
        );
        assert!(
            !stdout.contains("SECRET") && !stdout.contains("bucket"),
            "{stdout}"
        );
        let mut parser = crate::report::transfer::ProgressLines::default();
        assert!(
            parser.feed(stdout.as_bytes()).is_some(),
            "the controller reads them"
        );
    }

    #[test]
    fn download_verifies_before_unpacking() {
        let s = download_body("abc", "root", "root", false);
        let verify = s.find("openssl dgst -sha512").expect("verifies");
        assert!(verify < s.find("sha512sum").expect("falls back"));
        let unpack = s.find("tar -xzf").expect("unpacks");
        let strip = s.find("chmod -R ug-s,go-w").expect("drops setuid bits");
        let rename = s.find("mv -- \"$tmp/unpack\" \"$dest\"").expect("renames");
        assert!(verify < unpack && unpack < strip && strip < rename);
        assert!(s.contains("exit 3"));
        assert!(
            s.contains("IFS= read -r url"),
            "the URL comes on stdin, never in the script"
        );
        assert!(
            s.contains("--proto-redir \"$redir\""),
            "no https to http redirect"
        );
        assert!(download_body("abc", "root", "root", true).contains("cat > \"$tmp/archive\""));
        let guarded = download_unpack("abc", "/opt/spark-3.5.7", "root", "root", false);
        assert!(guarded.contains("sb_path=/opt/spark-3.5.7"), "{guarded}");
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
        assert!(s.contains("sb_pid /run/x.pid Master"));
    }
}
