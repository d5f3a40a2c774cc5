//! Crash tests of the ext3 writer: every device write after the Nth fails
//! (as if the process were killed there), for many N; the next open
//! replays the journal, and then `e2fsck -fn` is clean and every operation
//! that returned success (each committed: `sync_each_op`) is present. The
//! same dirty image replayed by e2fsprogs instead of us gives the same
//! files, which checks our log format against e2fsck's recovery.

mod common;

use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::ext3::Ext3;
use umlkit::fs::{InodeFs, Owner, RenameFlags};

const ROOT: u32 = 2;
const ME: Owner = Owner { uid: 0, gid: 0 };

/// Runs the workload until the injected failure; returns the names whose
/// creation (with contents) succeeded, and those renamed to `r<i>`.
fn workload(w: &Writer<FileDevice>) -> Vec<(String, Vec<u8>)> {
    let mut done = Vec::new();
    for i in 0..9 {
        let name = format!("f{i}");
        let data = common::pattern(i, 3000 * (i as usize + 1));
        let Ok(md) = w.create(ROOT, name.as_bytes(), 0o644, ME) else {
            break;
        };
        if w.write(md.ino, 0, &data).is_err() {
            break;
        }
        if i % 3 == 2 {
            let new = format!("r{i}");
            if w.rename(
                ROOT,
                name.as_bytes(),
                ROOT,
                new.as_bytes(),
                RenameFlags::default(),
            )
            .is_err()
            {
                break;
            }
            done.push((new, data));
        } else {
            done.push((name, data));
        }
        if i % 4 == 3 {
            let (gone, _) = done.remove(0);
            // A failed unlink may or may not have committed: not checked.
            if w.unlink(ROOT, gone.as_bytes()).is_err() {
                break;
            }
        }
    }
    done
}

fn check_present(img: &Path, done: &[(String, Vec<u8>)]) {
    let r = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    for (name, data) in done {
        let ino = r
            .lookup(ROOT, name.as_bytes())
            .unwrap_or_else(|_| panic!("{name} lost"));
        let mut b = vec![0u8; data.len() + 1];
        let n = r.read(ino, 0, &mut b).unwrap();
        assert!(b[..n] == data[..], "{name} has the wrong contents");
    }
}

#[test]
fn killed_at_any_write_the_next_open_replays_to_a_clean_filesystem_with_every_committed_op() {
    let t =
        "killed_at_any_write_the_next_open_replays_to_a_clean_filesystem_with_every_committed_op";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    crash_run("ext3", "1024", "128", "4M", &[]);
    crash_run("ext3", "4096", "256", "16M", &[]);
}

#[test]
fn ext4_killed_at_any_write_replays_from_a_checksum_v3_journal() {
    let t = "ext4_killed_at_any_write_replays_from_a_checksum_v3_journal";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    // metadata_csum and flex_bg: the journal has checksum v3 (64bit
    // needs extents in mke2fs).
    crash_run("ext4", "1024", "256", "8M", &["-O", "^extent,^64bit"]);
    crash_run(
        "ext4",
        "4096",
        "256",
        "16M",
        &["-O", "^extent,^64bit,^metadata_csum"],
    );
    // Our orphans go on the s_last_orphan list even on an orphan_file
    // filesystem; e2fsck and our writer must both release them there.
    crash_run(
        "ext4",
        "1024",
        "256",
        "8M",
        &["-O", "^extent,^64bit,orphan_file"],
    );
}

fn crash_run(kind: &str, block_size: &str, inode_size: &str, size: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("p.img");
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", kind, "-b", block_size, "-I", inode_size]
            .iter()
            .chain(extra)
            .chain(&[pristine.to_str().unwrap(), size]),
    );
    assert!(out.status.success());
    let mut n = 1u64;
    let mut replays_by_e2fsck = 0;
    while n < 400 {
        let img = dir.path().join("c.img");
        std::fs::copy(&pristine, &img).unwrap();
        let opts = WriteOptions {
            sync_each_op: true,
            fail_after_writes: Some(n),
            ..WriteOptions::default()
        };
        let Ok(w) = Writer::open(FileDevice::open_read_write(&img).unwrap(), opts) else {
            n += 1;
            continue;
        };
        let done = workload(&w);
        let finished = w.unmount().is_ok();
        drop(w);
        // e2fsprogs' own recovery of the same dirty image.
        let copy = dir.path().join("e.img");
        std::fs::copy(&img, &copy).unwrap();
        let out = common::run("e2fsck", ["-fy".as_ref(), copy.as_os_str()]);
        if common::stdout(&out).contains("recovering journal") {
            replays_by_e2fsck += 1;
        }
        common::fsck_clean(&copy);
        check_present(&copy, &done);
        eprintln!(
            "fail after {n} writes: {} files committed, finished {finished}",
            done.len()
        );
        // Our recovery.
        let w = Writer::open(
            FileDevice::open_read_write(&img).unwrap(),
            WriteOptions::default(),
        )
        .unwrap();
        w.unmount().unwrap();
        drop(w);
        common::fsck_clean(&img);
        check_present(&img, &done);
        if finished {
            break;
        }
        n += if n < 30 { 1 } else { 13 };
    }
    assert!(
        replays_by_e2fsck > 3,
        "the crash points never left a committed log ({replays_by_e2fsck})"
    );
}

