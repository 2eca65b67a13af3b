//! `docs/configuration.md`, rendered from the code: every flag of every
//! command from the clap definitions ([`super::Cli`]), every key of the
//! configuration file from [`crate::config::schema`]. The test below fails
//! when the file in the repository is not what the code renders; it
//! rewrites the file when run with `UPDATE_DOCS=1`.

use crate::config::schema::{Key, KeyDefault, Scope, ENVIRONMENT, KEYS};
use clap::CommandFactory;
use std::fmt::Write;

/// The file, relative to the repository.
pub const CONFIGURATION_MD: &str = "docs/configuration.md";

/// How to bring the file up to date.
pub const REGENERATE: &str = "UPDATE_DOCS=1 cargo test --lib cli::docs";

/// The whole of `docs/configuration.md`.
pub fn configuration_md() -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Configuration reference\n\n\
         <!-- Generated from the code: the command line from src/cli/mod.rs, the keys\n\
         from src/config/schema.rs. Do not edit by hand: change those, then run\n\
         `{REGENERATE}`. -->\n\n\
         Every flag of every command, the environment variables read without a\n\
         configuration file, and every key of the YAML configuration file, with its\n\
         type, default, bounds and meaning. The README shows a configuration to start\n\
         from; [credentials.md](credentials.md) and [activity.md](activity.md) say more\n\
         about the credential kinds and the audit feed.\n\n"
    );
    command_line(&mut out);
    environment(&mut out);
    file(&mut out);
    out
}

/// A table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn command_line(out: &mut String) {
    let mut root = super::Cli::command();
    root.build();
    out.push_str(
        "## Command line\n\n\
         `serve` is the default command: its flags work without naming it. Every\n\
         command takes `--help`.\n\n",
    );
    let serve_about = root
        .find_subcommand("serve")
        .and_then(|c| c.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    command(out, "m365-exporter [serve]", &serve_about, &root);
    // `serve` is the root's own table; `help` is clap's.
    let others = root
        .get_subcommands()
        .filter(|c| !matches!(c.get_name(), "serve" | "help"));
    for sub in others {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        command(
            out,
            &format!("m365-exporter {}", sub.get_name()),
            &about,
            sub,
        );
    }
}

fn command(out: &mut String, title: &str, about: &str, cmd: &clap::Command) {
    let _ = write!(
        out,
        "### `{title}`\n\n{}\n\n| Flag | Default | Meaning |\n|---|---|---|\n",
        cell(about)
    );
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == "help" {
            continue;
        }
        let takes_value = matches!(
            arg.get_action(),
            clap::ArgAction::Set | clap::ArgAction::Append
        );
        let flag = match (takes_value, arg.get_value_names()) {
            (true, Some(names)) => format!("--{long}=<{}>", names.join(" ")),
            (true, None) => format!("--{long}=<{}>", arg.get_id().as_str().to_uppercase()),
            (false, _) => format!("--{long}"),
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let default = match defaults.is_empty() {
            true => "—".to_string(),
            false => defaults.join(", "),
        };
        let mut meaning = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if takes_value && !choices.is_empty() {
            let _ = write!(meaning, ": one of {}", choices.join(", "));
        }
        let _ = writeln!(out, "| `{flag}` | {default} | {} |", cell(meaning.trim()));
    }
    out.push('\n');
}

fn environment(out: &mut String) {
    out.push_str(
        "## Environment\n\n\
         Without `--config.file` one tenant, named `default`, is configured from the\n\
         azure-identity variables, in this order (the first credential set wins):\n\n\
         | Variable | Meaning |\n|---|---|\n",
    );
    for (name, meaning) in ENVIRONMENT {
        let _ = writeln!(out, "| `{name}` | {} |", cell(meaning));
    }
    out.push('\n');
}

/// A heading of the file's documentation, what it says, and which keys it
/// lists.
type Section = (&'static str, &'static str, fn(&Key) -> bool);

