//! How each resource kind plans: compare desired state with (simulated) facts, return a change
//! with a reason or a no-op with one, and update the simulation to what the change will leave.

use sha2::{Digest, Sha256};

use super::diff::unified;
use super::{Action, Change, Payload, PlanOptions};
use crate::facts::{Facts, PathFact, ServiceFact, UserFact};
use crate::roles::model::*;
use crate::roles::Resource;
use crate::shell::ops;

/// The file beside a pushed file that records the SHA-256 it was installed with (written after
/// the file is in place, so it never vouches for a file that is not).
pub fn pushed_marker(path: &str) -> String {
    format!("{path}.sparkboot-sha256")
}

/// The file inside an installed download that records the archive's checksum.
pub fn marker(dest: &str) -> String {
    format!("{dest}/.sparkboot-sha512")
}

fn change(reason: String, script: String) -> Action {
    Action::Change(Change {
        reason,
        script,
        stdin: None,
        diff: None,
        starts_service: None,
    })
}

fn mode_of(spec: &str) -> u32 {
    u32::from_str_radix(spec, 8).unwrap_or(0o644)
}

/// Facts probed at or below `prefix` may be stale once `prefix` changes (a moved symlink, a new
/// install): forget them so later steps plan as if the path were new.
fn invalidate_below(sim: &mut Facts, prefix: &str) {
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    for (path, fact) in sim.paths.iter_mut() {
        if path.starts_with(&dir) {
            *fact = PathFact::Absent;
        }
    }
    for (path, content) in sim.contents.iter_mut() {
        if path.starts_with(&dir) {
            *content = None;
        }
    }
}

pub fn plan_step(
    resource: &Resource,
    sim: &mut Facts,
    opts: &PlanOptions,
) -> Result<Action, String> {
    match resource {
        Resource::Package(p) => package(p, sim),
        Resource::Group(g) => Ok(group(g, sim)),
        Resource::User(u) => Ok(user(u, sim)),
        Resource::Directory(d) => directory(d, sim),
        Resource::File(spec) => match &spec.pushed {
            Some(sha256) => pushed_file(spec, sha256, sim, opts),
            None => file(spec, spec.content.as_deref().unwrap_or_default(), sim, opts),
        },
        Resource::Download(d) => download(d, sim, opts),
        Resource::Symlink(l) => symlink(l, sim),
        Resource::AuthorizedKey(k) => authorized_key(k, sim, opts),
        Resource::Service(s) => Ok(service(s, sim)),
        Resource::Command(c) => Ok(command(c, sim)),
    }
}

fn package(p: &PackageSpec, sim: &mut Facts) -> Result<Action, String> {
    let manager = sim.system.package_manager.clone();
    let names = match manager.as_str() {
        "apt" => &p.apt,
        "dnf" | "yum" => &p.dnf,
        _ => return Err("no supported package manager (apt, dnf or yum) on this host; install the packages by hand or use an image that has one".into()),
    };
    if names.is_empty() {
        return Err(format!("the step lists no package names for {manager}"));
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !sim.packages.get(*n).copied().unwrap_or(false))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(Action::Unchanged(format!(
            "{} already installed",
            names.join(", ")
        )));
    }
    for n in &missing {
        sim.packages.insert(n.clone(), true);
    }
    Ok(change(
        format!("install {} with {manager}", missing.join(", ")),
        ops::install_packages(&manager, &missing),
    ))
}

fn group(g: &GroupSpec, sim: &mut Facts) -> Action {
    if matches!(sim.groups.get(&g.name), Some(Some(_))) {
        return Action::Unchanged(format!("group {} exists", g.name));
    }
    sim.groups.insert(g.name.clone(), Some(0));
    change(
        format!("create group {}", g.name),
        ops::add_group(&g.name, g.system),
    )
}

