//! `lab.dep`: Netkit's make-style start order. `pc3: pc1 pc2` means pc3
//! boots after pc1 and pc2 have finished their startup scripts; `#` starts
//! a comment and a trailing `\` continues a line. Pure: the parser, and
//! the check that the dependencies have no cycle.

use super::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `machine -> the machines it waits for`, each with the line that said so.
pub type Deps = BTreeMap<String, BTreeMap<String, usize>>;

/// Parses `lab.dep` text; every name must be in `known`.
pub fn parse(text: &str, file: &Path, known: &BTreeSet<String>) -> Result<Deps> {
    let mut deps = Deps::new();
    let mut joined = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        if joined.is_empty() {
            start = i + 1;
        }
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            continue;
        }
        joined.push_str(line);
        let logical = std::mem::take(&mut joined);
        if logical.trim().is_empty() {
            continue;
        }
        let Some((targets, prereqs)) = logical.split_once(':') else {
            return Err(Error::syntax(
                file,
                start,
                format!("'{}': expected MACHINE: MACHINE...", logical.trim()),
            ));
        };
        let check = |name: &str| -> Result<String> {
            if known.contains(name) {
                Ok(name.to_string())
            } else {
                Err(Error::syntax(
                    file,
                    start,
                    format!("{name}: no such machine in the lab"),
                ))
            }
        };
        let targets: Vec<String> = targets
            .split_whitespace()
            .map(check)
            .collect::<Result<_>>()?;
        if targets.is_empty() {
            return Err(Error::syntax(file, start, "no machine before ':'"));
        }
        let prereqs: Vec<String> = prereqs
            .split_whitespace()
            .map(check)
            .collect::<Result<_>>()?;
        for t in &targets {
            let entry = deps.entry(t.clone()).or_default();
            for p in &prereqs {
                entry.entry(p.clone()).or_insert(start);
            }
        }
    }
    if !joined.trim().is_empty() {
        return Err(Error::syntax(file, start, "the file ends after a '\\'"));
    }
    check_acyclic(&deps, file)?;
    Ok(deps)
}

/// Refuses a cycle, naming it (`a -> b -> a`) and the line of its first
/// edge.
pub fn check_acyclic(deps: &Deps, file: &Path) -> Result<()> {
    // Iterative depth-first search: 0 = new, 1 = on the path, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for root in deps.keys() {
        if state.get(root.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, Vec<&str>)> = vec![(root, children(deps, root))];
        state.insert(root, 1);
        while let Some((node, rest)) = path.last_mut() {
            let node: &str = node;
            match rest.pop() {
                Some(next) => match state.get(next).copied().unwrap_or(0) {
                    0 => {
                        state.insert(next, 1);
                        path.push((next, children(deps, next)));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut names: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                        names.push(next);
                        let line = deps
                            .get(names[0])
                            .and_then(|d| d.get(names.get(1).copied().unwrap_or("")))
                            .copied()
                            .unwrap_or(1);
                        return Err(Error::syntax(
                            file,
                            line,
                            format!("dependency cycle: {}", names.join(" -> ")),
                        ));
                    }
                    _ => {}
                },
                None => {
                    state.insert(node, 2);
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

fn children<'a>(deps: &'a Deps, node: &str) -> Vec<&'a str> {
    deps.get(node)
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect()
    }

    fn p(text: &str) -> Result<Deps> {
        parse(text, Path::new("lab.dep"), &known())
    }

    #[test]
    fn make_style_lines_with_comments_and_continuations() {
        let d = p("# order\nc: a b\nd: \\\n  c\n\n").unwrap();
        assert_eq!(d["c"].keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(d["d"]["c"], 3);
    }

    #[test]
    fn a_cycle_is_refused_naming_it() {
        let e = p("a: b\nb: c\nc: a\n").unwrap_err().to_string();
        assert!(e.starts_with("lab.dep:"), "{e}");
        assert!(e.contains("dependency cycle: "), "{e}");
        assert!(
            e.contains("a -> b -> c -> a")
                || e.contains("b -> c -> a -> b")
                || e.contains("c -> a -> b -> c"),
            "{e}"
        );
        assert!(p("a: a").unwrap_err().to_string().contains("a -> a"));
    }

    #[test]
    fn unknown_machines_and_lines_without_colon_are_errors_with_lines() {
        assert_eq!(
            p("a: b\nz: a\n").unwrap_err().to_string(),
            "lab.dep:2: z: no such machine in the lab"
        );
        assert!(p("a b\n")
            .unwrap_err()
            .to_string()
            .starts_with("lab.dep:1: 'a b'"));
        assert!(p(": a").is_err());
        assert!(p("a: \\").is_err());
    }

    #[test]
    fn a_diamond_is_no_cycle() {
        assert!(p("d: b c\nb: a\nc: a\n").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(s in "[abcdz:# \\\\\n]{0,64}") {
            let _ = p(&s);
        }
    }
}