/// Creates (with names long enough to split 1 KiB leaves often), removes
/// and renames names in the indexed directory `d` until the injected
/// failure; returns the names whose operation succeeded.
fn indexed_workload(w: &Writer<FileDevice>, d: u32) -> Vec<String> {
    let mut done = Vec::new();
    for i in 0..24 {
        let name = format!("a-name-long-enough-to-fill-leaves-quickly-{i:03}");
        if w.create(d, name.as_bytes(), 0o644, ME).is_err() {
            break;
        }
        done.push(name);
        if i % 5 == 4 {
            let gone = done.remove(0);
            if w.unlink(d, gone.as_bytes()).is_err() {
                break;
            }
        }
        if i % 7 == 6 {
            let old = done.remove(0);
            let new = format!("renamed-{i}");
            if w.rename(d, old.as_bytes(), d, new.as_bytes(), RenameFlags::default())
                .is_err()
            {
                break;
            }
            done.push(new);
        }
    }
    done
}

fn check_indexed(img: &Path, d: u32, done: &[String]) {
    let r = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let inode = r.inode(d).unwrap();
    assert!(
        inode.i_flags & umlkit::ext3::inode::EXT4_INDEX_FL != 0,
        "the directory lost its index"
    );
    for name in done {
        assert!(
            matches!(
                r.htree_lookup(d, &inode, name.as_bytes()),
                Ok(Some(Some(_)))
            ),
            "{name} lost"
        );
    }
}

#[test]
fn killed_at_any_write_while_an_indexed_directory_splits_recovers_clean_with_its_index() {
    let t = "killed_at_any_write_while_an_indexed_directory_splits_recovers_clean_with_its_index";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    // Default ext4 features (extents, metadata_csum: dx_tail and dirent
    // tails) with 1 KiB blocks, so leaves split every few creates.
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("p.img");
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", "ext4", "-b", "1024"]
            .iter()
            .chain(&[pristine.to_str().unwrap(), "8M"]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
    let w = Writer::open(
        FileDevice::open_read_write(&pristine).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
    let mut before = Vec::new();
    for i in 0..40 {
        let name = format!("present-before-the-crash-{i:03}");
        w.create(d, name.as_bytes(), 0o644, ME).unwrap();
        before.push(name);
    }
    w.unmount().unwrap();
    drop(w);
    common::fsck_clean(&pristine);
    check_indexed(&pristine, d, &before);
    let mut n = 1u64;
    let mut finished = false;
    while !finished && n < 2000 {
        let img = dir.path().join("c.img");
        std::fs::copy(&pristine, &img).unwrap();
        let opts = WriteOptions {
            sync_each_op: true,
            fail_after_writes: Some(n),
            ..WriteOptions::default()
        };
        if let Ok(w) = Writer::open(FileDevice::open_read_write(&img).unwrap(), opts) {
            let mut done = indexed_workload(&w, d);
            finished = w.unmount().is_ok();
            drop(w);
            done.extend(before.iter().cloned());
            // e2fsprogs' recovery of the same dirty image, then ours.
            let copy = dir.path().join("e.img");
            std::fs::copy(&img, &copy).unwrap();
            let _ = common::run("e2fsck", ["-fy".as_ref(), copy.as_os_str()]);
            common::fsck_clean(&copy);
            check_indexed(&copy, d, &done);
            let w = Writer::open(
                FileDevice::open_read_write(&img).unwrap(),
                WriteOptions::default(),
            )
            .unwrap();
            w.unmount().unwrap();
            drop(w);
            common::fsck_clean(&img);
            check_indexed(&img, d, &done);
        }
        n += if n < 40 { 1 } else { 11 };
    }
    assert!(finished, "the workload never finished within 2000 writes");
}