fn user(u: &UserSpec, sim: &mut Facts) -> Action {
    if matches!(sim.users.get(&u.name), Some(Some(_))) {
        return Action::Unchanged(format!("user {} exists", u.name));
    }
    let home = u.home.clone().unwrap_or_else(|| "/nonexistent".into());
    sim.users.insert(
        u.name.clone(),
        Some(UserFact {
            uid: 0,
            gid: 0,
            home,
            shell: u.shell.clone().unwrap_or_default(),
        }),
    );
    change(
        format!("create user {}", u.name),
        ops::add_user(
            &u.name,
            u.group.as_deref(),
            u.system,
            u.home.as_deref(),
            u.shell.as_deref(),
        ),
    )
}

/// Describes owner/group/mode drift, or None when they match.
fn drift(
    owner: &str,
    group: &str,
    mode: u32,
    want_owner: &str,
    want_group: &str,
    want_mode: u32,
) -> Option<String> {
    let mut parts = Vec::new();
    if owner != want_owner || group != want_group {
        parts.push(format!(
            "owner {owner}:{group} -> {want_owner}:{want_group}"
        ));
    }
    if mode != want_mode {
        parts.push(format!("mode {mode:04o} -> {want_mode:04o}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn directory(d: &DirectorySpec, sim: &mut Facts) -> Result<Action, String> {
    let want = mode_of(&d.mode);
    let action = match sim.path(&d.path).clone() {
        PathFact::Absent => change(
            format!("create {}", d.path),
            ops::ensure_directory(&d.path, &d.owner, &d.group, &d.mode),
        ),
        PathFact::Dir { owner, group, mode } => {
            match drift(&owner, &group, mode, &d.owner, &d.group, want) {
                None => Action::Unchanged(format!(
                    "{} is a directory with the right owner and mode",
                    d.path
                )),
                Some(what) => change(
                    format!("fix {}: {what}", d.path),
                    ops::set_owner_mode(&d.path, &d.owner, &d.group, &d.mode),
                ),
            }
        }
        other => {
            return Err(format!(
                "{} exists but is not a directory ({other:?}); move it away and run again",
                d.path
            ))
        }
    };
    sim.paths.insert(
        d.path.clone(),
        PathFact::Dir {
            owner: d.owner.clone(),
            group: d.group.clone(),
            mode: want,
        },
    );
    Ok(action)
}

fn file(
    f: &FileSpec,
    content: &str,
    sim: &mut Facts,
    opts: &PlanOptions,
) -> Result<Action, String> {
    let sha = hex::encode(Sha256::digest(content.as_bytes()));
    let want = mode_of(&f.mode);
    let write = |reason: String, sim: &Facts| {
        let diff = opts.diff.then(|| {
            let old = sim.contents.get(&f.path).cloned().flatten();
            unified(&f.path, old.as_deref(), content, f.secret, &opts.redactor)
        });
        Action::Change(Change {
            reason,
            script: ops::write_file(&f.path, &f.owner, &f.group, &f.mode),
            stdin: Some(Payload::Bytes(content.as_bytes().to_vec())),
            diff,
            starts_service: None,
        })
    };
    let action = match sim.path(&f.path).clone() {
        PathFact::Absent => write(format!("create {}", f.path), sim),
        PathFact::File {
            owner,
            group,
            mode,
            sha256,
        } if sha256 != sha => {
            let _ = (owner, group, mode);
            write(format!("update {} (content differs)", f.path), sim)
        }
        PathFact::File {
            owner, group, mode, ..
        } => match drift(&owner, &group, mode, &f.owner, &f.group, want) {
            None => Action::Unchanged(format!("{} is up to date", f.path)),
            Some(what) => change(
                format!("fix {}: {what}", f.path),
                ops::set_owner_mode(&f.path, &f.owner, &f.group, &f.mode),
            ),
        },
        PathFact::Link { target } => write(
            format!("replace symlink {} (-> {target}) with a file", f.path),
            sim,
        ),
        other => {
            return Err(format!(
                "{} exists but is not a regular file ({other:?}); move it away and run again",
                f.path
            ))
        }
    };
    sim.paths.insert(
        f.path.clone(),
        PathFact::File {
            owner: f.owner.clone(),
            group: f.group.clone(),
            mode: want,
            sha256: sha,
        },
    );
    sim.contents
        .insert(f.path.clone(), Some(content.to_string()));
    Ok(action)
}

/// A file whose content is a verified file in the controller's cache, known by its SHA-256:
/// unchanged when the node holds it (the marker its install wrote names that SHA-256, and the
/// file is there) with the right owner and mode; otherwise streamed and checked again on the
/// node before it is renamed into place. The marker stands in for hashing the file on every
/// run, as `.sparkboot-sha512` does for the Spark tree; both sit in root-owned directories.
fn pushed_file(
    f: &FileSpec,
    sha256: &str,
    sim: &mut Facts,
    opts: &PlanOptions,
) -> Result<Action, String> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "pushed {sha256:?} is not a SHA-256 (64 hex digits)"
        ));
    }
    let want = mode_of(&f.mode);
    let marker = pushed_marker(&f.path);
    let recorded = sim.contents.get(&marker).cloned().flatten();
    let recorded = recorded
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let write = |reason: String| -> Result<Action, String> {
        let local = opts.pushed.get(sha256).ok_or_else(|| {
            format!(
                "no verified local copy of {} (sha256 {sha256}) on the controller",
                f.path
            )
        })?;
        Ok(Action::Change(Change {
            reason,
            script: ops::write_verified_file(&f.path, &f.owner, &f.group, &f.mode, sha256),
            stdin: Some(Payload::LocalFile(local.clone())),
            diff: None,
            starts_service: None,
        }))
    };
    let short = &sha256[..16];
    let action = match sim.path(&f.path).clone() {
        PathFact::Absent => write(format!(
            "install {} (sha256 {short}…) from the controller's verified copy",
            f.path
        ))?,
        PathFact::File { .. } if recorded != sha256 => write(format!(
            "replace {} ({}) with the controller's verified copy (sha256 {short}…)",
            f.path,
            match recorded.get(..16) {
                Some(r) if !r.is_empty() => format!("installed as sha256 {r}…"),
                _ => "not installed by sparkboot".to_string(),
            }
        ))?,
        PathFact::File {
            owner, group, mode, ..
        } => match drift(&owner, &group, mode, &f.owner, &f.group, want) {
            None => Action::Unchanged(format!(
                "{} holds the verified file (sha256 {short}…)",
                f.path
            )),
            Some(what) => change(
                format!("fix {}: {what}", f.path),
                ops::set_owner_mode(&f.path, &f.owner, &f.group, &f.mode),
            ),
        },
        PathFact::Link { target } => write(format!(
            "replace symlink {} (-> {target}) with the controller's verified copy",
            f.path
        ))?,
        other => {
            return Err(format!(
                "{} exists but is not a regular file ({other:?}); move it away and run again",
                f.path
            ))
        }
    };
    sim.paths.insert(
        f.path.clone(),
        PathFact::File {
            owner: f.owner.clone(),
            group: f.group.clone(),
            mode: want,
            sha256: String::new(),
        },
    );
    sim.contents.insert(marker, Some(format!("{sha256}\n")));
    Ok(action)
}

