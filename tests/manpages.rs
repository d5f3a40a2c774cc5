//! Every binary has a man page in man/ that documents every option its
//! `--help` lists (and every option of every subcommand). The pages of the
//! clap tools (and their completions) are what examples/gen-docs.rs
//! generates from the argument tables; the hand-written pages of the getopt
//! tools document exactly the options their parsers take.

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

/// Whether `word` occurs in `text` as a whole option word (not as the start
/// of a longer one: `-d` is not found in `-daemon`).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let next = text[i + word.len()..].chars().next();
        let before = text[..i].chars().next_back();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The text of one `.SH` section of a page (from man_text), without its
/// heading.
fn section(man: &str, name: &str) -> String {
    let heading = format!(".SH {name}\n");
    let Some(start) = man.find(&heading) else {
        return String::new();
    };
    let body = &man[start + heading.len()..];
    body[..body.find("\n.SH ").map_or(body.len(), |e| e + 1)].to_string()
}

/// The words of a roff fragment as they read: macro names, quotes and
/// font changes removed.
fn plain_words(roff: &str) -> Vec<String> {
    roff.lines()
        .flat_map(|line| {
            let line = if line.starts_with('.') {
                line.split_once(' ').map_or("", |(_, rest)| rest)
            } else {
                line
            };
            line.replace('"', " ")
                .split([' ', '|'])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn checked_in_pages_and_completions_are_what_the_argument_tables_generate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = gen_docs::generated().unwrap_or_else(|e| panic!("gen-docs: {e}"));
    let mut stale = Vec::new();
    for (path, text) in &generated {
        match std::fs::read(root.join(path)) {
            Ok(on_disk) if on_disk == *text => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "files differ from the code (run `cargo run --release --example gen-docs`): {stale:?}"
    );
    // Every clap tool has completions for each shell and a page; nothing
    // else is left in completions/, and every prose file has its tool.
    let listing = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "src")
            .collect();
        names.sort();
        names
    };
    let generated_in = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = generated
            .iter()
            .filter(|(p, _)| p.parent() == Some(Path::new(dir)))
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing("completions"), generated_in("completions"));
    let tools = umlkit::cli::clap_commands().len();
    assert!(tools >= 5);
    assert_eq!(
        generated_in("completions").len(),
        3 * tools,
        "three shells a tool"
    );
    let pages: Vec<String> = generated_in("man")
        .iter()
        .map(|p| p.replace(".1", ".roff"))
        .collect();
    assert_eq!(
        listing("man/src"),
        pages,
        "man/src/ holds the prose of each clap tool"
    );
    assert_eq!(pages.len(), tools);
}

#[test]
fn the_generator_refuses_prose_that_spells_a_generated_section_or_lacks_one() {
    let ok = ".SH DESCRIPTION\nx\n.SH EXIT STATUS\n0\n.SH SEE ALSO\ny\n";
    assert_eq!(gen_docs::sections(ok).unwrap().len(), 3);
    let with_options = format!("{ok}.SH OPTIONS\n.TP\n-x\n");
    assert!(gen_docs::sections(&with_options)
        .unwrap_err()
        .contains("OPTIONS is generated"));
    let without_exit = ".SH DESCRIPTION\nx\n.SH SEE ALSO\ny\n";
    assert!(gen_docs::sections(without_exit)
        .unwrap_err()
        .contains("EXIT STATUS"));
    assert!(gen_docs::sections(&format!("stray text\n{ok}")).is_err());
}

#[test]
fn generated_pages_put_options_after_description_and_commands() {
    for mut command in umlkit::cli::clap_commands() {
        command.build();
        let name = command.get_name().to_string();
        let man = man_text(&name);
        let at = |s: &str| man.find(&format!(".SH {s}\n"));
        let order: Vec<usize> = [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "SEE ALSO",
        ]
        .iter()
        .map(|s| at(s).unwrap_or_else(|| panic!("{name}.1 has no {s}")))
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{name}.1 sections out of order"
        );
        if let Some(commands) = at("COMMANDS") {
            assert!(commands < order[3], "{name}.1: COMMANDS after OPTIONS");
        }
        // The OPTIONS section has the long help of every flag.
        let options = section(&man, "OPTIONS");
        for arg in command.get_arguments().filter(|a| !a.is_positional()) {
            let help = arg.get_long_help().or(arg.get_help()).unwrap().to_string();
            let first = help
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ");
            let options = options.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(options.contains(&first), "{name}.1 OPTIONS lacks {first:?}");
        }
    }
}

