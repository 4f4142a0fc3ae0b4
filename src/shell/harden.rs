//! Scripts for `sparkboot harden`: the read-only audit probe, and each fix. Every word that
//! comes from outside this file (paths, owners, key blobs) is quoted; file content (the sshd
//! drop-in) arrives on stdin. Secrets never leave the node: the probe masks the values of
//! secret-looking Spark properties before printing.
//!
//! Fixes that could lock the operator out keep a `.sparkboot-prev` copy of what they replace,
//! so [`rollback`] can put it back after a failed fresh login and [`commit`] drops it after a
//! good one.

use super::{guard, join, quote};
use crate::spark::layout::Layout;

/// Suffix of the copy a fix keeps until the fresh login proved the change safe.
pub const BACKUP: &str = ".sparkboot-prev";

/// Finds sshd and reloads it: systemd's unit where systemd runs (socket-activated sshd reads the
/// config per connection), else SIGHUP to the PID in sshd's pidfile (sshd re-executes itself),
/// starting it if it is not running. Waits a second so the next login meets the new config.
const RELOAD_FN: &str = r#"sb_sshd=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
sb_reload() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || systemctl is-active --quiet ssh.socket || return 1
  else
    pf=$("$sb_sshd" -T 2>/dev/null | awk '$1 == "pidfile" { print $2 }')
    pid=$(cat "${pf:-/run/sshd.pid}" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -HUP "$pid" || return 1; else "$sb_sshd" || return 1; fi
  fi
  sleep 1
}
"#;

