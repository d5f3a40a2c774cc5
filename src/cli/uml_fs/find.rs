//! `find`: walk a subtree and print paths, filtered by a shell pattern on
//! the name and by type.

use super::format::type_letter;
use crate::block::BlockDevice;
use crate::ext3::Ext3;
use anyhow::Context;
use std::io::{BufWriter, Write};

/// Shell-pattern match of `name` against `pat` (`*`, `?`, `[...]` with
/// ranges and `!`/`^` negation, `\` escapes), as `fnmatch(3)` without flags.
pub fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with one backtrack point for the last `*`: linear in
    // practice and never recursive.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pat, p, name[n]),
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(np) => {
                p = np;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pat[p] == '['`; returns the
/// index after the class on a match. An unterminated `[` matches itself.
fn class(pat: &[u8], p: usize, c: u8) -> Option<usize> {
    let mut i = p + 1;
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    (matched != negate).then_some(i + 1)
}

/// Prints the paths below `path` matching `name` and `kind`.
pub fn find<D: BlockDevice>(
    fs: &Ext3<D>,
    path: &[u8],
    name: Option<&[u8]>,
    kind: Option<char>,
) -> anyhow::Result<()> {
    if let Some(k) = kind {
        anyhow::ensure!(
            "fdlcbps".contains(k),
            "bad -type {k}: want one of f d l c b p s"
        );
    }
    let shown = String::from_utf8_lossy(path).into_owned();
    let ino = fs
        .resolve(path, true)
        .with_context(|| format!("cannot access {shown}"))?;
    let mut o = BufWriter::new(std::io::stdout().lock());
    let mut io_err = None;
    fs.walk(ino, path, |node| {
        let base = node
            .path
            .rsplit(|&c| c == b'/')
            .find(|s| !s.is_empty())
            .unwrap_or(b"/");
        let name_ok = name.is_none_or(|pat| glob_match(pat, base));
        let kind_ok = kind.is_none_or(|k| type_letter(node.meta.file_type) == k);
        if name_ok && kind_ok {
            if let Err(e) = o.write_all(&node.path).and_then(|()| o.write_all(b"\n")) {
                io_err = Some(e);
                return Err(crate::ext3::Error::stopped());
            }
        }
        Ok(true)
    })
    .map_err(|e| match io_err.take() {
        Some(io) => anyhow::Error::from(io),
        None => e.into(),
    })?;
    o.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob_match(b"*.conf", b"resolv.conf"));
        assert!(!glob_match(b"*.conf", b"resolv.conf.bak"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"\\*", b"*"));
        assert!(!glob_match(b"\\*", b"a"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(glob_match(b"[]]", b"]"));
    }
}
