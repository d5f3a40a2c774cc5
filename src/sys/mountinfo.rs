//! `/proc/PID/mountinfo` (proc(5)), parsed once for every reader: the
//! guest kernel's cgroup discovery and remount watch, and `uml_fs umount`.
//! Pure: it takes the file's text.
//!
//! A line is `ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - TYPE SOURCE
//! SUPER_OPTIONS`; paths carry octal escapes (`\040` for a space).

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The most lines read from one file (a bound on a hostile mount table).
const MAX_LINES: usize = 100_000;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path of the filesystem that is the mount's root (field 4).
    pub root: String,
    /// Where it is mounted (field 5).
    pub point: PathBuf,
    /// The filesystem type (`fuse.uml_fs`, `cgroup2`).
    pub fstype: String,
    /// The source (a device, the fsname).
    pub source: String,
    /// The superblock's options (`rw`, for cgroup v1 the controllers).
    pub super_options: Vec<String>,
}

impl Mount {
    /// Whether the superblock is read-only, when its options say.
    pub fn read_only(&self) -> Option<bool> {
        self.super_options.iter().find_map(|o| match o.as_str() {
            "ro" => Some(true),
            "rw" => Some(false),
            _ => None,
        })
    }
}

/// Every well-formed line of `text`, in order (the last mount on a path is
/// the one seen there); malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let f: Vec<&str> = line.split(' ').collect();
    let sep = f.iter().position(|x| *x == "-")?;
    Some(Mount {
        root: unescape(f.get(3)?),
        point: PathBuf::from(unescape(f.get(4)?)),
        fstype: f.get(sep + 1)?.to_string(),
        source: unescape(f.get(sep + 2)?),
        super_options: f.get(sep + 3)?.split(',').map(str::to_string).collect(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_root_point_type_source_and_super_options_unescaped() {
        let text = "36 35 98:0 /sub /mnt/a\\040b rw,nosuid - fuse.uml_fs /img/x\\040y.cow ro,user_id=1000\n\
                    bad line\n\
                    37 35 0:5 / /proc rw shared:1 - proc proc rw\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, "/sub");
        assert_eq!(m[0].point, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].fstype, "fuse.uml_fs");
        assert_eq!(m[0].source, "/img/x y.cow");
        assert_eq!(m[0].read_only(), Some(true));
        assert_eq!(m[1].fstype, "proc");
        assert_eq!(m[1].read_only(), Some(false));
    }

    #[test]
    fn a_backslash_without_three_octal_digits_is_kept() {
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("a\\9xy"), "a\\9xy");
    }
}
