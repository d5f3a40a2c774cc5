//! Image-building helpers for the ext3/uml_fs tests: random directory trees
//! from a seeded generator, images made from them with the real
//! `mke2fs -d`, htree indexing with `e2fsck -fyD`, and `debugfs -R stat`
//! output parsed for comparison.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Names with characters shells and parsers trip over (and one that is not
/// UTF-8); `mke2fs -d` copies them as bytes.
pub const ODD_NAMES: &[&[u8]] = &[
    b"with space",
    b"caf\xc3\xa9",
    b"tab\there",
    b"star*",
    b"question?",
    b"[bracket]",
    b"back\\slash",
    b"quote\"s'",
    b"-leading-dash",
    b"new\nline",
    b"\xff\xfe not utf8",
    b".hidden",
    b"..dots",
];

/// What the generator should put in a tree.
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of ordinary random files.
    pub files: usize,
    /// Entries of the one big directory (`/many`), to get an htree.
    pub many: usize,
    /// Size of the one large file (`/large`).
    pub large: usize,
    /// Offset of the far data in `/sparse` (past 64 MiB reaches the
    /// triple-indirect map with 1 KiB blocks).
    pub sparse_far: u64,
    /// End `/sparse` with a hole (`mke2fs -d -O inline_data` 1.47.0 cuts
    /// such a file short, so that case turns it off).
    pub sparse_trailing_hole: bool,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            seed: 1,
            files: 60,
            many: 300,
            large: 3 << 20,
            sparse_far: 70 << 20,
            sparse_trailing_hole: true,
        }
    }
}

fn name(rng: &mut Rng, i: usize) -> Vec<u8> {
    match rng.below(4) {
        0 => ODD_NAMES[rng.below(ODD_NAMES.len() as u64) as usize]
            .iter()
            .copied()
            .chain(format!("-{i}").bytes())
            .collect(),
        1 => {
            // Long names, up to the 255-byte limit.
            let len = 100 + rng.below(150) as usize;
            let mut n: Vec<u8> = (0..len).map(|k| b'a' + ((k + i) % 26) as u8).collect();
            n.extend(format!("-{i}").bytes());
            n.truncate(255);
            n
        }
        _ => format!("f{i}_{}", rng.below(1000)).into_bytes(),
    }
}