fn download(d: &DownloadSpec, sim: &mut Facts, opts: &PlanOptions) -> Result<Action, String> {
    if d.sha512.len() != 128 || !d.sha512.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("sha512 {:?} is not 128 hex digits", d.sha512));
    }
    let marker = marker(&d.dest);
    let installed = sim.contents.get(&marker).cloned().flatten();
    if installed.as_deref().map(str::trim) == Some(d.sha512.as_str()) {
        return Ok(Action::Unchanged(format!(
            "{} holds the verified archive (sha512 {}…)",
            d.dest,
            &d.sha512[..16]
        )));
    }
    if d.source != "url" && d.source != "push" {
        return Err(format!(
            "download source {:?} must be \"url\" or \"push\"",
            d.source
        ));
    }
    let (stdin, from_stdin) = if d.source == "push" {
        let local = opts.pushed.get(&d.sha512).ok_or_else(|| {
            format!(
                "push mode: no verified local copy of {} with that sha512",
                d.url
            )
        })?;
        (Some(Payload::LocalFile(local.clone())), true)
    } else {
        // The node reads the URL from stdin, so it is never part of a command line.
        (
            Some(Payload::Bytes(format!("{}\n", d.url).into_bytes())),
            false,
        )
    };
    let reason = match installed {
        // The URL may be a secret (a presigned S3 URL in the s3 distribution mode).
        None => opts.redactor.redact(&format!(
            "download {} into {} and verify its sha512",
            d.url, d.dest
        )),
        Some(_) => format!(
            "reinstall {}: the installed archive's checksum differs",
            d.dest
        ),
    };
    invalidate_below(sim, &d.dest);
    sim.contents.insert(marker, Some(d.sha512.clone()));
    sim.paths.insert(
        d.dest.clone(),
        PathFact::Dir {
            owner: d.owner.clone(),
            group: d.group.clone(),
            mode: 0o755,
        },
    );
    Ok(Action::Change(Change {
        reason,
        script: ops::download_unpack(&d.sha512, &d.dest, &d.owner, &d.group, from_stdin),
        stdin,
        diff: None,
        starts_service: None,
    }))
}

