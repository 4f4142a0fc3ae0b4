//! Per-host evaluation: `when` conditions, tera rendering of string fields and templates.
//!
//! The raw role structs stay as written; this produces the evaluated [`Step`]s a planner can
//! use, with every template already rendered and the "managed by sparkboot" header added.

use std::collections::BTreeMap;

use serde_json::Value;
use tera::{Context, Tera};

use super::model::*;
use super::{Library, Role, RoleError};

/// A step ready to plan: rendered, with its resource and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub role: String,
    pub phase: u32,
    pub name: String,
    pub notify: Vec<String>,
    pub resource: Resource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Package(PackageSpec),
    Group(GroupSpec),
    User(UserSpec),
    Directory(DirectorySpec),
    File { spec: FileSpec, content: String },
    Download(DownloadSpec),
    Symlink(SymlinkSpec),
    AuthorizedKey(AuthorizedKeySpec),
    Service(ServiceSpec),
    Command(CommandSpec),
}

/// What evaluation needs besides the roles: the templates, compiled once per run.
pub struct EvalContext {
    tera: Tera,
}

pub const HEADER: &str = "Managed by sparkboot: local edits are overwritten by the next converge.";

impl EvalContext {
    /// For commands that evaluate no roles (`exec`).
    pub fn empty() -> Self {
        EvalContext {
            tera: Tera::default(),
        }
    }

    /// Compiles every template the roles reference; a missing or broken one fails here, before
    /// any host is contacted.
    pub fn new(library: &Library, roles: &[Role]) -> Result<Self, RoleError> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        register_filters(&mut tera);
        for role in roles {
            for step in &role.data.steps {
                let Some(name) = step.file.as_ref().and_then(|f| f.template.as_ref()) else {
                    continue;
                };
                if tera.get_template_names().any(|n| n == name) {
                    continue;
                }
                let text = library.template_text(name)?;
                tera.add_raw_template(name, &text)
                    .map_err(|e| RoleError::Invalid {
                        file: format!("templates/{name}"),
                        step: step.name.clone(),
                        message: tera_message(&e),
                    })?;
            }
        }
        Ok(EvalContext { tera })
    }
}

/// Tera hides the useful part of an error in its source chain.
fn tera_message(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// `{{ value | shell_quote }}`: one word for a POSIX shell (or a file a shell sources, such as
/// spark-env.sh), quoted by the same function that quotes every script sparkboot sends.
fn shell_quote(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let word = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Number(n) => n.to_string(),
        tera::Value::Bool(b) => b.to_string(),
        other => {
            return Err(tera::Error::msg(format!(
                "shell_quote takes a string, number or boolean, not {other}"
            )))
        }
    };
    Ok(tera::Value::String(crate::shell::quote(&word)))
}

fn register_filters(tera: &mut Tera) {
    tera.register_filter("shell_quote", shell_quote);
}

fn render(s: &str, ctx: &Context) -> Result<String, String> {
    if !s.contains("{{") && !s.contains("{%") {
        return Ok(s.to_string());
    }
    let mut tera = Tera::default();
    register_filters(&mut tera);
    tera.render_str(s, ctx).map_err(|e| tera_message(&e))
}

fn with_header(content: String, comment: &str) -> String {
    if comment.is_empty() {
        return content;
    }
    let header = format!("{comment} {HEADER}\n");
    match content.strip_prefix("#!") {
        // Keep a shebang on the first line.
        Some(rest) => {
            let (first, body) = rest.split_once('\n').unwrap_or((rest, ""));
            format!("#!{first}\n{header}{body}")
        }
        None => format!("{header}{content}"),
    }
}

/// Which steps to evaluate: one phase or all, and whether `when` conditions count (the probe
/// listing ignores them, so a condition on a fact cannot hide what the probe must look at).
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub phase: Option<u32>,
    pub ignore_when: bool,
}