/// Every subcommand has an entry (`.TP` then `.B name`) in the page's
/// prose, and its synopsis line.
#[test]
fn every_subcommand_has_an_entry_and_a_synopsis_line() {
    for mut command in umlkit::cli::clap_commands() {
        command.build();
        let name = command.get_name().to_string();
        let man = man_text(&name);
        let synopsis = section(&man, "SYNOPSIS");
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub = sub.get_name();
            assert!(
                man.contains(&format!(".TP\n.B {sub}\n")),
                "{name}.1 has no entry for {sub}"
            );
            assert!(
                plain_words(&synopsis).iter().any(|w| w == sub),
                "{name}.1 SYNOPSIS lacks {sub}"
            );
        }
    }
}

/// The exit status of a usage error (an unknown option), found by running
/// each tool, is listed in its page as one for usage errors; and the codes
/// the `--help` text names are exactly those the page lists.
#[test]
fn exit_statuses_in_the_pages_are_the_tools() {
    for mut command in umlkit::cli::clap_commands() {
        command.build();
        let name = command.get_name().to_string();
        let man = man_text(&name);
        let exit = section(&man, "EXIT STATUS");
        let mut listed = Vec::new();
        let mut lines = exit.lines().peekable();
        while let Some(line) = lines.next() {
            if line == ".TP" {
                if let Some(code) = lines.peek().and_then(|l| l.strip_prefix(".B ")) {
                    if let Ok(code) = code.parse::<u8>() {
                        let text: Vec<&str> = lines
                            .clone()
                            .skip(1)
                            .take_while(|l| *l != ".TP" && !l.starts_with(".PP"))
                            .collect();
                        listed.push((code, text.join(" ").to_lowercase()));
                    }
                }
            }
        }
        assert!(!listed.is_empty(), "{name}.1 lists no exit status");
        let out = common::umlkit(&name, ["--no-such-option"]);
        let code = u8::try_from(out.status.code().unwrap()).unwrap();
        assert!(
            listed
                .iter()
                .any(|(c, text)| *c == code && text.contains("usage error")),
            "{name} exits {code} on a usage error; {name}.1 says {listed:?}"
        );
        if let Some(after) = command.get_after_help().map(ToString::to_string) {
            let said = after.split("Exit status:").nth(1).unwrap_or("");
            let said: Vec<u8> = said
                .split([' ', ','])
                .filter_map(|w| w.parse().ok())
                .collect();
            let page: Vec<u8> = listed.iter().map(|(c, _)| *c).collect();
            assert_eq!(
                said, page,
                "{name}: --help and {name}.1 list different exit statuses"
            );
        }
    }
}

/// tunctl: every option letter of the getopt string its parser uses, and
/// `--help`, is in tunctl.1; probing every letter and digit finds no other
/// option the parser takes; and every option tunctl.1 documents is one.
#[test]
fn every_option_tunctl_accepts_is_in_its_page() {
    use std::ffi::OsString;
    use umlkit::cli::tunctl::{parse, ArgsError, LONG_OPTIONS, OPTSTRING};
    let man = man_text("tunctl");
    let mut table: Vec<String> = OPTSTRING
        .chars()
        .filter(|&c| c != ':')
        .map(|c| format!("-{c}"))
        .collect();
    assert_eq!(table.len(), 6);
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
    assert_eq!(
        accepted.iter().collect::<BTreeSet<_>>(),
        table.iter().collect()
    );
    for long in LONG_OPTIONS {
        assert!(matches!(
            parse(&[OsString::from(*long)]),
            Err(ArgsError::Help)
        ));
    }
    table.extend(LONG_OPTIONS.iter().map(|s| s.to_string()));
    let missing: Vec<&String> = table.iter().filter(|o| !has_word(&man, o)).collect();
    assert!(missing.is_empty(), "tunctl.1 lacks {missing:?}");
    let documented = options_in_page(&man);
    assert!(documented.len() >= 7, "{documented:?}");
    for option in documented {
        assert!(
            table.contains(&option),
            "tunctl.1 documents {option}, which tunctl refuses"
        );
    }
}