fn symlink(l: &SymlinkSpec, sim: &mut Facts) -> Result<Action, String> {
    let action = match sim.path(&l.path).clone() {
        PathFact::Link { target } if target == l.target => {
            return Ok(Action::Unchanged(format!("{} -> {}", l.path, l.target)))
        }
        PathFact::Link { target } => change(
            format!("repoint {} from {target} to {}", l.path, l.target),
            ops::symlink(&l.path, &l.target),
        ),
        PathFact::Absent => change(
            format!("link {} -> {}", l.path, l.target),
            ops::symlink(&l.path, &l.target),
        ),
        other => {
            return Err(format!(
                "{} exists and is not a symlink ({other:?}); move it away and run again",
                l.path
            ))
        }
    };
    invalidate_below(sim, &l.path);
    sim.paths.insert(
        l.path.clone(),
        PathFact::Link {
            target: l.target.clone(),
        },
    );
    Ok(action)
}

fn authorized_key(
    k: &AuthorizedKeySpec,
    sim: &mut Facts,
    opts: &PlanOptions,
) -> Result<Action, String> {
    if !matches!(sim.users.get(&k.user), Some(Some(_))) {
        return Err(format!(
            "user {} does not exist; create it in an earlier step",
            k.user
        ));
    }
    let looks_like_key = ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| k.key.trim_start().starts_with(p));
    if !looks_like_key {
        if opts.check {
            // Check mode on a fresh cluster: the key is generated on the master at apply time.
            return Ok(change(
                format!("authorize {} for {} (known once applied)", k.key, k.user),
                String::new(),
            ));
        }
        return Err(format!(
            "{:?} is not a public key line; was it generated on the master?",
            k.key
        ));
    }
    if k.tag.is_empty() || k.tag.contains(char::is_whitespace) {
        return Err(format!("tag {:?} must be one word", k.tag));
    }
    let wanted = [k.options.trim(), k.key.trim(), k.tag.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let current = sim
        .authorized_keys
        .get(&k.user)
        .cloned()
        .flatten()
        .unwrap_or_default();
    let owns = |line: &str| line.split_whitespace().last() == Some(k.tag.as_str());
    let mut kept: Vec<&str> = current.lines().filter(|l| !owns(l)).collect();
    let ours: Vec<&str> = current.lines().filter(|l| owns(l)).collect();
    if ours == [wanted.as_str()] {
        return Ok(Action::Unchanged(format!(
            "{}'s authorized_keys holds the key tagged {}",
            k.user, k.tag
        )));
    }
    let removed = ours.iter().filter(|l| **l != wanted).count();
    kept.push(&wanted);
    let new = format!("{}\n", kept.join("\n"));
    sim.authorized_keys
        .insert(k.user.clone(), Some(new.clone()));
    let reason = if removed > 0 {
        format!(
            "replace {removed} stale key(s) tagged {} in {}'s authorized_keys",
            k.tag, k.user
        )
    } else {
        format!("authorize the key tagged {} for {}", k.tag, k.user)
    };
    Ok(Action::Change(Change {
        reason,
        script: ops::write_authorized_keys(&k.user),
        stdin: Some(Payload::Bytes(new.into_bytes())),
        diff: None,
        starts_service: None,
    }))
}

