//! fallocate on the journaling writer (issue 15): on a default
//! `mke2fs -t ext4` image, allocation makes unwritten extents (`[u]`
//! in `debugfs stat`), with and without `FALLOC_FL_KEEP_SIZE`; writing into
//! them turns the written part initialized; punching frees whole blocks and
//! zeroes the edges. `e2fsck -fn` is clean after each step (it checks
//! `i_blocks`), and a guest of our `linux` runs busybox `fallocate` on its
//! ext4 root.

mod common;

use common::fsck_clean;
use common::kernel::{can_boot, test_user, KGuest, EXT4_ROOT_ARGS};
use std::path::Path;
use std::time::Duration;
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::fs::{Error, InodeFs, Owner, SetAttr, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};

const ROOT: u32 = 2;
const ME: Owner = Owner { uid: 0, gid: 0 };
const MIB: u64 = 1 << 20;

fn mkfs(img: &Path, extra: &[&str]) {
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", "ext4"]
            .iter()
            .chain(extra)
            .chain(&[img.to_str().unwrap(), "64M"]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
}

fn debugfs(img: &Path, cmd: &str) -> String {
    common::stdout(&common::run(
        "debugfs",
        ["-R".as_ref(), cmd.as_ref(), img.as_os_str()],
    ))
}

fn open(img: &Path) -> Writer<FileDevice> {
    Writer::open(
        FileDevice::open_read_write(img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap()
}

/// Closes the writer, checks the image with `e2fsck -fn` and returns
/// `debugfs stat FILE` and the file's bytes as the reader sees them.
fn close_and_check(w: Writer<FileDevice>, img: &Path, name: &str) -> (String, Vec<u8>) {
    w.unmount().unwrap();
    drop(w);
    fsck_clean(img);
    let stat = debugfs(img, &format!("stat /{name}"));
    let r = umlkit::ext3::Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let ino = r.lookup(ROOT, name.as_bytes()).unwrap();
    let size = r.getattr(ino).unwrap().size;
    let mut buf = vec![0xEEu8; usize::try_from(size).unwrap()];
    let n = r.read(ino, 0, &mut buf).unwrap();
    assert_eq!(n as u64, size);
    (stat, buf)
}

/// Blocks `debugfs stat` counts, from "Blockcount: N" (512-byte sectors).
fn blockcount(stat: &str) -> u64 {
    let at = stat.find("Blockcount: ").expect("Blockcount") + 12;
    stat[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The extents `debugfs stat` lists: (first, last logical block,
/// unwritten), and how many tree blocks ("ETB") it names.
fn extents(stat: &str) -> (Vec<(u64, u64, bool)>, u64) {
    let list = &stat[stat.find("EXTENTS:").expect("EXTENTS") + 8..];
    let (mut out, mut etb) = (Vec::new(), 0);
    for item in list.split(", ") {
        let inner = item.trim().trim_start_matches('(');
        let Some(close) = inner.find(')') else {
            continue;
        };
        let range = &inner[..close];
        if range.starts_with("ETB") {
            etb += 1;
            continue;
        }
        let unwritten = range.ends_with("[u]");
        let range = range.trim_end_matches("[u]");
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        out.push((a.parse().unwrap(), b.parse().unwrap(), unwritten));
    }
    (out, etb)
}

/// Data blocks (from the extent list) plus tree blocks, in sectors: what
/// `i_blocks` must hold; also checks it against `Blockcount`.
fn checked_data_blocks(stat: &str, bs: u64) -> u64 {
    let (exts, etb) = extents(stat);
    let data: u64 = exts.iter().map(|(a, b, _)| b - a + 1).sum();
    assert_eq!(blockcount(stat), (data + etb) * (bs / 512), "{stat}");
    data
}

fn size_of(stat: &str) -> u64 {
    let at = stat.find("Size: ").expect("Size") + 6;
    stat[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn fallocate_makes_unwritten_extents_writes_convert_them_and_punch_frees() {
    let t = "fallocate_makes_unwritten_extents_writes_convert_them_and_punch_frees";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("f.img");
    mkfs(&img, &[]);

    // KEEP_SIZE: 10 MiB allocated, size stays 0, all unwritten.
    let w = open(&img);
    let bs = u64::from(w.statfs().unwrap().block_size);
    let keep = w.create(ROOT, b"keep", 0o644, ME).unwrap().ino;
    w.fallocate(keep, 0, 10 * MIB, FALLOC_FL_KEEP_SIZE).unwrap();
    let m = w.getattr(keep).unwrap();
    assert_eq!(m.size, 0);
    let (stat, data) = close_and_check(w, &img, "keep");
    assert!(stat.contains("[u]"), "no unwritten extent: {stat}");
    assert_eq!(size_of(&stat), 0);
    assert_eq!(checked_data_blocks(&stat, bs), 10 * MIB / bs);
    assert!(extents(&stat).0.iter().all(|e| e.2), "{stat}");
    assert!(data.is_empty());

    // Mode 0: 10 MiB, size 10 MiB, reads as zeros.
    let w = open(&img);
    let f = w.create(ROOT, b"f", 0o644, ME).unwrap().ino;
    w.fallocate(f, 0, 10 * MIB, 0).unwrap();
    assert_eq!(w.getattr(f).unwrap().size, 10 * MIB);
    let (stat, data) = close_and_check(w, &img, "f");
    assert!(stat.contains("[u]"), "{stat}");
    assert_eq!(size_of(&stat), 10 * MIB);
    assert_eq!(checked_data_blocks(&stat, bs), 10 * MIB / bs);
    assert!(extents(&stat).0.iter().all(|e| e.2), "{stat}");
    assert!(
        data.iter().all(|&b| b == 0),
        "unwritten extents read as zeros"
    );

    // A write into the middle, not block aligned: the extent splits in 3;
    // the rest of the partly written blocks reads as zeros.
    let w = open(&img);
    let at = 5 * MIB + 100;
    let payload = vec![0xABu8; 10_000];
    assert_eq!(w.write(f, at, &payload).unwrap(), payload.len());
    let (stat, data) = close_and_check(w, &img, "f");
    // Exactly the written blocks are initialized.
    let written: Vec<(u64, u64)> = extents(&stat)
        .0
        .iter()
        .filter(|e| !e.2)
        .map(|e| (e.0, e.1))
        .collect();
    let (first, last) = (at / bs, (at + payload.len() as u64 - 1) / bs);
    assert_eq!(written, [(first, last)], "written part: {stat}");
    assert_eq!(
        checked_data_blocks(&stat, bs),
        10 * MIB / bs,
        "no block added"
    );
    let at = usize::try_from(at).unwrap();
    assert!(data[..at].iter().all(|&b| b == 0));
    assert_eq!(&data[at..at + payload.len()], &payload[..]);
    assert!(data[at + payload.len()..].iter().all(|&b| b == 0));

    // Punch 8 KiB from 1000 bytes into the written part: the whole
    // blocks inside are freed and the edges zeroed; and 1 MiB + 1000 bytes
    // of the unwritten part: 1 MiB of blocks freed.
    let w = open(&img);
    let punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    let (p_off, p_len) = (5 * MIB + 1000, 8192);
    w.fallocate(f, p_off, p_len, punch).unwrap();
    w.fallocate(f, MIB, MIB + 1000, punch).unwrap();
    let (stat, data) = close_and_check(w, &img, "f");
    assert_eq!(size_of(&stat), 10 * MIB, "punch keeps the size");
    let punched_blocks = (p_off + p_len) / bs - p_off.div_ceil(bs);
    let f_blocks = checked_data_blocks(&stat, bs);
    assert_eq!(
        f_blocks,
        (10 * MIB - MIB) / bs - punched_blocks,
        "blocks freed"
    );
    let (a, b) = (
        usize::try_from(p_off).unwrap(),
        usize::try_from(p_off + p_len).unwrap(),
    );
    let end = at + payload.len();
    assert!(data[..at].iter().all(|&x| x == 0));
    assert!(data[at..a].iter().all(|&x| x == 0xAB), "bytes before kept");
    assert!(
        data[a..b].iter().all(|&x| x == 0),
        "punched range reads zeros"
    );
    assert!(data[b..end].iter().all(|&x| x == 0xAB), "bytes after kept");
    assert!(data[end..].iter().all(|&x| x == 0));

    // Writing past the end into the KEEP_SIZE blocks uses them.
    let w = open(&img);
    w.write(keep, 8 * MIB, b"tail").unwrap();
    let (stat, data) = close_and_check(w, &img, "keep");
    assert_eq!(size_of(&stat), 8 * MIB + 4);
    assert_eq!(checked_data_blocks(&stat, bs), 10 * MIB / bs);
    assert_eq!(&data[8 * MIB as usize..], b"tail");
    assert!(data[..8 * MIB as usize].iter().all(|&x| x == 0));

    // Modes the writer does not do, and truncate/unlink free unwritten
    // blocks too.
    let w = open(&img);
    for mode in [0x10, 0x08, 0x20, FALLOC_FL_PUNCH_HOLE] {
        assert_eq!(w.fallocate(f, 0, MIB, mode), Err(Error::Unsupported));
    }
    assert_eq!(w.fallocate(f, 0, 0, 0), Err(Error::InvalidArgument));
    let set = SetAttr {
        size: Some(MIB),
        ..SetAttr::default()
    };
    w.setattr(keep, &set).unwrap();
    let free_before = w.statfs().unwrap().free_blocks;
    w.unlink(ROOT, b"f").unwrap();
    w.forget(f);
    let (stat, _) = close_and_check(w, &img, "keep");
    assert_eq!(checked_data_blocks(&stat, bs), MIB / bs);
    assert!(extents(&stat).0.iter().all(|e| e.1 < MIB / bs), "{stat}");
    let w = open(&img);
    let freed = w.statfs().unwrap().free_blocks - free_before;
    assert!(
        freed >= f_blocks,
        "unlink freed {freed} of {f_blocks} blocks"
    );
    drop(w);
}

#[test]
fn fallocate_on_a_block_mapped_file_is_not_supported() {
    let t = "fallocate_on_a_block_mapped_file_is_not_supported";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("e3.img");
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", "ext3", img.to_str().unwrap(), "16M"],
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
    let w = open(&img);
    let f = w.create(ROOT, b"f", 0o644, ME).unwrap().ino;
    assert_eq!(w.fallocate(f, 0, MIB, 0), Err(Error::Unsupported));
    assert_eq!(w.getattr(f).unwrap().size, 0);
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
}

const INIT: &str = r#"#!/bin/sh
echo GUEST-UP
fallocate -l 8M /f && echo FALLOC=ok
dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\000' 'Q' > /q
dd if=/q of=/f bs=4096 seek=10 count=1 conv=notrunc 2>/dev/null && echo DD=ok
sync && echo SYNC=ok
poweroff -f
"#;

#[test]
fn a_guest_fallocates_on_its_ext4_root_and_the_image_has_unwritten_extents() {
    let t = "a_guest_fallocates_on_its_ext4_root_and_the_image_has_unwritten_extents";
    if !can_boot(t) || !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let Some(user) = test_user(t) else {
        return;
    };
    let g = KGuest::with_ext4_root(user, INIT);
    let args = EXT4_ROOT_ARGS;
    let out = g.run(&args, Duration::from_secs(30)).output;
    assert!(out.contains("FALLOC=ok"), "{out}");
    assert!(out.contains("DD=ok"), "{out}");
    assert!(out.contains("SYNC=ok"), "{out}");
    let img = g.path("root_ext4");
    fsck_clean(&img);
    let stat = debugfs(&img, "stat /f");
    assert_eq!(size_of(&stat), 8 * MIB, "{stat}");
    let (exts, _) = extents(&stat);
    assert!(exts.iter().any(|e| e.2), "no unwritten extent: {stat}");
    assert!(
        exts.iter().any(|e| !e.2),
        "written block not initialized: {stat}"
    );
    let data = common::run(
        "debugfs",
        ["-R".as_ref(), "cat /f".as_ref(), img.as_os_str()],
    );
    let data = data.stdout;
    assert_eq!(data.len() as u64, 8 * MIB);
    let at = 10 * 4096;
    assert!(data[..at].iter().all(|&b| b == 0));
    let q = common::run(
        "debugfs",
        ["-R".as_ref(), "cat /q".as_ref(), img.as_os_str()],
    )
    .stdout;
    assert_eq!(q.len(), 4096);
    assert!(q.contains(&b'Q'));
    assert!(data[at..at + 4096] == q[..], "the dd block is not /q");
    assert!(data[at + 4096..].iter().all(|&b| b == 0));
}

#[test]
fn an_allocation_past_32767_blocks_is_split_into_unwritten_extents_of_at_most_32767() {
    let t = "an_allocation_past_32767_blocks_is_split_into_unwritten_extents_of_at_most_32767";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    mkfs(&img, &["-b", "1024"]);
    let w = open(&img);
    let f = w.create(ROOT, b"big", 0o644, ME).unwrap().ino;
    w.fallocate(f, 0, 40 * MIB, FALLOC_FL_KEEP_SIZE).unwrap();
    let (stat, _) = close_and_check(w, &img, "big");
    let (exts, _) = extents(&stat);
    assert!(exts.len() >= 2, "{stat}");
    assert!(
        exts.iter().all(|e| e.2 && e.1 - e.0 < 32767),
        "an unwritten extent longer than 32767 blocks: {stat}"
    );
    assert_eq!(checked_data_blocks(&stat, 1024), 40 * MIB / 1024);
}

/// Allocates, writes into, punches and preallocates past the end of
/// `/f` until the injected failure; returns how many steps succeeded.
fn crash_workload(w: &Writer<FileDevice>) -> usize {
    let punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    let Ok(f) = w.create(ROOT, b"f", 0o644, ME) else {
        return 0;
    };
    let steps: [&dyn Fn() -> bool; 4] = [
        &|| w.fallocate(f.ino, 0, 2 * MIB, 0).is_ok(),
        &|| w.write(f.ino, 100_000, &[7u8; 5000]).is_ok(),
        &|| w.fallocate(f.ino, 300_000, 300_000, punch).is_ok(),
        &|| {
            w.fallocate(f.ino, 2 * MIB, MIB, FALLOC_FL_KEEP_SIZE)
                .is_ok()
        },
    ];
    let mut done = 1;
    for step in steps {
        if !step() {
            break;
        }
        done += 1;
    }
    done
}

fn check_crash(img: &Path, done: usize) {
    fsck_clean(img);
    if done < 2 {
        return;
    }
    let stat = debugfs(img, "stat /f");
    assert_eq!(size_of(&stat), 2 * MIB, "committed fallocate: {stat}");
    if done >= 3 {
        let data = common::run(
            "debugfs",
            ["-R".as_ref(), "cat /f".as_ref(), img.as_os_str()],
        )
        .stdout;
        assert!(
            data[100_000..105_000].iter().all(|&b| b == 7),
            "committed write"
        );
        assert!(data[..100_000].iter().all(|&b| b == 0));
    }
}

#[test]
fn killed_at_any_write_during_fallocate_and_punch_the_image_recovers_clean() {
    let t = "killed_at_any_write_during_fallocate_and_punch_the_image_recovers_clean";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("p.img");
    mkfs(&pristine, &[]);
    let mut n = 1u64;
    let mut finished = false;
    while n < 300 && !finished {
        let img = dir.path().join("c.img");
        std::fs::copy(&pristine, &img).unwrap();
        let opts = WriteOptions {
            sync_each_op: true,
            fail_after_writes: Some(n),
            ..WriteOptions::default()
        };
        n += 1;
        let Ok(w) = Writer::open(FileDevice::open_read_write(&img).unwrap(), opts) else {
            continue;
        };
        let done = crash_workload(&w);
        finished = w.unmount().is_ok();
        drop(w);
        let copy = dir.path().join("e.img");
        std::fs::copy(&img, &copy).unwrap();
        let out = common::run("e2fsck", ["-fy".as_ref(), copy.as_os_str()]);
        assert!(
            out.status.code().unwrap_or(8) < 4,
            "{}",
            common::stdout(&out)
        );
        check_crash(&copy, done);
        let w = open(&img);
        w.unmount().unwrap();
        drop(w);
        check_crash(&img, done);
    }
    assert!(finished, "the workload never finished in {n} writes");
}

#[test]
fn fallocate_on_a_read_only_filesystem_is_read_only() {
    // The FUSE server maps Error::ReadOnly to EROFS (fuse_attr::errno).
    let t = "fallocate_on_a_read_only_filesystem_is_read_only";
    if !common::have_peers(t, &["mke2fs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ro.img");
    mkfs(&img, &[]);
    let fs = umlkit::ext3::Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
    let ro = umlkit::ext3::ReadOnly::new(fs);
    let lf = ro.lookup(ROOT, b"lost+found").unwrap().ino;
    assert_eq!(ro.fallocate(lf, 0, MIB, 0), Err(Error::ReadOnly));
}
