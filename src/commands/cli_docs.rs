//! `sparkboot completions SHELL` and `sparkboot man`: shell completion scripts and the manual
//! page, both generated at run time from the clap definitions in `cli`, so neither can drift
//! from the flags the binary actually takes (clap's own `clap_complete` and `clap_mangen`).
//!
//! **One manual page, not one per command.** `sparkboot man` prints sparkboot(1) with a
//! COMMANDS section that holds every visible command and sub-command (`lab up`,
//! `known-hosts forget`, ...) as a subsection with its synopsis, description and own options,
//! and the flags every cluster command shares listed once under COMMON OPTIONS. So installing
//! is one redirect to one file, `man sparkboot` then `/converge` finds any command, and the
//! shared flags are not repeated ten times. clap_mangen's own per-command pages
//! (`sparkboot-converge(1)`, ...) would need a directory of files and `generate_to`; for a tool
//! of this size one page reads better. The page is built from clap_mangen's section renderers,
//! with their section headings turned into subsections here.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_mangen::Man;

use crate::cli::{Cli, CommonArgs};
use crate::error::{Error, EXIT_CODES};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Error> {
    print(&completion_script(shell))
}

/// Prints the roff source of sparkboot(1) on stdout.
pub fn man() -> Result<ExitCode, Error> {
    print(man_page().as_bytes())
}

/// The command tree a person sees: `Cli` without its hidden commands (`lab-init`), which
/// clap_complete would otherwise offer (its bash script lists hidden sub-commands). clap cannot
/// remove a sub-command, so the root is rebuilt around the visible ones; the root has no
/// arguments of its own besides help and version. Only top-level commands are hidden (a test
/// checks that).
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut root = clap::Command::new("sparkboot")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(full.is_subcommand_required_set())
        .arg_required_else_help(full.is_arg_required_else_help_set());
    if let Some(about) = full.get_about() {
        root = root.about(about.clone());
    }
    if let Some(long) = full.get_long_about() {
        root = root.long_about(long.clone());
    }
    root.subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// The completion script for `shell`, as bytes (what `clap_complete` writes).
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = visible_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sparkboot", &mut out);
    out
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) ends the output quietly.
fn print(bytes: &[u8]) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Error::Stdout(e)),
    }
}

