//! Every shell string sparkboot sends to a host is built in this module tree, and every
//! argument is quoted: `probe` builds the composite fact probe, `ops` the scripts that make
//! changes, and this file the quoting and privilege wrapping they share.
//!
//! Keeping this in one module makes quoting reviewable in one sitting: callers pass words, never
//! pre-joined command lines, and anything secret travels on stdin rather than in argv (argv is
//! world-readable through /proc on the remote host).

use std::fmt::Write as _;

pub mod harden;
pub mod ops;
pub mod probe;

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

/// Writes stdin to `path` atomically with the given owner, group and mode: a temporary file in
/// the same directory, then rename, so a reader never sees half a file.
pub fn write_file_from_stdin(path: &str, owner: &str, group: &str, mode: &str) -> String {
    let tmp = format!("{path}.sparkboot-tmp");
    let mut s = String::new();
    let _ = write!(
        s,
        "set -e; umask 077; cat > {tmp}; chown {owner}:{group} {tmp}; chmod {mode} {tmp}; mv -f {tmp} {path}",
        tmp = quote(&tmp),
        owner = quote(owner),
        group = quote(group),
        mode = quote(mode),
        path = quote(path),
    );
    s
}

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

    #[test]
    fn file_write_is_atomic_and_quoted() {
        let s = write_file_from_stdin("/etc/my file", "root", "root", "0644");
        assert!(s.contains("mv -f '/etc/my file.sparkboot-tmp' '/etc/my file'"));
        assert!(s.starts_with("set -e; umask 077;"));
    }
}
