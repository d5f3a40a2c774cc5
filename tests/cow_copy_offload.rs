//! `uml_moo` where reflinks are not available (ext4, tmpfs; loop-mounted
//! or mounted by the test, as root): a new-file merge copies the backing
//! file's data ranges with `copy_file_range` (strace shows the calls), the
//! result equals Debian's `uml_moo` byte for byte and keeps the backing
//! file's holes; across file systems, where the kernel refuses, it falls
//! back to reading and writing.

mod common;

use common::{bin, pattern, run_ok};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use umlkit::block::BlockDevice;

const MIB: u64 = 1 << 20;
/// Size of the backing file.
const SIZE: u64 = 16 * MIB;

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// A file system mounted by the test; unmounted (and its loop device
/// detached) on drop.
struct Mounted(PathBuf);

impl Mounted {
    /// A fresh `fs` (`ext4` on a loop device, or `tmpfs`) at `dir/name`.
    fn new(dir: &Path, name: &str, fs: &str) -> Mounted {
        let mnt = dir.join(name);
        std::fs::create_dir(&mnt).unwrap();
        if fs == "tmpfs" {
            sh(&format!(
                "mount -t tmpfs -o size=128M tmpfs {}",
                mnt.display()
            ));
        } else {
            let img = dir.join(format!("{name}.img"));
            sh(&format!(
                "truncate -s 128M {i} && mkfs.{fs} -q {i} && mount -o loop {i} {m}",
                i = img.display(),
                m = mnt.display()
            ));
        }
        Mounted(mnt)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A backing file: patterned data, explicit zeros, a hole, data again.
fn backing(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(SIZE).unwrap();
    f.write_all_at(&pattern(1, (SIZE / 4) as usize), 0).unwrap();
    f.write_all_at(&vec![0u8; (SIZE / 8) as usize], SIZE / 4)
        .unwrap();
    f.write_all_at(&pattern(2, (SIZE / 4) as usize), SIZE * 3 / 4)
        .unwrap();
}

/// Writes through the COW like a guest: scattered writes, zeros over data,
/// data into the hole, the last sector. Returns the bytes written.
fn dirty(cow: &Path) -> u64 {
    let dev = umlkit::cow::open_cow(
        cow,
        &umlkit::cow::DiskOptions {
            writable: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut total = 0u64;
    let mut x = 7u64;
    for i in 0..30u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = (x >> 11) % (SIZE - 5000);
        let n = 1 + (x >> 40) as usize % 4500;
        dev.write_all_at(off, &pattern(100 + i, n)).unwrap();
        total += n as u64 + 1024;
    }
    dev.write_all_at(4096, &vec![0u8; 64 << 10]).unwrap();
    dev.write_all_at(SIZE / 2, &pattern(9, MIB as usize))
        .unwrap();
    dev.write_all_at(SIZE - 512, &[5u8; 512]).unwrap();
    dev.flush().unwrap();
    total + (64 << 10) + MIB + 512
}

/// Our `uml_moo COW OUT` under strace; returns its `copy_file_range` lines.
fn traced_merge(cow: &Path, out: &Path, log: &Path) -> Vec<String> {
    run_ok(
        "strace",
        [
            Path::new("-f"),
            Path::new("-qq"),
            Path::new("-e"),
            Path::new("trace=copy_file_range"),
            Path::new("-o"),
            log,
            &bin("uml_moo"),
            Path::new("-q"),
            cow,
            out,
        ],
    );
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("copy_file_range("))
        .map(str::to_owned)
        .collect()
}

/// The result of a traced call: `= N` or `= -1 ERRNO ...`.
fn result(line: &str) -> &str {
    line.rsplit_once(") = ").map_or("", |(_, r)| r.trim())
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Merges a dirtied COW over a backing file on `fs`; checks the calls, the
/// bytes against Debian's merge and the holes.
fn merge_on(test: &str, fs: &str) {
    let mut peers = vec!["uml_moo", "strace"];
    if fs != "tmpfs" {
        peers.extend(["losetup", "mkfs.ext4"]);
    }
    if !common::have_root(test) || !common::have_peers(test, &peers) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Mounted::new(dir.path(), "mnt", fs);
    let b = mnt.join("root_fs");
    backing(&b);
    let cow = mnt.join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &b]);
    let dirty_bytes = dirty(&cow);

    let ours = mnt.join("ours.img");
    let calls = traced_merge(&cow, &ours, &dir.path().join("strace.log"));
    let copied: u64 = calls
        .iter()
        .filter_map(|l| result(l).parse::<u64>().ok())
        .sum();
    let failed: Vec<_> = calls
        .iter()
        .filter(|l| result(l).starts_with('-'))
        .collect();
    assert!(
        failed.is_empty() && copied > 0,
        "expected successful copy_file_range calls on {fs}, got:\n{}",
        calls.join("\n")
    );
    // The clean data of the backing file went through the kernel: most of
    // its 5/8 of data (the COW covers the rest).
    assert!(
        copied >= SIZE * 5 / 8 - dirty_bytes,
        "copy_file_range copied only {copied} bytes"
    );

    let theirs = mnt.join("theirs.img");
    run_ok("uml_moo", [&cow, &theirs]);
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "our merge on {fs} differs from Debian's"
    );
    // The backing file's hole stays a hole: nothing beyond the backing
    // file's data and the COW's sectors is allocated.
    let (got, limit) = (allocated(&ours), allocated(&b) + dirty_bytes + MIB);
    assert!(
        got <= limit,
        "merged image allocates {got} bytes, more than backing + COW ({limit})"
    );
}