/// Prints secret-looking Spark properties as `key <set>` (or `key ` when empty).
const MASK_AWK: &str = r#"{
  line = $0; sub(/^[ \t]+/, "", line)
  if (line == "" || line ~ /^[#!]/) next
  n = match(line, /[ \t=:]/)
  key = n ? substr(line, 1, n - 1) : line
  if (tolower(key) ~ /secret|password|token|credential/) {
    val = n ? substr(line, n) : ""
    gsub(/^[ \t=:]+/, "", val); gsub(/[ \t]+$/, "", val)
    print key " " (val == "" ? "" : "<set>")
  } else print line
}"#;

/// SSH paths whose owner and mode the audit reads (globs), besides every home's `.ssh` and the
/// layout's Spark paths.
const SSH_STAT_PATHS: &str = "/etc/ssh/sshd_config /etc/ssh/sshd_config.d /etc/ssh/sshd_config.d/*.conf /etc/ssh/ssh_host_*_key";

/// What the audit reads in one home (`$1`), run by whoever controls that home's `.ssh`: a job
/// running as that user could point any name there at a file only root may read.
const HOME_AUDIT: &str = r#"h=$1; FMT='%a	%U	%G	%F	%n'
echo "@@harden:home $(stat -c %U -- "$h")	$h"
echo '@@harden:stat'; stat -c "$FMT" -- "$h/.ssh"
for f in "$h"/.ssh/*; do [ -f "$f" ] && [ ! -L "$f" ] && stat -c "$FMT" -- "$f"; done
for f in "$h"/.ssh/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  head -c 64 -- "$f" 2>/dev/null | grep -q 'PRIVATE KEY' || continue
  echo "@@harden:privkey $f"
  ssh-keygen -y -P '' -f "$f" 2>/dev/null || cat -- "$f.pub" 2>/dev/null; echo
done
for a in authorized_keys authorized_keys2; do
  [ -f "$h/.ssh/$a" ] && [ ! -L "$h/.ssh/$a" ] || continue
  echo "@@harden:authkeys $h/.ssh/$a"; cat -- "$h/.ssh/$a"; echo
done
exit 0"#;

/// The read-only audit probe (run as root). Output sections start with `@@harden:`; see
/// `crate::harden::facts::parse`. It sends nothing over the network.
pub fn audit_script(dropin: &str, layout: &Layout) -> String {
    let d = quote(dropin);
    let spark_paths = [
        layout.conf_file("spark-defaults.conf"),
        layout.conf_file("spark-env.sh"),
        layout.user_home.clone(),
        layout.pid_dir.clone(),
        layout.work_dir.clone(),
        layout.local_dir.clone(),
        layout.log_dir.clone(),
        layout.event_log_dir.clone(),
    ];
    format!(
        r#"export LC_ALL=C
{ctl}FMT='%a	%U	%G	%F	%n'
sb_sshd=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
out=$("$sb_sshd" -T 2>&1); rc=$?
echo "@@harden:sshd $rc"; printf '%s\n' "$out"
if [ -f {d} ]; then echo '@@harden:dropin present'; cat {d}; echo; else echo '@@harden:dropin absent'; fi
sb_home={home}
{{ getent passwd | cut -d: -f6; for h in /home/*; do echo "$h"; done; }} | sort -u | while IFS= read -r h; do
  case "$h" in ''|/) continue;; esac
  [ -d "$h/.ssh" ] && [ ! -L "$h/.ssh" ] || continue
  if ! u=$(sb_ctl "$h/.ssh/authorized_keys" 2>&1); then echo "@@harden:refused $h	$u" | tr '\n' ' '; echo; continue; fi
  if [ "$u" = root ]; then sh -c "$sb_home" sb "$h"; else (cd / && runuser -u "$u" -- sh -c "$sb_home" sb "$h"); fi
done
echo '@@harden:stat'
for p in {SSH_STAT_PATHS} {spark_paths}; do [ -e "$p" ] && [ ! -L "$p" ] && stat -c "$FMT" -- "$p"; done
echo '@@harden:spark-link'; l=$(readlink {spark_home} 2>/dev/null); echo "${{l##*/}}"
c={defaults}
if [ -f "$c" ]; then echo '@@harden:spark-defaults present'; awk {mask} "$c"; else echo '@@harden:spark-defaults absent'; fi
e={env}
if [ -f "$e" ]; then echo '@@harden:spark-env present'; grep -E '^[[:space:]]*(export[[:space:]]+)?SPARK_LOCAL_IP=' "$e"; else echo '@@harden:spark-env absent'; fi
for n in board_asset_tag sys_vendor product_uuid; do echo "@@harden:dmi $n"; cat "/sys/devices/virtual/dmi/id/$n" 2>/dev/null; echo; done
echo '@@harden:dmi hypervisor_uuid'; cat /sys/hypervisor/uuid 2>/dev/null; echo
exit 0
"#,
        ctl = guard::CTL_FN,
        home = quote(HOME_AUDIT),
        mask = quote(MASK_AWK),
        spark_paths = join(&spark_paths),
        spark_home = quote(&layout.home),
        defaults = quote(&layout.conf_file("spark-defaults.conf")),
        env = quote(&layout.conf_file("spark-env.sh")),
    )
}

/// A token-less request to the instance metadata service; prints the HTTP status (`000` when
/// nothing answers). Sent only to nodes that identify as EC2 and are not lab nodes.
pub fn imds_script() -> String {
    "if command -v curl >/dev/null 2>&1; then curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://169.254.169.254/latest/meta-data/ || true; else echo no-curl; fi".to_string()
}

/// What the fresh session after a change runs (as root) to prove that logging in still works.
pub fn login_check() -> &'static str {
    "true"
}

