//! Per-host evaluation: `when` conditions, tera rendering of string fields and templates.
//!
//! The raw role structs stay as written; this produces the evaluated [`Step`]s a planner can
//! use, with every template already rendered and the "managed by sparkboot" header added.

use std::collections::BTreeMap;

use serde_json::Value;
use tera::{Context, Tera};

use super::model::*;
use super::{Library, Role, RoleError};

/// A step ready to plan: rendered, with its resource and where it came from. A file's content
/// is final (template rendered, header added) in `FileSpec::content`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub role: String,
    pub phase: u32,
    pub name: String,
    pub notify: Vec<String>,
    pub resource: Resource,
}

/// What evaluation needs besides the roles: the templates, compiled once per run.
pub struct EvalContext {
    tera: Tera,
}

pub const HEADER: &str = "Managed by sparkboot: local edits are overwritten by the next converge.";

impl EvalContext {
    /// Compiles every template the roles reference; a missing or broken one fails here, before
    /// any host is contacted.
    pub fn new(library: &Library, roles: &[Role]) -> Result<Self, RoleError> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        register_filters(&mut tera);
        for role in roles {
            for step in &role.data.steps {
                let Resource::File(FileSpec {
                    template: Some(name),
                    ..
                }) = &step.resource
                else {
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

/// Renders every string inside `value` (a serialized resource) in place.
fn render_strings(value: &mut Value, ctx: &Context) -> Result<(), String> {
    match value {
        Value::String(s) => *s = render(s, ctx)?,
        Value::Array(items) => {
            for v in items {
                render_strings(v, ctx)?;
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                render_strings(v, ctx)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Renders a resource as written into the one the planner reads: every string field through
/// tera, a file's template into its content.
fn render_resource(eval: &EvalContext, raw: &Resource, ctx: &Context) -> Result<Resource, String> {
    let mut value = serde_json::to_value(raw).map_err(|e| e.to_string())?;
    render_strings(&mut value, ctx)?;
    let mut resource: Resource =
        serde_json::from_value(value).map_err(|e| format!("after rendering: {e}"))?;
    if let Resource::File(f) = &mut resource {
        if let Some(sha) = &mut f.pushed {
            // Bytes from the controller's cache, not text: no header, nothing to render.
            *sha = sha.to_ascii_lowercase();
            return Ok(resource);
        }
        let body = match f.template.take() {
            Some(name) => eval
                .tera
                .render(&name, ctx)
                .map_err(|e| format!("template {name}: {}", tera_message(&e)))?,
            None => f.content.take().unwrap_or_default(),
        };
        f.content = Some(with_header(body, &f.comment));
    }
    if let Resource::Download(d) = &mut resource {
        d.sha512 = d.sha512.to_ascii_lowercase();
    }
    Ok(resource)
}

fn tera_context(context: &Value, host_name: &str) -> Result<Context, RoleError> {
    Context::from_value(context.clone()).map_err(|e| RoleError::Render {
        role: "(context)".into(),
        step: String::new(),
        host: host_name.to_string(),
        message: e.to_string(),
    })
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
    let ctx = tera_context(context, host_name)?;
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
            steps.push(Step {
                role: role.name.clone(),
                phase: role.data.phase,
                name: render(&raw.name, &ctx).map_err(&fail)?,
                notify: raw.notify.clone(),
                resource: render_resource(eval, &raw.resource, &ctx).map_err(&fail)?,
            });
        }
    }
    Ok((steps, skipped))
}

/// The exports of the roles in `phase` (every phase with `None`), their paths rendered with
/// `context`: (name, path on the master).
pub fn exports(
    roles: &[Role],
    phase: Option<u32>,
    context: &Value,
) -> Result<Vec<(String, String)>, RoleError> {
    let ctx = tera_context(context, "master")?;
    roles
        .iter()
        .filter(|r| phase.is_none_or(|p| p == r.data.phase))
        .flat_map(|r| r.data.exports.iter().map(move |e| (r, e)))
        .map(|(r, e)| {
            let path = render(&e.path, &ctx).map_err(|message| RoleError::Render {
                role: r.name.clone(),
                step: format!("export {}", e.name),
                host: "master".into(),
                message,
            })?;
            Ok((e.name.clone(), path))
        })
        .collect()
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
    fn shell_quote_applies_to_a_whole_concatenation() {
        // roles/spark quotes `a ~ '/b' ~ c | shell_quote` as one path.
        let ctx = Context::from_value(serde_json::json!({"d": "/opt/my dir", "v": "3.5.0"}))
            .expect("ctx");
        assert_eq!(
            render("{{ d ~ '/jars/h-' ~ v ~ '.jar' | shell_quote }}", &ctx).expect("renders"),
            "'/opt/my dir/jars/h-3.5.0.jar'"
        );
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