#[test]
fn a_merge_on_ext4_copies_the_backing_data_with_copy_file_range_and_equals_debian() {
    merge_on(
        "a_merge_on_ext4_copies_the_backing_data_with_copy_file_range_and_equals_debian",
        "ext4",
    );
}

#[test]
fn a_merge_on_tmpfs_copies_the_backing_data_with_copy_file_range_and_equals_debian() {
    merge_on(
        "a_merge_on_tmpfs_copies_the_backing_data_with_copy_file_range_and_equals_debian",
        "tmpfs",
    );
}

#[test]
fn a_merge_across_file_systems_falls_back_to_read_and_write_when_the_kernel_refuses() {
    let t = "a_merge_across_file_systems_falls_back_to_read_and_write_when_the_kernel_refuses";
    if !common::have_root(t) || !common::have_peers(t, &["uml_moo", "strace", "mkfs.ext4"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shm = Mounted::new(dir.path(), "shm", "tmpfs");
    let ext4 = Mounted::new(dir.path(), "ext4", "ext4");
    let b = shm.join("root_fs");
    backing(&b);
    let cow = ext4.join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &b]);
    let dirty_bytes = dirty(&cow);
    let ours = ext4.join("ours.img");
    let calls = traced_merge(&cow, &ours, &dir.path().join("strace.log"));
    let failed = calls.iter().filter(|l| result(l).starts_with('-')).count();
    // Kernels since 5.19 refuse copies between different file system types
    // (EXDEV); older ones copy. Either way the result must be whole; when
    // refused, each merge thread tries once and then reads and writes.
    if failed > 0 {
        assert!(
            failed == calls.len() && failed <= 4,
            "after a refusal the merge should stop trying:\n{}",
            calls.join("\n")
        );
        assert!(
            calls
                .iter()
                .all(|l| ["EXDEV", "EOPNOTSUPP", "ENOSYS", "EINVAL"]
                    .iter()
                    .any(|e| result(l).contains(e))),
            "unexpected errors:\n{}",
            calls.join("\n")
        );
    }
    eprintln!("copy_file_range across file systems: {calls:?}");
    let theirs = ext4.join("theirs.img");
    run_ok("uml_moo", [&cow, &theirs]);
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "our merge across file systems differs from Debian's"
    );
    let (got, limit) = (allocated(&ours), allocated(&b) + dirty_bytes + MIB);
    assert!(got <= limit, "allocates {got}, limit {limit}");
}