/// Evaluates the roles for one host. `context` is the host's template context (host, facts,
/// inventory, vars); `node_role` picks which roles apply. Returns the steps and how many were
/// skipped by their `when`.
pub fn evaluate(
    eval: &EvalContext,
    roles: &[Role],
    node_role: &str,
    host_name: &str,
    context: &Value,
    filter: Filter,
) -> Result<(Vec<Step>, u32), RoleError> {
    let ctx = Context::from_value(context.clone()).map_err(|e| RoleError::Render {
        role: "(context)".into(),
        step: String::new(),
        host: host_name.to_string(),
        message: e.to_string(),
    })?;
    let mut steps = Vec::new();
    let mut skipped = 0;
    let applies = |r: &&Role| {
        r.data.hosts.iter().any(|h| h == node_role)
            && filter.phase.is_none_or(|p| p == r.data.phase)
    };
    for role in roles.iter().filter(applies) {
        for raw in &role.data.steps {
            let fail = |message: String| RoleError::Render {
                role: role.name.clone(),
                step: raw.name.clone(),
                host: host_name.to_string(),
                message,
            };
            if let Some(cond) = raw.when.as_ref().filter(|_| !filter.ignore_when) {
                let verdict = render(
                    &format!("{{% if {cond} %}}true{{% else %}}false{{% endif %}}"),
                    &ctx,
                )
                .map_err(&fail)?;
                if verdict != "true" {
                    skipped += 1;
                    continue;
                }
            }
            let r = |s: &String| render(s, &ctx).map_err(&fail);
            let ro = |s: &Option<String>| {
                s.as_ref()
                    .map(|v| render(v, &ctx))
                    .transpose()
                    .map_err(&fail)
            };
            let rv = |v: &Vec<String>| {
                v.iter()
                    .map(|s| render(s, &ctx))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(&fail)
            };
            let resource = if let Some(p) = &raw.package {
                Resource::Package(PackageSpec {
                    apt: rv(&p.apt)?,
                    dnf: rv(&p.dnf)?,
                })
            } else if let Some(g) = &raw.group {
                Resource::Group(GroupSpec {
                    name: r(&g.name)?,
                    system: g.system,
                })
            } else if let Some(u) = &raw.user {
                Resource::User(UserSpec {
                    name: r(&u.name)?,
                    group: ro(&u.group)?,
                    system: u.system,
                    home: ro(&u.home)?,
                    shell: ro(&u.shell)?,
                })
            } else if let Some(d) = &raw.directory {
                Resource::Directory(DirectorySpec {
                    path: r(&d.path)?,
                    owner: r(&d.owner)?,
                    group: r(&d.group)?,
                    mode: d.mode.clone(),
                })
            } else if let Some(f) = &raw.file {
                let body = match (&f.template, &f.content) {
                    (Some(name), _) => eval
                        .tera
                        .render(name, &ctx)
                        .map_err(|e| fail(format!("template {name}: {}", tera_message(&e))))?,
                    (None, Some(c)) => r(c)?,
                    (None, None) => String::new(),
                };
                let spec = FileSpec {
                    path: r(&f.path)?,
                    owner: r(&f.owner)?,
                    group: r(&f.group)?,
                    ..f.clone()
                };
                Resource::File {
                    content: with_header(body, &f.comment),
                    spec,
                }
            } else if let Some(d) = &raw.download {
                Resource::Download(DownloadSpec {
                    url: r(&d.url)?,
                    sha512: r(&d.sha512)?.to_ascii_lowercase(),
                    dest: r(&d.dest)?,
                    owner: r(&d.owner)?,
                    group: r(&d.group)?,
                    source: r(&d.source)?,
                })
            } else if let Some(l) = &raw.symlink {
                Resource::Symlink(SymlinkSpec {
                    path: r(&l.path)?,
                    target: r(&l.target)?,
                })
            } else if let Some(k) = &raw.authorized_key {
                Resource::AuthorizedKey(AuthorizedKeySpec {
                    user: r(&k.user)?,
                    key: r(&k.key)?,
                    options: r(&k.options)?,
                    tag: r(&k.tag)?,
                })
            } else if let Some(s) = &raw.service {
                Resource::Service(ServiceSpec {
                    name: r(&s.name)?,
                    user: r(&s.user)?,
                    start: r(&s.start)?,
                    stop: r(&s.stop)?,
                    pidfile: r(&s.pidfile)?,
                    cmdline_match: ro(&s.cmdline_match)?,
                    systemd_unit: ro(&s.systemd_unit)?,
                })
            } else if let Some(c) = &raw.command {
                Resource::Command(CommandSpec {
                    run: r(&c.run)?,
                    creates: ro(&c.creates)?,
                    unless: ro(&c.unless)?,
                    user: r(&c.user)?,
                })
            } else {
                return Err(fail("names no resource".into()));
            };
            steps.push(Step {
                role: role.name.clone(),
                phase: role.data.phase,
                name: r(&raw.name)?,
                notify: raw.notify.clone(),
                resource,
            });
        }
    }
    Ok((steps, skipped))
}

/// Handler name -> the service it restarts, across the loaded roles.
pub fn handler_map(roles: &[Role]) -> BTreeMap<String, String> {
    roles
        .iter()
        .flat_map(|r| {
            r.data
                .handlers
                .iter()
                .map(|h| (h.name.clone(), h.restart.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_goes_after_a_shebang() {
        let out = with_header("#!/bin/sh\necho hi\n".into(), "#");
        assert!(
            out.starts_with("#!/bin/sh\n# Managed by sparkboot"),
            "{out}"
        );
        assert!(out.ends_with("echo hi\n"));
        assert_eq!(with_header("x\n".into(), ""), "x\n");
    }

    #[test]
    fn strict_undefined_variables_fail() {
        let ctx = Context::from_value(serde_json::json!({"vars": {}})).expect("ctx");
        let err = render("{{ vars.missing }}", &ctx).expect_err("undefined");
        assert!(err.contains("missing"), "{err}");
        assert_eq!(render("plain", &ctx).expect("plain"), "plain");
    }

    #[test]
    fn shell_quote_makes_one_word_the_shell_reads_back() {
        let ctx =
            Context::from_value(serde_json::json!({"v": "a b'$(id)\n;x", "n": 7})).expect("ctx");
        let line = render(
            "printf '%s|' {{ v | shell_quote }} {{ n | shell_quote }}",
            &ctx,
        )
        .expect("renders");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b'$(id)\n;x|7|");
    }
}
