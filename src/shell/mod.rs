//! Every shell string sparkboot sends to a host is built in this module tree, and every
//! argument is quoted: `probe` builds the composite fact probe, `ops` the scripts that make
//! changes, and this file the quoting and privilege wrapping they share.
//!
//! Keeping this in one module makes quoting reviewable in one sitting: callers pass words, never
//! pre-joined command lines, and anything secret travels on stdin rather than in argv (argv is
//! world-readable through /proc on the remote host).

pub mod guard;
pub mod harden;
pub mod lock;
pub mod ops;
pub mod probe;
pub mod spark;
pub mod submit;

/// Quotes one word for a POSIX shell. Words containing NUL cannot be quoted and are replaced by
/// an expression that fails loudly, so a bad value never runs as something else.
pub fn quote(word: &str) -> String {
    match shlex::try_quote(word) {
        Ok(q) => q.into_owned(),
        Err(_) => "\"$(echo 'sparkboot: refused a word containing NUL' >&2; exit 97)\"".to_string(),
    }
}

/// Joins words into one command line, quoting each.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(w.as_ref()));
    }
    out
}

/// How a script is run on the host: directly when the login user is root, otherwise through
/// non-interactive sudo (which fails fast instead of hanging on a password prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    AsLogin,
    Root,
}

/// Wraps a script so the remote login shell runs it with `sh -c`, optionally via sudo.
/// `login_is_root` avoids sudo when it is not needed (a bare container may not have it).
pub fn wrap(script: &str, privilege: Privilege, login_is_root: bool) -> String {
    let sh = join(&["sh", "-c", script]);
    match privilege {
        Privilege::Root if !login_is_root => format!("sudo -n -- {sh}"),
        _ => sh,
    }
}

/// Builds a script that runs `command` as `user` (for daemons that must not run as root).
pub fn as_user(user: &str, command: &str) -> String {
    if user == "root" {
        return command.to_string();
    }
    // runuser exists on every util-linux system and needs no PAM session or password.
    format!("runuser -u {} -- sh -c {}", quote(user), quote(command))
}

/// `sb_pid PIDFILE [MATCH]` prints `running PID` when the pidfile names a live, non-zombie
/// process whose command line contains MATCH, else `stopped` (and returns 1). A pidfile that is
/// a link or not a regular file is not read: the pid directory belongs to the daemon's user.
/// `sb_live PID [MATCH]` answers the same for a PID already read (a stop waits on it after the
/// daemon's own script removed the pidfile).
///
/// Builtins only (it runs for every daemon in every probe): the shell's `read` drops the NULs
/// between a command line's arguments, so MATCH is compared with its spaces removed too.
pub const PID_FN: &str = r#"sb_live() { pid=$1; case "$pid" in ''|*[!0-9]*) echo stopped; return 1;; esac
sb_st=; if [ -r "/proc/$pid/status" ]; then while read -r sb_k sb_st sb_rest; do [ "$sb_k" = State: ] && break; sb_st=; done < "/proc/$pid/status"; fi
sb_m=$2; while :; do case $sb_m in *' '*) sb_m=${sb_m%%' '*}${sb_m#*' '};; *) break;; esac; done
if [ -n "$sb_st" ] && [ "$sb_st" != Z ] && { [ -z "$sb_m" ] || { sb_cmd=; IFS= read -r sb_cmd < "/proc/$pid/cmdline"; case $sb_cmd in *"$sb_m"*) true;; *) false;; esac; }; } 2>/dev/null; then echo "running $pid"; else echo stopped; return 1; fi; }
sb_pid() { pid=; if [ -f "$1" ] && [ ! -L "$1" ]; then read -r pid < "$1" || true; fi; sb_live "$pid" "$2"; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_words_with_spaces_and_quotes() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(join(&["echo", "it's", "$HOME"]), "echo \"it's\" '$HOME'");
    }

    #[test]
    fn wrap_uses_sudo_only_for_non_root_logins() {
        assert_eq!(wrap("id -u", Privilege::Root, true), "sh -c 'id -u'");
        assert_eq!(
            wrap("id -u", Privilege::Root, false),
            "sudo -n -- sh -c 'id -u'"
        );
        assert_eq!(wrap("id -u", Privilege::AsLogin, false), "sh -c 'id -u'");
    }

    #[test]
    fn nul_never_becomes_a_command() {
        assert!(quote("a\0b").contains("exit 97"));
    }
}