fn set_times(p: &Path, rng: &mut Rng) {
    let secs = 315_532_800 + rng.below(1_600_000_000) as i64; // 1980..2030
    let t = nix::sys::time::TimeSpec::new(secs, rng.below(1_000_000_000) as i64);
    nix::sys::stat::utimensat(
        None,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

/// Builds a random tree in `root` (which must exist): nested directories,
/// odd names, empty/small/large/sparse files, fast and slow symlinks, hard
/// links, FIFOs, a socket, setuid/setgid/sticky modes, a big directory, and
/// device nodes when running as root. Returns the paths it made, relative.
pub fn random_tree(root: &Path, opt: &TreeOptions) -> Vec<PathBuf> {
    let mut rng = Rng::new(opt.seed);
    let mut made = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    // A deep chain.
    let mut deep = root.to_path_buf();
    for d in 0..12 {
        deep = deep.join(format!("deep{d}"));
        std::fs::create_dir(&deep).unwrap();
    }
    dirs.push(deep);
    let mut files = Vec::new();
    for i in 0..opt.files {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let p = parent.join(OsStr::from_bytes(&name(&mut rng, i)));
        match rng.below(10) {
            0 | 1 => {
                std::fs::create_dir(&p).unwrap();
                let mode = [0o755, 0o700, 0o1777, 0o2755][rng.below(4) as usize];
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                dirs.push(p.clone());
            }
            2 => {
                // Fast (< 60 bytes) or slow symlink, sometimes dangling.
                let target: Vec<u8> = if rng.below(2) == 0 {
                    b"../some/where".to_vec()
                } else {
                    (0..(60 + rng.below(200)))
                        .map(|k| b'a' + (k % 26) as u8)
                        .collect()
                };
                symlink(OsStr::from_bytes(&target), &p).unwrap();
            }
            3 if !files.is_empty() => {
                let src: &PathBuf = &files[rng.below(files.len() as u64) as usize];
                std::fs::hard_link(src, &p).unwrap();
            }
            _ => {
                let len = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(60) as usize,
                    2 => rng.below(5000) as usize,
                    _ => rng.below(200_000) as usize,
                };
                std::fs::write(&p, super::pattern(rng.next(), len)).unwrap();
                let mode = [0o644, 0o600, 0o755, 0o4755, 0o2711, 0o444][rng.below(6) as usize];
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                files.push(p.clone());
            }
        }
        made.push(p);
    }
    // The big directory.
    let many = root.join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..opt.many {
        std::fs::write(
            many.join(format!("entry-with-a-longish-name-{i:05}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    // Large and sparse files.
    std::fs::write(
        root.join("large"),
        super::pattern(opt.seed ^ 0x55, opt.large),
    )
    .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(root.join("sparse")).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(&super::pattern(7, 10_000), 5 << 20).unwrap();
        f.write_all_at(b"far data", opt.sparse_far).unwrap();
        if opt.sparse_trailing_hole {
            f.set_len(opt.sparse_far + 4096 * 3 + 17).unwrap();
        }
    }
    std::fs::File::create(root.join("empty")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap());
    if nix::unistd::geteuid().is_root() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        mknod(
            &root.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        mknod(
            &root.join("disk"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o660),
            makedev(259, 70000),
        )
        .unwrap();
    }
    // Times last (creating entries changes the directories' times).
    let mut all = Vec::new();
    collect(root, &mut all);
    for p in all.iter().rev() {
        set_times(p, &mut rng);
    }
    made
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.symlink_metadata().unwrap().is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every path below `root` (directories first, sorted), `root` included.
pub fn tree_paths(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    collect(root, &mut v);
    v
}

/// Makes an image of `size_mb` MiB from `tree` with `mke2fs -t TYPE -d`
/// plus `extra` options, then indexes big directories with `e2fsck -fyD`
/// and checks the result with `e2fsck -fn`.
pub fn make_image(tree: &Path, image: &Path, fs_type: &str, size_mb: u32, extra: &[&str]) {
    let mke2fs = super::which("mke2fs").expect("mke2fs");
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("-q"),
        OsStr::new("-F"),
        OsStr::new("-t"),
        OsStr::new(fs_type),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let size = format!("{size_mb}M");
    args.extend([
        OsStr::new("-d"),
        tree.as_os_str(),
        image.as_os_str(),
        OsStr::new(&size),
    ]);
    super::run_ok(mke2fs, args);
    let e2fsck = super::which("e2fsck").expect("e2fsck");
    let out = super::run(&e2fsck, [OsStr::new("-fyD"), image.as_os_str()]);
    let code = out.status.code().unwrap_or(99);
    assert!(
        code <= 1,
        "e2fsck -fyD failed ({code}): {}{}",
        super::stdout(&out),
        super::stderr(&out)
    );
    super::fsck_clean(image);
}

/// One inode as `debugfs stat` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugfsStat {
    /// `Type:` word (regular, directory, symlink, ...).
    pub kind: String,
    /// `Mode:` (octal permission bits).
    pub mode: u32,
    /// `Flags:`.
    pub flags: u32,
    /// `User:`.
    pub uid: u32,
    /// `Group:`.
    pub gid: u32,
    /// `Size:`.
    pub size: u64,
    /// `Links:`.
    pub links: u32,
    /// `Blockcount:` (512-byte sectors).
    pub blockcount: u64,
    /// Times: name -> (seconds field, extra field) as printed in hex.
    pub times: BTreeMap<String, (u32, u32)>,
}

/// Runs `debugfs -f` with `stat <ino>` for each inode and parses the output.
pub fn debugfs_stats(image: &Path, inodes: &[u32]) -> BTreeMap<u32, DebugfsStat> {
    let dir = tempfile::tempdir().unwrap();
    let cmds = dir.path().join("cmds");
    let text: String = inodes.iter().map(|i| format!("stat <{i}>\n")).collect();
    std::fs::write(&cmds, text).unwrap();
    let out = super::run_ok(
        super::which("debugfs").expect("debugfs"),
        [OsStr::new("-f"), cmds.as_os_str(), image.as_os_str()],
    );
    let text = super::stdout(&out);
    let mut map = BTreeMap::new();
    let mut cur: Option<(u32, DebugfsStat)> = None;
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next().map(str::to_string)
    };
    for line in text.lines() {
        if let Some(ino) = field(line, "Inode:").filter(|_| line.starts_with("Inode:")) {
            if let Some((i, s)) = cur.take() {
                map.insert(i, s);
            }
            let s = DebugfsStat {
                kind: field(line, "Type:").unwrap_or_default(),
                mode: u32::from_str_radix(&field(line, "Mode:").unwrap_or_default(), 8).unwrap(),
                flags: u32::from_str_radix(
                    field(line, "Flags:")
                        .unwrap_or_default()
                        .trim_start_matches("0x"),
                    16,
                )
                .unwrap(),
                ..DebugfsStat::default()
            };
            cur = Some((ino.parse().unwrap(), s));
            continue;
        }
        let Some((_, s)) = cur.as_mut() else { continue };
        if line.starts_with("User:") {
            s.uid = field(line, "User:").unwrap().parse().unwrap();
            s.gid = field(line, "Group:").unwrap().parse().unwrap();
            s.size = field(line, "Size:").unwrap().parse().unwrap();
        } else if line.starts_with("Links:") {
            s.links = field(line, "Links:").unwrap().parse().unwrap();
            s.blockcount = field(line, "Blockcount:").unwrap().parse().unwrap();
        } else if let Some((name, rest)) = line.trim_start().split_once(": 0x") {
            if ["ctime", "atime", "mtime", "crtime"].contains(&name) {
                let hex = rest.split_whitespace().next().unwrap();
                let (a, b) = hex.split_once(':').unwrap_or((hex, "0"));
                let a = u32::from_str_radix(a, 16).unwrap();
                let b = u32::from_str_radix(b, 16).unwrap_or(0);
                s.times.insert(name.to_string(), (a, b));
            }
        }
    }
    if let Some((i, s)) = cur.take() {
        map.insert(i, s);
    }
    map
}

/// `dumpe2fs -h` as label -> value.
pub fn dumpe2fs_header(image: &Path) -> BTreeMap<String, String> {
    let out = super::run_ok(
        super::which("dumpe2fs").expect("dumpe2fs"),
        [OsStr::new("-h"), image.as_os_str()],
    );
    labels(&super::stdout(&out))
}

/// Parses `Label:   value` lines.
pub fn labels(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
