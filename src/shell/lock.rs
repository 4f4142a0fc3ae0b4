//! The cluster lock's scripts: two runs against one cluster (two operators, or `watch` and a
//! person, on any machines) must not change it at once, so a run that changes anything holds
//! an exclusive `flock` on the master for as long as its SSH session to the master lives.
//!
//! The lock lives in a root-owned directory (`/var/lib/sparkboot`, mode 0700) that no job can
//! reach. `acquire` takes the lock with `flock -w`, then hands the locked descriptor to a small
//! background holder that exits when the run's sshd session process does (the run ended, or its
//! controller died) or when `release` stops it. The kernel drops the lock with the holder's last
//! descriptor, so a holder that died never blocks anyone: that is the safe take-over. A
//! generation counter, bumped at each acquisition, tells a run whether anyone else acquired the
//! lock between its probe (which only observes, see `observe`) and its own acquisition.

use super::quote;

/// Root-owned, 0700: only root on the master reads or writes here.
pub const LOCK_DIR: &str = "/var/lib/sparkboot";

/// Checks the lock directory is root's and not a link, creating it if absent. Prints
/// `error ...` and fails otherwise.
const DIR_FN: &str = r#"sb_lockdir() { d=/var/lib/sparkboot; if [ -L "$d" ]; then echo "error $d is a symbolic link; remove it (it must be a directory owned by root)"; return 1; fi; mkdir -p "$d" || { echo "error cannot create $d"; return 1; }; if [ "$(stat -c %u "$d")" != 0 ]; then echo "error $d is not owned by root; remove it or chown root:root it"; return 1; fi; chmod 700 "$d"; }
"#;

/// Read-only: `free GENERATION`, `held GENERATION` + the holder's lines, or `none` when flock
/// is missing. Taking and dropping the lock at once is how flock(1) tests it; an acquirer waits
/// at least a few seconds, so this never makes one fail.
pub fn observe() -> String {
    // Part of every master probe, so one process: flock(1) locks the shell's fd 9 and exits,
    // and the shell drops the lock when the group closes that fd.
    r#"d=/var/lib/sparkboot; g=; if [ -r "$d/generation" ]; then read -r g < "$d/generation"; fi; g=${g:-0}; if ! command -v flock >/dev/null 2>&1; then echo none; elif [ ! -f "$d/lock" ] || [ -L "$d/lock" ] || { flock -n 9; } 9< "$d/lock" 2>/dev/null; then echo "free $g"; else echo "held $g"; cat "$d/holder" 2>/dev/null; fi"#.to_string()
}

/// Takes the lock, waiting up to `wait_secs`; prints `acquired GENERATION` or `busy` + the
/// holder's lines, or `error ...`. `holder` is the lines written for whoever waits on us (`key=
/// value`, one per line, with `token=` first). The holder process watches the nearest sshd
/// ancestor (this run's session) by pid and start time, so pid reuse cannot keep it alive.
pub fn acquire(wait_secs: u64, holder: &str) -> String {
    format!(
        r#"{DIR_FN}sb_lockdir || exit 1
d={dir}
command -v flock >/dev/null 2>&1 || {{ echo "error flock (util-linux) is not installed on the master"; exit 1; }}
p=$$; s=
while [ "$p" -gt 1 ] 2>/dev/null; do case "$(cat "/proc/$p/comm" 2>/dev/null)" in sshd*) s=$p; break;; esac; p=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2); [ -n "$p" ] || break; done
[ -n "$s" ] || {{ echo "error no sshd session process above pid $$ to tie the lock to"; exit 1; }}
st=$(sed 's/^.*) //' "/proc/$s/stat" | cut -d' ' -f20)
umask 077
exec 9>>"$d/lock"
if ! flock -w {wait} 9; then echo busy; cat "$d/holder" 2>/dev/null; exit 0; fi
g=$(( $(cat "$d/generation" 2>/dev/null || echo 0) + 1 ))
echo "$g" > "$d/generation.tmp" && mv -f "$d/generation.tmp" "$d/generation"
printf '%s\n' {holder} > "$d/holder.tmp" && mv -f "$d/holder.tmp" "$d/holder"
( while [ "$(sed 's/^.*) //' "/proc/$s/stat" 2>/dev/null | cut -d' ' -f20)" = "$st" ]; do sleep 0.5; done ) </dev/null >/dev/null 2>&1 &
echo $! > "$d/holder.pid"
echo "acquired $g"
"#,
        dir = quote(LOCK_DIR),
        wait = wait_secs.max(MIN_WAIT_SECS),
        holder = quote(holder),
    )
}

/// Even with `--wait 0`, an acquisition waits this long: a run that just ended releases the
/// lock within half a second (its holder polls the session), and a concurrent `observe` holds it
/// for an instant.
pub const MIN_WAIT_SECS: u64 = 3;

