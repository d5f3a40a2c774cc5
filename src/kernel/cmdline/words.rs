//! The generic kernel pass's word splitter, `next_arg` of Linux 6.1
//! lib/cmdline.c: words split at spaces outside double quotes, each a
//! name with an optional `=value`, quotes around the value (or around the
//! whole word) removed. Pure.

/// One word of the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The name (the whole word when it has no `=`).
    pub name: String,
    /// The value after the first `=`, quotes removed.
    pub value: Option<String>,
}

impl Word {
    /// The word as init sees it: `NAME=VALUE` or `NAME`.
    pub fn joined(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}", self.name, v),
            None => self.name.clone(),
        }
    }
}

/// Splits `line` into words.
pub fn split(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut rest = line.trim_start_matches(|c: char| c.is_ascii_whitespace());
    while !rest.is_empty() {
        let (word, after) = next_word(rest);
        words.push(word);
        rest = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
    }
    words
}

fn next_word(args: &str) -> (Word, &str) {
    let (args, quoted) = match args.strip_prefix('"') {
        Some(a) => (a, true),
        None => (args, false),
    };
    let mut in_quote = quoted;
    let mut equals = None;
    let mut end = args.len();
    for (i, c) in args.char_indices() {
        if c.is_ascii_whitespace() && !in_quote {
            end = i;
            break;
        }
        if equals.is_none() && c == '=' && i > 0 {
            equals = Some(i);
        }
        if c == '"' {
            in_quote = !in_quote;
        }
    }
    let mut text = &args[..end];
    let after = &args[end..];
    let word = match equals {
        None => {
            if quoted {
                text = text.strip_suffix('"').unwrap_or(text);
            }
            Word {
                name: text.to_string(),
                value: None,
            }
        }
        Some(eq) => {
            let name = &text[..eq];
            let mut value = &text[eq + 1..];
            let mut stripped_end = false;
            if let Some(v) = value.strip_prefix('"') {
                value = v;
                if let Some(v) = value.strip_suffix('"') {
                    value = v;
                    stripped_end = true;
                }
            }
            if quoted && !stripped_end {
                value = value.strip_suffix('"').unwrap_or(value);
            }
            Word {
                name: name.to_string(),
                value: Some(value.to_string()),
            }
        }
    };
    (word, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(line: &str) -> Vec<String> {
        split(line).iter().map(Word::joined).collect()
    }

    #[test]
    fn words_split_at_spaces_outside_quotes() {
        assert_eq!(joined("  a b=c   d "), ["a", "b=c", "d"]);
        assert_eq!(joined("TTYS=\"a b\" x"), ["TTYS=a b", "x"]);
        assert_eq!(joined("\"q w\" z"), ["q w", "z"]);
        assert_eq!(joined("TTYS=tty1 tty3"), ["TTYS=tty1", "tty3"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn the_value_is_after_the_first_equals() {
        let w = &split("a=b=c")[0];
        assert_eq!(w.name, "a");
        assert_eq!(w.value.as_deref(), Some("b=c"));
    }
}
