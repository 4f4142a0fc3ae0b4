//! Applying one host's fixes over its open session, in an order that keeps the node reachable:
//! keys, then owners and modes, then the sshd drop-in. Whenever a change could affect logging
//! in (the drop-in, an authorized_keys rewrite), a FRESH session is opened afterwards; if that
//! fails, everything is put back over the old session, sshd is reloaded again, and the host is
//! reported failed. The Spark fixes are a converge, run for all hosts afterwards
//! (`super::converge`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::checks::{find, Fix};
use super::facts::HostFacts;
use super::keys;
use super::perms::{self, Area};
use super::sshd::{self, SshdConfig, DROPIN};
use super::Verdict;
use crate::engine::Node;
use crate::plan::Payload;
use crate::shell::{harden as sh, Privilege};
use crate::spark::layout::Layout;
use crate::transport::{Connection, KnownHosts, SshOptions};

/// What to fix on one host.
pub struct FixPlan<'a> {
    pub before: &'a BTreeMap<&'static str, Verdict>,
    pub facts: &'a HostFacts,
    pub skipped: &'a BTreeSet<String>,
    pub operator: &'a BTreeSet<String>,
    pub sshd_extra: &'a [String],
    /// This host is the master and a seed key was found somewhere: delete the cluster key so
    /// the converge that follows generates and authorizes a new one.
    pub rotate_cluster_key: Option<&'a str>,
    pub layout: &'a Layout,
}

#[derive(Debug, Default)]
pub struct FixOutcome {
    pub changed: u32,
    pub errors: BTreeMap<&'static str, String>,
    pub notes: Vec<String>,
}

impl FixPlan<'_> {
    fn due(&self, id: &str) -> bool {
        !self.skipped.contains(id) && self.before.get(id).is_some_and(Verdict::failed)
    }
}

fn ids_with(fix: Fix) -> Vec<&'static str> {
    super::checks::CHECKS
        .iter()
        .filter(|c| c.fix == fix)
        .map(|c| c.id)
        .collect()
}

/// Why a fix script failed: its exit status (none when the session was lost) and last line.
#[derive(Debug)]
struct ScriptError {
    status: Option<i32>,
    message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "exit {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn run_script(run: &mut Node, script: &str, stdin: Option<Vec<u8>>) -> Result<(), ScriptError> {
    let payload = stdin.map(Payload::Bytes);
    match run.run(script, payload.as_ref()) {
        Some(out) if out.success() => Ok(()),
        Some(out) => Err(ScriptError {
            status: Some(out.exit_status),
            message: out
                .stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("no message")
                .to_string(),
        }),
        None => Err(ScriptError {
            status: None,
            message: "the session to the host was lost".into(),
        }),
    }
}