/// Stops this run's holder (matched by its token, so another run's is never touched).
pub fn release(token: &str) -> String {
    format!(
        r#"d={dir}; if grep -qxF {line} "$d/holder" 2>/dev/null; then p=$(cat "$d/holder.pid" 2>/dev/null); case "$p" in ''|*[!0-9]*) ;; *) kill "$p" 2>/dev/null;; esac; rm -f "$d/holder.pid"; fi; echo released"#,
        dir = quote(LOCK_DIR),
        line = quote(&format!("token={token}")),
    )
}

/// What the probe saw of the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Free {
        generation: u64,
    },
    Held {
        generation: u64,
        holder: Holder,
    },
    /// flock(1) is not on the master: acquiring will fail with a clear error.
    Unsupported,
}

/// What an acquisition answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquired {
    Ok { generation: u64 },
    Busy(Holder),
    Error(String),
}

/// Who holds the lock, from its `key=value` lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Holder {
    pub token: String,
    pub command: String,
    pub host: String,
    pub pid: String,
    pub since: String,
}

impl Holder {
    pub fn parse(lines: &str) -> Holder {
        let mut h = Holder::default();
        for line in lines.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            match k.trim() {
                "token" => h.token = v,
                "command" => h.command = v,
                "host" => h.host = v,
                "pid" => h.pid = v,
                "since" => h.since = v,
                _ => {}
            }
        }
        h
    }

    /// The lines `acquire` writes; values are single-line (newlines become spaces).
    pub fn lines(&self) -> String {
        let one = |s: &str| s.replace(['\n', '\r'], " ");
        format!(
            "token={}\ncommand={}\nhost={}\npid={}\nsince={}",
            one(&self.token),
            one(&self.command),
            one(&self.host),
            one(&self.pid),
            one(&self.since)
        )
    }

    /// "sparkboot converge (pid 1234 on ops-laptop, since 2026-12-03 15:50:01 UTC)".
    pub fn describe(&self) -> String {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "sparkboot {} (pid {} on {}, since {})",
            or(&self.command, "run"),
            or(&self.pid, "?"),
            or(&self.host, "an unknown host"),
            or(&self.since, "an unknown time")
        )
    }
}

fn generation(word: Option<&str>) -> Result<u64, String> {
    word.unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| format!("bad lock generation {word:?}"))
}

pub fn parse_observed(out: &str) -> Result<Observed, String> {
    let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
    let mut words = first.split_whitespace();
    match words.next() {
        Some("free") => Ok(Observed::Free {
            generation: generation(words.next())?,
        }),
        Some("held") => Ok(Observed::Held {
            generation: generation(words.next())?,
            holder: Holder::parse(rest),
        }),
        Some("none") => Ok(Observed::Unsupported),
        _ => Err(format!("unexpected lock state {:?}", first.trim())),
    }
}

pub fn parse_acquired(out: &str) -> Acquired {
    let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
    let mut words = first.split_whitespace();
    match words.next() {
        Some("acquired") => match generation(words.next()) {
            Ok(generation) => Acquired::Ok { generation },
            Err(e) => Acquired::Error(e),
        },
        Some("busy") => Acquired::Busy(Holder::parse(rest)),
        Some("error") => Acquired::Error(first.trim_start_matches("error").trim().to_string()),
        _ => Acquired::Error(format!("unexpected answer {:?}", first.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse() {
        assert_eq!(
            parse_observed("free 7\n"),
            Ok(Observed::Free { generation: 7 })
        );
        let held = parse_observed("held 3\ntoken=t\ncommand=watch\nhost=ops\npid=42\nsince=x\n")
            .expect("held");
        match held {
            Observed::Held { generation, holder } => {
                assert_eq!(generation, 3);
                assert_eq!(
                    holder.describe(),
                    "sparkboot watch (pid 42 on ops, since x)"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_observed("none"), Ok(Observed::Unsupported));
        assert!(parse_observed("").is_err());
        assert!(parse_observed("free x").is_err());
        assert_eq!(
            parse_acquired("acquired 8\n"),
            Acquired::Ok { generation: 8 }
        );
        assert!(matches!(parse_acquired("busy\ntoken=a\n"), Acquired::Busy(h) if h.token == "a"));
        assert_eq!(
            parse_acquired("error flock missing\n"),
            Acquired::Error("flock missing".into())
        );
    }

    #[test]
    fn holder_lines_round_trip_and_stay_one_line_each() {
        let h = Holder {
            token: "t1".into(),
            command: "converge\nevil=1".into(),
            host: "h".into(),
            pid: "9".into(),
            since: "s".into(),
        };
        let back = Holder::parse(&h.lines());
        assert_eq!(back.command, "converge evil=1");
        assert_eq!(back.token, "t1");
    }

    #[test]
    fn scripts_quote_what_they_are_given() {
        let holder = "token=a'b\nhost=$(x)";
        let s = acquire(0, holder);
        assert!(s.contains("flock -w 3 9"), "{s}");
        assert!(
            s.contains(&format!("printf '%s\\n' {} >", quote(holder))),
            "{s}"
        );
        let r = release("a b");
        assert!(r.contains("'token=a b'"), "{r}");
    }
}