/// Installs the drop-in from stdin after keeping a copy of the old one, validates the whole
/// configuration with `sshd -t` (putting the old file back and exiting 3 when it is rejected)
/// and reloads sshd (exit 4 when that fails; the caller then rolls back).
pub fn sshd_apply(dropin: &str) -> String {
    format!(
        r#"{RELOAD_FN}f={f}; b={b}; t={t}
mkdir -p "$(dirname "$f")"
rm -f "$b"; if [ -e "$f" ]; then cp -p "$f" "$b" || exit 1; fi
umask 022
if ! {{ cat > "$t" && chown root:root "$t" && chmod 0644 "$t" && mv -f "$t" "$f"; }}; then rm -f "$t"; echo "cannot write $f" >&2; exit 1; fi
if ! out=$("$sb_sshd" -t 2>&1); then
  if [ -e "$b" ]; then mv -f "$b" "$f"; else rm -f "$f"; fi
  echo "sshd -t rejected the new settings, so nothing was reloaded: $out" >&2; exit 3
fi
sb_reload || {{ echo "reloading sshd failed" >&2; exit 4; }}"#,
        f = quote(dropin),
        b = quote(&format!("{dropin}{BACKUP}")),
        t = quote(&format!("{dropin}.sparkboot-tmp")),
    )
}

/// Puts back what the fixes replaced: the drop-in (or removes it when there was none before,
/// when `dropin` is given) and each file in `files` that has a backup (as whoever controls the
/// file's directory); then reloads sshd.
pub fn rollback(dropin: Option<&str>, files: &[String]) -> String {
    let mut s = String::from(RELOAD_FN);
    if let Some(d) = dropin {
        s.push_str(&format!(
            "if [ -e {b} ]; then mv -f {b} {f}; else rm -f {f}; fi\n",
            f = quote(d),
            b = quote(&format!("{d}{BACKUP}"))
        ));
    }
    for f in files {
        let body = format!(
            "if [ -f \"$2{BACKUP}\" ] && [ ! -L \"$2{BACKUP}\" ]; then mv -f -- \"$2{BACKUP}\" \"$2\"; fi"
        );
        s.push_str(&format!(
            "( {} ) || echo \"sparkboot: could not restore \"{}\" from its backup\" >&2\n",
            guard::as_controller("", &quote(f), None, &body),
            quote(f)
        ));
    }
    s.push_str("\"$sb_sshd\" -t && sb_reload");
    s
}