/// The sections of the file, as the documentation groups its keys.
const SECTIONS: &[Section] = &[
    (
        "Top level",
        "",
        |k| k.scope == Scope::Top,
    ),
    (
        "A tenant: `tenants[]`",
        "Each entry of `tenants`. Exactly one credential key: `client_secret_file`, `client_secret`, `client_certificate_path`, `federated_token_file` or `managed_identity`.",
        |k| k.scope == Scope::Tenant,
    ),
    (
        "`service_health`",
        "Under a tenant or under `defaults`.",
        |k| section(k) == "service_health",
    ),
    (
        "`messages`",
        "Under a tenant or under `defaults`.",
        |k| section(k) == "messages",
    ),
    (
        "`app_credentials`",
        "Under a tenant or under `defaults`. Off by default: `Application.Read.All` lets the app read every app registration of the tenant.",
        |k| section(k) == "app_credentials",
    ),
    (
        "`activity`",
        "Under a tenant or under `defaults`, except where noted.",
        |k| section(k) == "activity" && !k.path.starts_with("activity.webhook"),
    ),
    (
        "`activity.webhook`",
        "Under a tenant only.",
        |k| k.path.starts_with("activity.webhook"),
    ),
];

/// The collector section a key belongs to (its first step).
fn section(k: &Key) -> &'static str {
    match k.scope {
        Scope::Collector | Scope::TenantOnly => k.path.split('.').next().unwrap_or(k.path),
        Scope::Top | Scope::Tenant => "",
    }
}

fn file(out: &mut String) {
    out.push_str(
        "## Configuration file\n\n\
         YAML, given with `--config.file`; `m365-exporter check-config` validates it and\n\
         prints the effective configuration, secrets redacted. Unknown keys are errors;\n\
         an invalid file exits with status 2 and one line naming the file, the key and\n\
         the reason, without ever printing a secret. A reload (SIGHUP or\n\
         `POST /-/reload`) validates the new file completely before anything changes.\n\n\
         Durations are written `30s`, `5m`, `1h`, `7d` or combined (`1h30m`) and must be\n\
         more than zero; sizes are a number of bytes or a number with `KiB`, `MiB` or\n\
         `GiB`. Keys are written below as they nest: `service_health.interval` is\n\
         `interval` inside `service_health`.\n\n",
    );
    for (title, about, holds) in SECTIONS {
        let _ = write!(out, "### {title}\n\n");
        if !about.is_empty() {
            let _ = write!(out, "{about}\n\n");
        }
        out.push_str("| Key | Type | Default | Bounds | Meaning |\n|---|---|---|---|---|\n");
        for k in KEYS.iter().filter(|k| holds(k)) {
            let default = match k.default {
                KeyDefault::Required => "required".to_string(),
                KeyDefault::Unset => "—".to_string(),
                KeyDefault::Value(v) => format!("`{v}`"),
                KeyDefault::Derived(text) => text.to_string(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                k.path,
                cell(&k.ty.describe()),
                cell(&default),
                cell(&k.limits()),
                cell(k.meaning)
            );
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CONFIGURATION_MD);
        let rendered = configuration_md();
        if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &rendered).unwrap();
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == rendered,
            "{CONFIGURATION_MD} is not what the code renders (a flag or a key of \
             src/config/schema.rs changed): run `{REGENERATE}` and commit the file"
        );
    }

    #[test]
    fn every_section_is_documented_once() {
        for k in KEYS {
            let n = SECTIONS.iter().filter(|(_, _, holds)| holds(k)).count();
            assert_eq!(n, 1, "{} is under {n} headings", k.path);
        }
    }

    #[test]
    fn every_flag_of_every_command_is_listed() {
        let md = configuration_md();
        let mut root = super::super::Cli::command();
        root.build();
        let mut commands = vec![&root];
        commands.extend(root.get_subcommands());
        for cmd in commands {
            for long in cmd.get_arguments().filter_map(|a| a.get_long()) {
                if long != "help" {
                    assert!(md.contains(&format!("`--{long}")), "--{long}");
                }
            }
        }
    }
}
