//! Every binary has a man page in man/ that documents every option its
//! `--help` lists (and every option of every subcommand).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

/// The option words of a `--help` text: from each line that starts with an
/// option, the words of its first column that begin with `-`.
fn options_in_help(help: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') {
            continue;
        }
        let column = trimmed.split("  ").next().unwrap_or("");
        for word in column.split([' ', ',', '[', ']', '|']) {
            let word = word.split('=').next().unwrap_or("");
            let body = word.trim_start_matches('-');
            if word.starts_with('-')
                && body
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                found.insert(word.to_string());
            }
        }
    }
    found
}

/// Subcommands listed under a `Commands:` heading.
fn subcommands(help: &str) -> Vec<String> {
    let mut in_commands = false;
    let mut found = Vec::new();
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// The man page as plain text: roff escapes and font changes removed.
fn man_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(format!("{name}.1"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    raw.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
}

fn binaries() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_option_in_help_is_documented_in_the_man_page() {
    let mut missing = Vec::new();
    for name in binaries() {
        let out = common::umlkit(&name, ["--help"]);
        assert!(
            out.status.success(),
            "{name} --help failed: {}",
            common::stderr(&out)
        );
        let help = common::stdout(&out);
        let mut options = options_in_help(&help);
        for sub in subcommands(&help) {
            let out = common::umlkit(&name, [sub.as_str(), "--help"]);
            assert!(out.status.success(), "{name} {sub} --help failed");
            options.extend(options_in_help(&common::stdout(&out)));
            assert!(
                man_text(&name).contains(&sub),
                "{name}.1 does not describe subcommand {sub}"
            );
        }
        assert!(!options.is_empty(), "{name} --help lists no options");
        let man = man_text(&name);
        for option in options {
            // An option counts as documented when it appears as a word.
            let documented = man.match_indices(&option).any(|(i, _)| {
                let next = man[i + option.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if !documented {
                missing.push(format!("{name}: {option}"));
            }
        }
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"] {
            assert!(
                man.contains(&format!(".SH {section}")),
                "{name}.1 has no {section} section"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "options missing from man pages: {missing:?}"
    );
}

#[test]
fn the_option_extractor_finds_short_long_and_single_dash_long_options() {
    let help = "Options:\n  -b, --backing <B>  use B (see -x)\n  -unix SOCKET       control socket\n      --json   json\n";
    let found: Vec<String> = options_in_help(help).into_iter().collect();
    assert_eq!(found, ["--backing", "--json", "-b", "-unix"]);
}

#[path = "../examples/gen-docs.rs"]
mod gen_docs;

#[test]
fn checked_in_completions_are_what_the_argument_tables_generate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = gen_docs::generated();
    assert!(!generated.is_empty());
    let mut stale = Vec::new();
    for (path, text) in &generated {
        match std::fs::read(root.join(path)) {
            Ok(on_disk) if on_disk == *text => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "completions differ from the code (run `cargo run --release --example gen-docs`): {stale:?}"
    );
    // Every clap tool has completions for each shell, and nothing else is
    // left in completions/.
    let mut on_disk: Vec<String> = std::fs::read_dir(root.join("completions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = generated
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(on_disk, want);
    assert_eq!(want.len(), 15, "five clap tools, three shells each");
}

/// Every option letter `tunctl`'s getopt parser accepts (probed over all
/// letters and digits, not read from a table) is documented in tunctl.1,
/// and `--help` is too.
#[test]
fn every_option_tunctl_accepts_is_in_its_page() {
    use std::ffi::OsString;
    use umlkit::cli::tunctl::{parse, ArgsError};
    let man = man_text("tunctl");
    let mut accepted = Vec::new();
    for c in ('a'..='z').chain('A'..='Z').chain('0'..='9') {
        let option = format!("-{c}");
        let refused = matches!(
            parse(&[OsString::from(&option), OsString::from("0")]),
            Err(ArgsError::Getopt(m)) if m.contains("invalid option")
        );
        if !refused {
            accepted.push(option);
        }
    }
    assert!(
        accepted.len() >= 5,
        "probe found too few options: {accepted:?}"
    );
    assert!(matches!(
        parse(&[OsString::from("--help")]),
        Err(ArgsError::Help)
    ));
    accepted.push("--help".to_string());
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|o| {
            !man.match_indices(o.as_str()).any(|(i, _)| {
                let next = man[i + o.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        })
        .collect();
    assert!(missing.is_empty(), "tunctl.1 lacks {missing:?}");
}

/// Every flag in the clap tools' argument tables (the tables themselves,
/// subcommands included, not their `--help` text) is in the tool's page.
#[test]
fn every_flag_in_the_clap_tables_is_in_the_page() {
    fn flags(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            out.extend(arg.get_short().map(|s| format!("-{s}")));
            out.extend(arg.get_long().map(|l| format!("--{l}")));
        }
        for sub in command.get_subcommands() {
            flags(sub, out);
        }
    }
    let mut missing = Vec::new();
    for mut command in umlkit::cli::clap_commands() {
        command.build();
        let name = command.get_name().to_string();
        let man = man_text(&name);
        let mut all = Vec::new();
        flags(&command, &mut all);
        assert!(!all.is_empty(), "{name} has no flags");
        for flag in all {
            let documented = man.match_indices(flag.as_str()).any(|(i, _)| {
                let next = man[i + flag.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if !documented {
                missing.push(format!("{name}: {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from man pages: {missing:?}"
    );
}

/// Every option name `linux`'s parser claims (its table,
/// `kernel::cmdline::OPTIONS`, which the parser's unit tests hold to what
/// it accepts) is in linux.1.
#[test]
fn every_option_the_linux_parser_accepts_is_in_its_page() {
    let man = man_text("linux");
    let options = umlkit::kernel::cmdline::OPTIONS;
    assert!(options.len() >= 20, "too few options: {options:?}");
    let missing: Vec<&&str> = options
        .iter()
        .filter(|o| {
            !man.match_indices(**o).any(|(i, _)| {
                let before = man[..i].chars().next_back();
                let next = man[i + o.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && (o.ends_with('=')
                        || !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'))
            })
        })
        .collect();
    assert!(missing.is_empty(), "linux.1 lacks {missing:?}");
}