/// Drops the backups once a fresh login proved the changes safe.
pub fn commit(paths: &[String]) -> String {
    if paths.is_empty() {
        return "true".into();
    }
    let body = format!("rm -f -- \"$2{BACKUP}\"");
    paths
        .iter()
        .map(|p| format!("( {} )", guard::as_controller("", &quote(p), None, &body)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes every authorized_keys line holding one of `blobs` from each of `files` (keeping a
/// backup and the mode), then deletes the private keys and their `.pub` files. Each file is
/// handled by whoever controls its directory: these live in users' homes.
pub fn remove_seed_keys(files: &[String], blobs: &[String], private: &[String]) -> String {
    let mut s = String::from("set -e\n");
    let drop = quote(&blobs.join(" "));
    for f in files {
        let body = format!(
            r#"set -e; a=$2; t="$a.sparkboot-tmp"
if [ -L "$a" ]; then echo "sparkboot: $a is a symlink; refusing to follow it" >&2; exit 1; fi
rm -f -- "$a{BACKUP}" "$t"; cp -p -- "$a" "$a{BACKUP}"
(set -C; awk -v blobs={drop} 'BEGIN {{ n = split(blobs, l, " "); for (i = 1; i <= n; i++) drop[l[i]] = 1 }} {{ keep = 1; for (i = 1; i <= NF; i++) if ($i in drop) keep = 0; if (keep) print }}' "$a" > "$t")
if [ "$1" = root ]; then chown --reference="$a" -- "$t"; fi; chmod --reference="$a" -- "$t"; mv -f -- "$t" "$a""#
        );
        s.push_str(&guard::as_controller("", &quote(f), None, &body));
        s.push('\n');
    }
    for p in private {
        s.push_str(&guard::as_controller(
            "",
            &quote(p),
            None,
            "rm -f -- \"$2\" \"$2.pub\"",
        ));
        s.push('\n');
    }
    s
}

/// Chowns (when an owner is given) and chmods each path that still exists, as whoever controls
/// its directory. A user cannot chown, so a file in a user's directory that belongs to someone
/// else is replaced by the user's own copy (same content and mode); what the user cannot read
/// is reported for a person to remove.
pub fn fix_perms(items: &[(String, Option<String>, u32)]) -> String {
    let mut s = String::from("set -e\n");
    for (path, owner, mode) in items {
        let chown = match owner {
            Some(o) => format!(
                r#"if [ "$1" = root ]; then chown -h -- {o} "$2"; elif [ "$(stat -c %U -- "$2")" != "$1" ]; then
  if [ -d "$2" ] || ! [ -r "$2" ]; then echo "sparkboot: $2 belongs to $(stat -c %U -- "$2") inside $1's directory; remove it or chown it by hand" >&2; exit 1; fi
  t="$2.sparkboot-tmp"; rm -f -- "$t"; (set -C; cat -- "$2" > "$t"); mv -f -- "$t" "$2"
fi; "#,
                o = quote(o)
            ),
            None => String::new(),
        };
        let body = format!(
            "set -e; [ -e \"$2\" ] || exit 0; if [ -L \"$2\" ]; then echo \"sparkboot: $2 is a symlink; refusing to follow it\" >&2; exit 1; fi; {chown}chmod {mode:04o} -- \"$2\""
        );
        s.push_str(&guard::as_controller(
            "",
            &quote(path),
            owner.as_deref(),
            &body,
        ));
        s.push('\n');
    }
    s
}

/// Deletes the cluster key pair so the next converge generates a new one and re-authorizes it.
pub fn delete_cluster_key(private: &str) -> String {
    guard::as_controller("", &quote(private), None, "rm -f -- \"$2\" \"$2.pub\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_nothing_over_the_network_and_masks_secrets() {
        let layout = crate::spark::layout::tests::builtin();
        let s = audit_script("/etc/ssh/sshd_config.d/10-x.conf", &layout);
        assert!(!s.contains("169.254") && !s.contains("curl"), "{s}");
        assert!(s.contains("<set>"));
        assert!(s.contains("if [ -f /etc/ssh/sshd_config.d/10-x.conf ]"));
        assert!(imds_script().contains("169.254.169.254"));
    }

    #[test]
    fn apply_validates_before_reloading_and_restores_on_rejection() {
        let s = sshd_apply("/etc/ssh/sshd_config.d/10-x.conf");
        let validate = s.find("-t 2>&1").expect("sshd -t");
        let reload = s.rfind("sb_reload ||").expect("reload");
        assert!(validate < reload);
        assert!(s.contains("exit 3"));
        assert!(s.contains("b=/etc/ssh/sshd_config.d/10-x.conf.sparkboot-prev"));
    }

    #[test]
    fn words_are_quoted_and_home_files_are_handled_by_their_controller() {
        let s = remove_seed_keys(
            &["/home/a b/.ssh/authorized_keys".into()],
            &["AAAA+/=".into(), "BBBB".into()],
            &["/home/a b/.ssh/id_rsa".into()],
        );
        assert!(
            s.contains("sb_path='/home/a b/.ssh/authorized_keys'"),
            "{s}"
        );
        assert!(s.contains("sb_path='/home/a b/.ssh/id_rsa'"), "{s}");
        assert!(s.contains("AAAA+/= BBBB"), "{s}");
        assert!(s.contains("runuser -u \"$sb_as\""), "{s}");
        let p = fix_perms(&[("/x y".into(), Some("spark".into()), 0o2750)]);
        assert!(
            p.contains("sb_path='/x y'") && p.contains("chmod 2750"),
            "{p}"
        );
        assert!(p.contains("\"$sb_as\" != spark"), "{p}");
        assert_eq!(commit(&[]), "true");
        assert!(commit(&["/a".into()]).contains(".sparkboot-prev"));
        let r = rollback(Some("/d.conf"), &["/k".into()]);
        assert!(r.contains("mv -f /d.conf.sparkboot-prev /d.conf; else rm -f /d.conf"));
        assert!(r.contains("sb_path=/k"), "{r}");
    }
}