/// The script that starts a service, by systemd where it runs, else by the fallback command.
pub fn start_script(s: &ServiceSpec, systemd: bool) -> String {
    match (&s.systemd_unit, systemd) {
        (Some(unit), true) => ops::systemd_start(unit),
        _ => ops::start_service(&s.user, &s.start, &s.pidfile, s.cmdline_match.as_deref()),
    }
}

pub fn restart_script(s: &ServiceSpec, systemd: bool) -> String {
    match (&s.systemd_unit, systemd) {
        (Some(unit), true) => ops::systemd_restart(unit),
        _ => ops::restart_service(
            &s.user,
            &s.stop,
            &s.start,
            &s.pidfile,
            s.cmdline_match.as_deref(),
        ),
    }
}

/// The script that stops a service (and disables its unit where systemd runs).
pub fn stop_script(s: &ServiceSpec, systemd: bool) -> String {
    match (&s.systemd_unit, systemd) {
        (Some(unit), true) => ops::systemd_stop(unit),
        _ => ops::stop_service(&s.user, &s.stop, &s.pidfile, s.cmdline_match.as_deref()),
    }
}

fn service(s: &ServiceSpec, sim: &mut Facts) -> Action {
    let fact = sim.services.get(&s.name).cloned().unwrap_or(ServiceFact {
        running: false,
        pid: None,
    });
    if s.state == ServiceState::Stopped {
        if !fact.running {
            return Action::Unchanged(format!("{} is stopped", s.name));
        }
        sim.services.insert(
            s.name.clone(),
            ServiceFact {
                running: false,
                pid: None,
            },
        );
        return Action::Change(Change {
            reason: format!(
                "stop {} (running, pid {})",
                s.name,
                fact.pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            script: stop_script(s, sim.system.systemd),
            stdin: None,
            diff: None,
            starts_service: None,
        });
    }
    if fact.running {
        return Action::Unchanged(format!(
            "{} is running (pid {})",
            s.name,
            fact.pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    sim.services.insert(
        s.name.clone(),
        ServiceFact {
            running: true,
            pid: None,
        },
    );
    Action::Change(Change {
        reason: format!("start {} (not running)", s.name),
        script: start_script(s, sim.system.systemd),
        stdin: None,
        diff: None,
        starts_service: Some(s.name.clone()),
    })
}

fn command(c: &CommandSpec, sim: &mut Facts) -> Action {
    if let Some(p) = &c.creates {
        if !matches!(sim.path(p), PathFact::Absent) {
            return Action::Unchanged(format!("{p} exists"));
        }
    }
    if let Some(g) = &c.unless {
        if sim.guards.get(g) == Some(&0) {
            return Action::Unchanged(format!("guard `{g}` succeeded"));
        }
    }
    if let Some(p) = &c.creates {
        sim.paths.insert(p.clone(), PathFact::Other);
    }
    change(
        format!("run `{}`", c.run.lines().next().unwrap_or_default()),
        ops::command(&c.user, &c.run),
    )
}
