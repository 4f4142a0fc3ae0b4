//! Scripts for `sparkboot harden`: the read-only audit probe, and each fix. Every word that
//! comes from outside this file (paths, owners, key blobs) is quoted; file content (the sshd
//! drop-in) arrives on stdin. Secrets never leave the node: the probe masks the values of
//! secret-looking Spark properties before printing.
//!
//! Fixes that could lock the operator out keep a `.sparkboot-prev` copy of what they replace,
//! so [`rollback`] can put it back after a failed fresh login and [`commit`] drops it after a
//! good one.

use super::{join, quote};

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

/// Paths whose owner and mode the audit reads, besides every home's `.ssh`.
const STAT_PATHS: &str = "/etc/ssh/sshd_config /etc/ssh/sshd_config.d /etc/ssh/sshd_config.d/*.conf /etc/ssh/ssh_host_*_key /opt/spark/conf/spark-defaults.conf /opt/spark/conf/spark-env.sh /var/lib/spark /var/lib/spark/run /var/lib/spark/work /var/lib/spark/local /var/log/spark";

/// The read-only audit probe (run as root). Output sections start with `@@harden:`; see
/// `crate::harden::facts::parse`. It sends nothing over the network.
pub fn audit_script(dropin: &str) -> String {
    let d = quote(dropin);
    format!(
        r#"export LC_ALL=C
FMT='%a	%U	%G	%F	%n'
sb_sshd=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
out=$("$sb_sshd" -T 2>&1); rc=$?
echo "@@harden:sshd $rc"; printf '%s\n' "$out"
if [ -f {d} ]; then echo '@@harden:dropin present'; cat {d}; echo; else echo '@@harden:dropin absent'; fi
{{ getent passwd | cut -d: -f6; for h in /home/*; do echo "$h"; done; }} | sort -u | while IFS= read -r h; do
  case "$h" in ''|/) continue;; esac
  [ -d "$h/.ssh" ] && [ ! -L "$h/.ssh" ] || continue
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
    [ -f "$h/.ssh/$a" ] || continue
    echo "@@harden:authkeys $h/.ssh/$a"; cat -- "$h/.ssh/$a"; echo
  done
done
echo '@@harden:stat'
for p in {STAT_PATHS}; do [ -e "$p" ] && [ ! -L "$p" ] && stat -c "$FMT" -- "$p"; done
echo '@@harden:spark-link'; l=$(readlink /opt/spark 2>/dev/null); echo "${{l##*/}}"
c=/opt/spark/conf/spark-defaults.conf
if [ -f "$c" ]; then echo '@@harden:spark-defaults present'; awk {mask} "$c"; else echo '@@harden:spark-defaults absent'; fi
e=/opt/spark/conf/spark-env.sh
if [ -f "$e" ]; then echo '@@harden:spark-env present'; grep -E '^[[:space:]]*(export[[:space:]]+)?SPARK_LOCAL_IP=' "$e"; else echo '@@harden:spark-env absent'; fi
for n in board_asset_tag sys_vendor product_uuid; do echo "@@harden:dmi $n"; cat "/sys/devices/virtual/dmi/id/$n" 2>/dev/null; echo; done
echo '@@harden:dmi hypervisor_uuid'; cat /sys/hypervisor/uuid 2>/dev/null; echo
exit 0
"#,
        mask = quote(MASK_AWK),
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
/// when `dropin` is given) and each file in `files` that has a backup; then reloads sshd.
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
        s.push_str(&format!(
            "if [ -e {b} ]; then mv -f {b} {f}; fi\n",
            f = quote(f),
            b = quote(&format!("{f}{BACKUP}"))
        ));
    }
    s.push_str("\"$sb_sshd\" -t && sb_reload");
    s
}

/// Drops the backups once a fresh login proved the changes safe.
pub fn commit(paths: &[String]) -> String {
    let backups: Vec<String> = paths.iter().map(|p| format!("{p}{BACKUP}")).collect();
    if backups.is_empty() {
        return "true".into();
    }
    format!("rm -f -- {}", join(&backups))
}

/// Removes every authorized_keys line holding one of `blobs` from each of `files` (keeping a
/// backup, owner and mode), then deletes the private keys and their `.pub` files.
pub fn remove_seed_keys(files: &[String], blobs: &[String], private: &[String]) -> String {
    let mut s = String::from("set -e\n");
    let drop = quote(&blobs.join(" "));
    for f in files {
        s.push_str(&format!(
            r#"a={a}
cp -p "$a" "$a{BACKUP}"
awk -v blobs={drop} 'BEGIN {{ n = split(blobs, l, " "); for (i = 1; i <= n; i++) drop[l[i]] = 1 }} {{ keep = 1; for (i = 1; i <= NF; i++) if ($i in drop) keep = 0; if (keep) print }}' "$a" > "$a.sparkboot-tmp"
chown --reference="$a" "$a.sparkboot-tmp"; chmod --reference="$a" "$a.sparkboot-tmp"; mv -f "$a.sparkboot-tmp" "$a"
"#,
            a = quote(f)
        ));
    }
    for p in private {
        s.push_str(&format!(
            "rm -f -- {} {}\n",
            quote(p),
            quote(&format!("{p}.pub"))
        ));
    }
    s
}

/// Chowns (when an owner is given) and chmods each path that still exists.
pub fn fix_perms(items: &[(String, Option<String>, u32)]) -> String {
    let mut s = String::from("set -e\n");
    for (path, owner, mode) in items {
        let p = quote(path);
        let chown = owner
            .as_ref()
            .map(|o| format!("chown {} -- {p}; ", quote(o)))
            .unwrap_or_default();
        s.push_str(&format!(
            "if [ -e {p} ]; then {chown}chmod {mode:04o} -- {p}; fi\n"
        ));
    }
    s
}

/// Deletes the cluster key pair so the next converge generates a new one and re-authorizes it.
pub fn delete_cluster_key(private: &str) -> String {
    format!(
        "rm -f -- {} {}",
        quote(private),
        quote(&format!("{private}.pub"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_nothing_over_the_network_and_masks_secrets() {
        let s = audit_script("/etc/ssh/sshd_config.d/10-x.conf");
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
    fn words_are_quoted() {
        let s = remove_seed_keys(
            &["/home/a b/.ssh/authorized_keys".into()],
            &["AAAA+/=".into(), "BBBB".into()],
            &["/home/a b/.ssh/id_rsa".into()],
        );
        assert!(s.contains("a='/home/a b/.ssh/authorized_keys'"), "{s}");
        assert!(s.contains("-v blobs='AAAA+/= BBBB'"), "{s}");
        assert!(s.contains("rm -f -- '/home/a b/.ssh/id_rsa' '/home/a b/.ssh/id_rsa.pub'"));
        let p = fix_perms(&[("/x y".into(), Some("spark".into()), 0o2750)]);
        assert!(
            p.contains("if [ -e '/x y' ]; then chown spark -- '/x y'; chmod 2750 -- '/x y'; fi"),
            "{p}"
        );
        assert_eq!(commit(&[]), "true");
        assert!(commit(&["/a".into()]).contains("/a.sparkboot-prev"));
        let r = rollback(Some("/d.conf"), &["/k".into()]);
        assert!(r.contains("mv -f /d.conf.sparkboot-prev /d.conf; else rm -f /d.conf"));
        assert!(r.contains("mv -f /k.sparkboot-prev /k"));
    }
}