/// The options a hand-written page documents: the first word of each `.TP`
/// entry of its OPTIONS section that starts with a dash.
fn options_in_page(man: &str) -> Vec<String> {
    let options = section(man, "OPTIONS");
    let mut found = Vec::new();
    let mut lines = options.lines();
    while let Some(line) = lines.next() {
        if line == ".TP" {
            let words = plain_words(lines.next().unwrap_or(""));
            if let Some(w) = words.first().filter(|w| w.starts_with('-')) {
                found.push(w.to_string());
            }
        }
    }
    found
}

/// uml_switch: every word of its parser's option table is accepted by the
/// parser and documented in uml_switch.1, and every option the page
/// documents is in the table.
#[test]
fn every_option_uml_switch_accepts_is_in_its_page() {
    use std::ffi::OsString;
    use umlkit::cli::uml_switch::{parse, ArgsError, OPTIONS};
    let man = man_text("uml_switch");
    for option in OPTIONS {
        let alone = parse("uml_switch", &[OsString::from(option)]);
        let with_value = parse("uml_switch", &[OsString::from(option), OsString::from("x")]);
        // Taken: it parses, asks for help, or complains about its value
        // (`-mode x`, `-peer x`), where an unknown word gets the usage.
        assert!(
            alone.is_ok()
                || with_value.is_ok()
                || alone == Err(ArgsError::Help)
                || matches!(with_value, Err(ArgsError::Bad(_))),
            "uml_switch refuses its own option {option}"
        );
        assert!(has_word(&man, option), "uml_switch.1 lacks {option}");
    }
    assert_eq!(
        parse("uml_switch", &[OsString::from("-nosuch")]),
        Err(ArgsError::Usage)
    );
    let documented = options_in_page(&man);
    assert_eq!(documented.len(), OPTIONS.len(), "{documented:?}");
    for option in documented {
        assert!(
            OPTIONS.contains(&option.as_str()),
            "uml_switch.1 documents {option}"
        );
    }
}

/// uml_net: its one option is documented, and every request form its
/// `--help` lists is a SYNOPSIS line of uml_net.1 (the same words, the
/// placeholders aside).
#[test]
fn uml_net_options_and_request_forms_are_in_its_page() {
    use umlkit::cli::uml_net::{help, OPTIONS};
    let man = man_text("uml_net");
    for option in OPTIONS {
        assert!(has_word(&man, option), "uml_net.1 lacks {option}");
    }
    let synopsis = section(&man, "SYNOPSIS");
    let forms: Vec<Vec<String>> = synopsis.split(".br\n").map(plain_words).collect();
    let usage = help();
    let mut checked = 0;
    for line in usage.lines().take_while(|l| !l.trim().is_empty()) {
        let line = line.trim_start_matches("Usage:").trim();
        let line = line.split("  ").next().unwrap_or("");
        let literal: Vec<&str> = line
            .split([' ', '|'])
            .filter(|w| !w.is_empty() && !w.chars().any(|c| c.is_ascii_uppercase()))
            .collect();
        assert!(
            forms
                .iter()
                .any(|f| f.len() >= literal.len() && f[..literal.len()] == literal[..]),
            "uml_net.1 SYNOPSIS lacks {line:?} (has {forms:?})"
        );
        checked += 1;
    }
    assert_eq!(checked, 5, "{usage}");
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
            if !has_word(&man, &flag) {
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