/// Rendering into a `Vec` cannot fail; the `io::Result` of the renderers is only their signature.
fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec<u8> never fails.
    let _ = f(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The roff crate starts every rendered piece with a preamble that defines `\*(Aq`; the page
/// keeps it once, at the top.
fn is_preamble(line: &str) -> bool {
    line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")
}

/// A rendered piece without the preamble.
fn without_preamble(roff: &str) -> String {
    roff.lines()
        .filter(|l| !is_preamble(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A section's body: its roff without the preamble and without its `.SH` heading lines, which
/// the page replaces with its own (sub)headings.
fn body(roff: &str) -> String {
    without_preamble(roff)
        .lines()
        .filter(|l| !l.starts_with(".SH"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The ids of the flags every cluster command shares (`CommonArgs`).
fn common_ids() -> BTreeSet<String> {
    CommonArgs::augment_args(clap::Command::new("common"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The whole manual page, sparkboot(1), as roff.
pub fn man_page() -> String {
    let mut root = visible_command().disable_help_subcommand(true);
    root.build();
    let man = Man::new(root.clone());
    // The title keeps the preamble; every later piece is added without it.
    let mut page = render(|w| man.render_title(w));
    page.push_str(&without_preamble(&render(|w| man.render_name_section(w))));
    page.push_str(&without_preamble(&render(|w| {
        man.render_synopsis_section(w)
    })));
    page.push_str(&without_preamble(&render(|w| {
        man.render_description_section(w)
    })));
    page.push_str(
        ".PP\nEvery command is described under COMMANDS below; the options that every command \
         which reads a cluster takes are listed once, under COMMON OPTIONS. Every command also \
         takes \\fB\\-h\\fR (a summary) and \\fB\\-\\-help\\fR.\n",
    );

    let common = common_ids();
    page.push_str(".SH \"COMMON OPTIONS\"\n");
    let shared = CommonArgs::augment_args(clap::Command::new("sparkboot")).disable_help_flag(true);
    page.push_str(&body(&render(|w| {
        Man::new(shared).render_options_section(w)
    })));

    page.push_str(".SH COMMANDS\n");
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(&mut page, sub, &common, None);
    }

    page.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_CODES {
        page.push_str(&format!(".TP\n{code}\n{}\n", escape(meaning)));
    }
    page.push_str(&without_preamble(&render(|w| {
        man.render_version_section(w)
    })));
    page
}

/// One command's subsection (and its own sub-commands' after it): synopsis, description and
/// the options listed nowhere else. `inherited` are the global flags of `parent`, which its
/// subsection already lists.
fn command_section(
    page: &mut String,
    cmd: &clap::Command,
    common: &BTreeSet<String>,
    parent: Option<(&str, &BTreeSet<String>)>,
) {
    let name = cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let ids: BTreeSet<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    // A command that flattens `CommonArgs` has every one of them (`lab status --json` is its
    // own flag, not the common one).
    let takes_common = common.iter().all(|id| ids.contains(id));
    let mut listed_elsewhere: BTreeSet<String> = BTreeSet::from(["help".to_string()]);
    if takes_common {
        listed_elsewhere.extend(common.iter().cloned());
    }
    if let Some((_, inherited)) = parent {
        listed_elsewhere.extend(inherited.iter().cloned());
    }
    let mut own = cmd.clone();
    for id in listed_elsewhere.iter().filter(|id| ids.contains(*id)) {
        own = own.mut_arg(id.as_str(), |a| a.hide(true));
    }
    let man = Man::new(own.clone());
    page.push_str(&format!(".SS \"{}\"\n", escape(&name)));
    page.push_str(&body(&render(|w| man.render_synopsis_section(w))));
    page.push_str(".PP\n");
    page.push_str(&body(&render(|w| man.render_description_section(w))));
    if own.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&body(&render(|w| man.render_options_section(w))));
    }
    if takes_common {
        page.push_str(".PP\nAlso takes the COMMON OPTIONS.\n");
    } else if let Some((parent_name, inherited)) = parent {
        if !inherited.is_empty() {
            page.push_str(&format!(
                ".PP\nAlso takes the options of {}.\n",
                escape(parent_name)
            ));
        }
    }
    // What this command passes down to its sub-commands (and what its parent passed to it).
    let globals: BTreeSet<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set() && a.get_id() != "help")
        .map(|a| a.get_id().to_string())
        .filter(|id| !(takes_common && common.contains(id)))
        .collect();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(page, sub, common, Some((&name, &globals)));
    }
}

/// Text for a roff text line: a leading dot or quote would be read as a request, and a
/// backslash as an escape.
fn escape(s: &str) -> String {
    let s = s.replace('\\', "\\e");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible command path: `["converge"]`, `["lab", "up"]`, ...
    fn command_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            command_paths(sub, &path, out);
        }
    }

    fn all_paths() -> Vec<Vec<String>> {
        let mut out = Vec::new();
        command_paths(&Cli::command(), &[], &mut out);
        out
    }

    #[test]
    fn the_man_page_has_a_subsection_for_every_command_and_none_for_hidden_ones() {
        let page = man_page();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert_eq!(page.matches(".ie \\n(.g .ds Aq").count(), 1, "one preamble");
        assert!(page.contains("\n.TH sparkboot 1 "), "{page}");
        let paths = all_paths();
        assert!(paths.len() >= 18, "{paths:?}");
        for path in paths {
            let heading = format!(".SS \"sparkboot {}\"\n", path.join(" "));
            assert_eq!(page.matches(&heading).count(), 1, "{heading} in\n{page}");
        }
        assert!(!page.contains("lab-init"), "the hidden command is left out");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH \"COMMON OPTIONS\"",
            ".SH COMMANDS",
            ".SH \"EXIT STATUS\"",
        ] {
            assert_eq!(page.matches(section).count(), 1, "{section}");
        }
    }

    #[test]
    fn shared_flags_are_listed_once_and_own_flags_under_their_command() {
        let page = man_page();
        // --strict is a common option (one entry); converge's --wait, watch's --interval and
        // lab's --dir are their command's own.
        assert_eq!(page.matches("\\-\\-strict").count(), 1, "{page}");
        assert_eq!(
            page.matches("\\-\\-dir").count(),
            2,
            "lab's synopsis and entry"
        );
        let converge = &page[page.find(".SS \"sparkboot converge\"").unwrap_or(0)..];
        let converge = &converge[..converge.find("\n.SS").unwrap_or(converge.len())];
        assert!(converge.contains("\\-\\-wait"), "{converge}");
        assert!(
            converge.contains("Also takes the COMMON OPTIONS."),
            "{converge}"
        );
        // `lab status --json` is its own flag, not the common one.
        let status = &page[page.find(".SS \"sparkboot lab status\"").unwrap_or(0)..];
        let status = &status[..status.find("\n.SS").unwrap_or(status.len())];
        assert!(status.contains("\\-\\-json"), "{status}");
        assert!(!status.contains("COMMON OPTIONS"), "{status}");
        assert!(
            status.contains("Also takes the options of sparkboot lab."),
            "{status}"
        );
    }

    #[test]
    fn exit_status_lists_every_documented_code() {
        let page = man_page();
        let codes: Vec<u8> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, (0..=6).collect::<Vec<u8>>());
        for (code, _) in EXIT_CODES {
            assert!(page.contains(&format!(".TP\n{code}\n")), "{code}");
        }
    }

    #[test]
    fn every_shell_gets_a_script_naming_every_command() {
        let paths = all_paths();
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let script = String::from_utf8(completion_script(shell)).unwrap_or_default();
            for path in &paths {
                let last = path.last().map(String::as_str).unwrap_or_default();
                assert!(script.contains(last), "{shell}: {last}");
            }
            assert!(
                !script.contains("lab-init"),
                "{shell}: hidden command offered"
            );
        }
    }

    #[test]
    fn only_top_level_commands_are_hidden() {
        fn check(cmd: &clap::Command, depth: usize) {
            for sub in cmd.get_subcommands() {
                assert!(
                    depth == 0 || !sub.is_hide_set(),
                    "{} is hidden below the top level: teach visible_command to drop it",
                    sub.get_name()
                );
                check(sub, depth + 1);
            }
        }
        check(&Cli::command(), 0);
        let visible = visible_command();
        assert!(visible.get_subcommands().all(|s| !s.is_hide_set()));
        assert_eq!(visible.get_version(), Cli::command().get_version());
    }

    #[test]
    fn roff_text_lines_cannot_become_requests() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("'quote"), "\\&'quote");
        assert_eq!(escape("a\\b"), "a\\eb");
        assert_eq!(escape("plain"), "plain");
    }
}
