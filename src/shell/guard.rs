//! Root never writes, chowns or reads through a path that a less privileged user controls.
//!
//! A Spark job runs as `spark`, and `/var/lib/spark` is that user's home: anything root does
//! there while following links (`mkdir -p ~/.ssh; chown`, `cat > tmp; mv`) lets the job point
//! root at `/etc`. Checking for a symlink first and then acting leaves a race, so instead every
//! script that touches a path first asks who controls the directories on its way
//! ([`CTL_FN`]): if only root can change them, root acts; if one other user owns one of them,
//! the work runs as that user (`runuser`), with exactly the rights a job running as that user
//! already has, so a planted link gains nothing. A directory everyone may write, or two users
//! each owning a directory on the way, is refused.
//!
//! The walk resolves symlinks component by component (so a link's own directory is checked, not
//! only its target's) and stats every directory passed in one process. Directories writable by
//! a group are not counted as controlled by that group: Ubuntu's `/var/log` is `root:syslog
//! 0775`, and its group is a system daemon's, not a job's.

use super::quote;

/// `sb_ctl PATH` prints who controls the directories PATH passes through: `root`, or the one
/// other user who owns one of them. Fails with a sentence on stderr when everyone may write one
/// of them, when two users own them, or when an owner has no user name.
pub const CTL_FN: &str = r#"sb_ctl() {
  sb_p=$1; sb_rest=$1; sb_cur=/; sb_dirs=/; sb_links=0
  case "$sb_p" in /*) ;; *) echo "sparkboot: $sb_p is not an absolute path" >&2; return 1;; esac
  while :; do
    sb_rest=${sb_rest#"${sb_rest%%[!/]*}"}
    [ -n "$sb_rest" ] || break
    sb_c=${sb_rest%%/*}; sb_rest=${sb_rest#"$sb_c"}
    case "$sb_c" in
      .) continue;;
      ..) sb_cur=${sb_cur%/*}; [ -n "$sb_cur" ] || sb_cur=/; continue;;
    esac
    sb_next=${sb_cur%/}/$sb_c
    if [ -L "$sb_next" ]; then
      sb_links=$((sb_links + 1))
      [ "$sb_links" -le 40 ] || { echo "sparkboot: too many symlinks on the way to $sb_p" >&2; return 1; }
      sb_t=$(readlink -- "$sb_next") || return 1
      case "$sb_t" in /*) sb_cur=/;; esac
      sb_rest=$sb_t$sb_rest
      continue
    fi
    [ -e "$sb_next" ] || break
    [ -z "$sb_rest" ] && break
    sb_cur=$sb_next; sb_dirs="$sb_dirs
$sb_cur"
  done
  sb_ifs=$IFS; IFS='
'; set -f; set -- $sb_dirs; set +f; IFS=$sb_ifs
  sb_who=; sb_bad=
  while IFS='	' read -r sb_uid sb_mode sb_name sb_dir; do
    [ -z "$sb_bad" ] || break
    case "$sb_mode" in *[2367]) sb_bad="$sb_dir is writable by everyone"; break;; esac
    [ "$sb_uid" != 0 ] || continue
    if [ "$sb_name" = UNKNOWN ]; then sb_bad="$sb_dir belongs to uid $sb_uid, which has no user name"
    elif [ -n "$sb_who" ] && [ "$sb_who" != "$sb_name" ]; then sb_bad="both $sb_who and $sb_name own directories on its way"
    else sb_who=$sb_name; fi
  done <<SB_STAT
$(LC_ALL=C stat -c '%u	%a	%U	%n' -- "$@")
SB_STAT
  if [ -n "$sb_bad" ]; then echo "sparkboot: refusing to touch $sb_p: $sb_bad" >&2; return 1; fi
  echo "${sb_who:-root}"
}
"#;

/// `sb_read PATH` prints `absent`, or `present` and the file's bytes in base64 on one line, read
/// by whoever controls its directories; `refused <why>` when nobody may safely read it.
pub const READ_FN: &str = r#"sb_content() { if [ -f "$1" ]; then echo present; base64 -w0 < "$1"; echo; else echo absent; fi; }
sb_read() {
  if ! sb_u=$(sb_ctl "$1" 2>&1); then echo "refused $sb_u"; return 0; fi
  if [ "$sb_u" = root ]; then sb_content "$1"; else
    runuser -u "$sb_u" -- sh -c 'if [ -f "$1" ]; then echo present; base64 -w0 < "$1"; echo; else echo absent; fi' sb "$1"
  fi
}
"#;

/// Runs `body` as whoever controls the directories `path` passes through (see the module doc).
///
/// `path` is a shell word: quote a literal with [`quote`], or pass an expression such as
/// `"$h/.ssh/authorized_keys"` that an earlier line of `prelude` sets. `body` runs with `sh -c`,
/// with `$1` the acting user (`root` or the controlling user) and `$2` the path; stdin passes
/// through. When `owner` is given, a path controlled by another user is refused: root will not
/// hand a file to one user inside a directory another user can redirect.
pub fn as_controller(prelude: &str, path: &str, owner: Option<&str>, body: &str) -> String {
    let check_owner = match owner {
        Some(o) => format!(
            "if [ \"$sb_as\" != root ] && [ \"$sb_as\" != {o} ]; then echo \"sparkboot: refusing to give \"{path}\" to \"{o}\": $sb_as controls a directory on its way, so root will not write there; use a path outside it\" >&2; exit 1; fi\n",
            o = quote(o),
        ),
        None => String::new(),
    };
    format!(
        "{CTL_FN}{prelude}sb_path={path}\nsb_as=$(sb_ctl \"$sb_path\") || exit 1\n{check_owner}cd / || exit 1\nif [ \"$sb_as\" = root ]; then sh -c {b} sb root \"$sb_path\"; else runuser -u \"$sb_as\" -- sh -c {b} sb \"$sb_as\" \"$sb_path\"; fi",
        b = quote(body),
    )
}

/// A body fragment for [`as_controller`]: gives `$target` to `owner:group`. As root, without
/// following a link (`chown -h`); as the controlling user, who already owns what it creates,
/// only the group changes (to one of the user's own groups).
pub fn own(target: &str, owner: &str, group: &str) -> String {
    format!(
        "if [ \"$1\" = root ]; then chown -h -- {o}:{g} {t}; else chgrp -h -- {g} {t}; fi",
        o = quote(owner),
        g = quote(group),
        t = target,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// A scratch directory whose ancestors are not world-writable (unlike /tmp).
    /// A directory whose ancestors nobody else may write to: the checkout's target dir, or the
    /// home directory when the checkout lies under a world-writable one (a clone in /tmp).
    fn scratch() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let safe = |dir: &std::path::Path| {
            dir.ancestors()
                .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o002 == 0))
        };
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let home = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default());
        let base = [target, home.join(".cache/sparkboot-tests")]
            .into_iter()
            .find(|b| std::fs::create_dir_all(b).is_ok() && safe(b))
            .expect(
                "neither the checkout nor $HOME/.cache lies under directories only we may write",
            );
        tempfile::tempdir_in(base).expect("tempdir")
    }

    /// Runs `sb_ctl` on `path` with the real sh, stat and awk of this machine.
    fn ctl(path: &str) -> (bool, String, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{CTL_FN}sb_ctl \"$1\""))
            .arg("sb")
            .arg(path)
            .output()
            .expect("run sh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    #[test]
    fn a_world_writable_directory_on_the_way_is_refused_even_through_a_link() {
        let dir = scratch();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::create_dir(open.join("inner")).expect("mkdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("open/inner", &link).expect("symlink");
        for p in [open.join("f"), link.join("f"), link.join("new/deeper/f")] {
            let (ok, _, err) = ctl(&p.display().to_string());
            assert!(!ok, "{} must be refused", p.display());
            assert!(err.contains("is writable by everyone"), "{err}");
        }
    }

    #[test]
    fn the_owner_of_this_test_controls_its_own_directories() {
        let dir = scratch();
        let me = Command::new("id").arg("-un").output().expect("id");
        let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
        let expected = if me == "root" { "root" } else { me.as_str() };
        let (ok, who, err) = ctl(&dir.path().join("a/b").display().to_string());
        assert!(ok, "{err}");
        // The temp dir's ancestors are root's; the temp dir itself is ours.
        assert_eq!(who, expected);
        let (ok, _, err) = ctl("/tmp/anything");
        assert!(!ok && err.contains("/tmp is writable by everyone"), "{err}");
        let (ok, _, err) = ctl("relative/path");
        assert!(!ok && err.contains("not an absolute path"), "{err}");
    }

    #[test]
    fn dot_dot_and_link_loops_terminate() {
        let dir = scratch();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink(&a, &a).expect("self link");
        let (ok, _, err) = ctl(&a.join("x").display().to_string());
        assert!(!ok && err.contains("too many symlinks"), "{err}");
        let (ok, who, _) = ctl("/etc/../etc/./passwd");
        assert!(ok);
        assert!(!who.is_empty());
    }

    #[test]
    fn the_body_is_quoted_once_and_gets_the_acting_user_and_path() {
        let s = as_controller(
            "",
            &quote("/var/lib/spark/.ssh/x"),
            Some("spark"),
            "echo \"$1 $2\"",
        );
        assert!(s.contains("sb_path=/var/lib/spark/.ssh/x"), "{s}");
        assert!(
            s.contains("runuser -u \"$sb_as\" -- sh -c 'echo \"$1 $2\"' sb"),
            "{s}"
        );
        assert!(s.contains("\"$sb_as\" != spark"), "{s}");
        assert!(own("\"$t\"", "root", "spark").contains("chown -h -- root:spark \"$t\""));
    }
}