/// A fresh session (not the one the fixes ran over) can log in and run a command as root.
fn fresh_login(run: &Node, opts: &SshOptions, known: &KnownHosts) -> Result<(), String> {
    let opts = SshOptions {
        retry_deadline: opts.retry_deadline.min(Duration::from_secs(15)),
        ..opts.clone()
    };
    let conn = Connection::open(&run.host, &opts, known).map_err(|e| e.to_string())?;
    match conn.run(sh::login_check(), Privilege::Root, None) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(format!(
            "logged in, but a command as root failed: {}",
            out.stderr.trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn seed_keys(run: &mut Node, plan: &FixPlan, out: &mut FixOutcome) -> Vec<String> {
    let id = "ssh-seed-keys";
    if !plan.due(id) {
        return Vec::new();
    }
    if plan.operator.is_empty() {
        out.errors.insert(id, "nothing removed: cannot tell which key you log in with (no identity_file with a readable public half, no agent key)".into());
        return Vec::new();
    }
    let audit = keys::audit(plan.facts, plan.operator, &plan.layout.cluster_key);
    let blobs: Vec<String> = audit.seed_blobs().into_iter().collect();
    let base64 = |b: &String| {
        b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
    };
    if blobs.is_empty() || !blobs.iter().all(base64) {
        out.errors
            .insert(id, "nothing removed: unexpected key material".into());
        return Vec::new();
    }
    let files: Vec<String> = audit.seed_authorized.keys().cloned().collect();
    let private: Vec<String> = audit.seed_private.keys().cloned().collect();
    match run_script(run, &sh::remove_seed_keys(&files, &blobs, &private), None) {
        Ok(_) => {
            out.changed += 1;
            out.notes.push(format!(
                "removed {} shared private key(s) and their lines in {} authorized_keys file(s)",
                private.len(),
                files.len()
            ));
            files
        }
        Err(e) => {
            out.errors
                .insert(id, format!("removing the keys failed: {e}"));
            // Whatever was rewritten has a backup: roll it back with the rest on failure.
            files
        }
    }
}

fn permissions(run: &mut Node, plan: &FixPlan, out: &mut FixOutcome) {
    for (id, area) in [
        ("ssh-file-perms", Area::Ssh),
        ("spark-file-perms", Area::Spark),
    ] {
        if !plan.due(id) {
            continue;
        }
        let items: Vec<(String, Option<String>, u32)> =
            perms::repairs(&plan.facts.stats, &plan.facts.homes, area, plan.layout)
                .into_iter()
                .map(|r| (r.path, r.owner, r.mode))
                .collect();
        match run_script(run, &sh::fix_perms(&items), None) {
            Ok(_) => out.changed += 1,
            Err(e) => {
                out.errors.insert(id, format!("chown/chmod failed: {e}"));
            }
        }
    }
}

/// Writes, validates and reloads the drop-in; true when sshd now runs with it.
fn sshd_dropin(run: &mut Node, plan: &FixPlan, out: &mut FixOutcome) -> bool {
    let due: Vec<&'static str> = ids_with(Fix::SshdDropIn)
        .into_iter()
        .filter(|id| plan.due(id))
        .collect();
    if due.is_empty() {
        return false;
    }
    let current = SshdConfig::parse(&plan.facts.sshd_t);
    let text = sshd::render_dropin(
        plan.skipped,
        run.host.user == "root",
        current.kbd_keyword(),
        plan.sshd_extra,
    );
    let result = run_script(run, &sh::sshd_apply(DROPIN), Some(text.into_bytes()));
    let error = match result {
        Ok(_) => {
            out.changed += 1;
            return true;
        }
        Err(e) => e,
    };
    if error.status != Some(3) && run.alive() {
        // Reloading failed half way: put the old file back and reload again.
        let _ = run_script(run, &sh::rollback(Some(DROPIN), &[]), None);
    }
    for id in due {
        out.errors
            .insert(id, format!("drop-in not applied ({error})"));
    }
    false
}

/// Applies every due fix except the converge; on a failed fresh login, rolls back and marks the
/// host failed.
pub fn apply(run: &mut Node, plan: &FixPlan, opts: &SshOptions, known: &KnownHosts) -> FixOutcome {
    let mut out = FixOutcome::default();
    run.bar.set("removing seed keys");
    let before = out.changed;
    let touched = seed_keys(run, plan, &mut out);
    // Changes a failed fresh login undoes (the seed-key removal and the drop-in).
    let mut login_changes = out.changed - before;
    run.bar.set("fixing owners and modes");
    permissions(run, plan, &mut out);
    if let Some(key) = plan.rotate_cluster_key {
        match run_script(run, &sh::delete_cluster_key(key), None) {
            Ok(_) => {
                out.changed += 1;
                out.notes.push(format!(
                    "deleted the cluster key {key}: converge generates a new one and authorizes it on the workers"
                ));
            }
            Err(e) => {
                out.errors.insert(
                    "ssh-seed-keys",
                    format!("rotating the cluster key failed: {e}"),
                );
            }
        }
    }
    run.bar.set("sshd drop-in");
    let reloaded = sshd_dropin(run, plan, &mut out);
    login_changes += u32::from(reloaded);
    if !reloaded && touched.is_empty() {
        return out;
    }
    run.bar.set("fresh login check");
    let mut backed_up = touched.clone();
    if reloaded {
        backed_up.push(DROPIN.to_string());
    }
    match fresh_login(run, opts, known) {
        Ok(()) => {
            let _ = run_script(run, &sh::commit(&backed_up), None);
            out
        }
        Err(first) => {
            let undo = sh::rollback(reloaded.then_some(DROPIN), &touched);
            let restored = run_script(run, &undo, None);
            let again = fresh_login(run, opts, known);
            let state = match (restored, again) {
                (Ok(_), Ok(())) => "the previous sshd config and authorized_keys are back and a fresh login works again".to_string(),
                (Err(e), _) => format!("restoring failed ({e}); the old session is all that is left"),
                (Ok(_), Err(e)) => format!("restored, but a fresh login still fails: {e}"),
            };
            let message = format!("a fresh login failed after the changes ({first}); {state}");
            for id in ids_with(Fix::SshdDropIn)
                .into_iter()
                .chain(["ssh-seed-keys"])
            {
                if plan.due(id) {
                    out.errors.insert(
                        id,
                        "rolled back after a failed fresh login (see the host's error)".into(),
                    );
                }
            }
            out.changed = out.changed.saturating_sub(login_changes);
            run.fail(message);
            out
        }
    }
}

/// The check ids a converge would fix (used to decide whether to run one).
pub fn converge_due(before: &BTreeMap<&'static str, Verdict>, skipped: &BTreeSet<String>) -> bool {
    before.iter().any(|(id, v)| {
        v.failed() && !skipped.contains(*id) && find(id).is_some_and(|c| c.fix == Fix::Converge)
    })
}
