//! Journal replay against the real kernel: a UML guest writes files, waits
//! for the journal to commit and powers off without unmounting or syncing,
//! leaving committed but not checkpointed transactions. umlkit's view of
//! the dirty image (replayed in memory) must equal the view after
//! `e2fsck -fy` on a copy, directly and through a COW file, and
//! `uml_fs diff` must list exactly what the guest changed.

mod common;

use common::uml::Guest;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use umlkit::block::{BlockDevice, FileDevice};
use umlkit::ext3::{Ext3, FileType, Metadata, OpenOptions};

/// The guest's work. The final `fsync` commits the transaction to the
/// journal; `poweroff -f -n` halts without syncing, before the metadata is
/// written back in place (that waits ~30 s).
const GUEST: &str = r#"#!/bin/sh
mount -t proc proc /proc
echo GUEST-UP
mkdir /data/sub
i=0
while [ $i -lt 10 ]; do echo "file number $i" > /data/f$i; i=$((i+1)); done
head -c 300000 /bin/busybox > /data/big
ln -s /data/f1 /data/link
echo changed-host > /etc/hostname
chmod 700 /init
rm /bin/vi
# fsync commits the running transaction (all of the above) to the
# journal without writing metadata back in place, as sync would.
echo nested | dd of=/data/sub/x conv=fsync 2>/dev/null
grep -qE " / ext[34] " /proc/mounts && echo ROOT-MOUNTED
echo GUEST-DONE
poweroff -f -n
"#;

/// What the guest script changes, as `uml_fs diff` prints it.
const EXPECTED_DIFF: &[(&str, &str)] = &[
    ("metadata", "/bin"),
    ("removed", "/bin/vi"),
    ("metadata", "/data"),
    ("added", "/data/big"),
    ("added", "/data/f0"),
    ("added", "/data/f1"),
    ("added", "/data/f2"),
    ("added", "/data/f3"),
    ("added", "/data/f4"),
    ("added", "/data/f5"),
    ("added", "/data/f6"),
    ("added", "/data/f7"),
    ("added", "/data/f8"),
    ("added", "/data/f9"),
    ("added", "/data/link"),
    ("added", "/data/sub"),
    ("added", "/data/sub/x"),
    ("modified", "/etc/hostname"),
    ("metadata", "/init"),
];

/// Path -> (metadata without inode number and access time, content or
/// symlink target).
type View = BTreeMap<Vec<u8>, (String, Vec<u8>)>;

fn view<D: BlockDevice>(fs: &Ext3<D>) -> View {
    let mut v = BTreeMap::new();
    fs.walk(umlkit::ext3::ROOT_INO, b"/", |n| {
        let m: &Metadata = &n.meta;
        let data = match m.file_type {
            FileType::Regular => {
                let mut buf = vec![0u8; m.size as usize];
                let got = fs.read(m.ino, 0, &mut buf)?;
                buf.truncate(got);
                buf
            }
            FileType::Symlink => fs.readlink(m.ino)?,
            _ => Vec::new(),
        };
        let key = format!(
            "{:?} {:o} {} {}:{} size={} mtime={:?} ctime={:?} rdev={:?}",
            m.file_type, m.perm, m.nlink, m.uid, m.gid, m.size, m.mtime, m.ctime, m.rdev
        );
        v.insert(n.path.clone(), (key, data));
        Ok(true)
    })
    .unwrap();
    v
}

fn assert_same_view(got: &View, want: &View, what: &str) {
    for (p, w) in want {
        let shown = String::from_utf8_lossy(p);
        let g = got
            .get(p)
            .unwrap_or_else(|| panic!("{what}: {shown} missing"));
        assert_eq!(g.0, w.0, "{what}: {shown} metadata");
        assert!(g.1 == w.1, "{what}: {shown} content differs");
    }
    for p in got.keys() {
        assert!(
            want.contains_key(p),
            "{what}: {} should not exist",
            String::from_utf8_lossy(p)
        );
    }
}

/// Copies `dev` into a new plain file at `dest` and returns the view
/// after `e2fsck -fy` on it.
fn fsck_view(dev: &dyn BlockDevice, dest: &Path) -> View {
    let len = dev.len();
    let out = FileDevice::from_file(std::fs::File::create(dest).unwrap(), dest, true).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        dev.read_exact_at(off, &mut buf[..n]).unwrap();
        out.write_all_at(off, &buf[..n]).unwrap();
        off += n as u64;
    }
    drop(out);
    let r = common::run(
        common::which("e2fsck").unwrap(),
        ["-fy".as_ref(), dest.as_os_str()],
    );
    assert!(
        r.status.code().unwrap_or(99) <= 1,
        "e2fsck -fy: {}{}",
        common::stdout(&r),
        common::stderr(&r)
    );
    let fs = Ext3::open(FileDevice::open_read_only(dest).unwrap()).unwrap();
    assert!(!fs.needs_recovery(), "e2fsck left the journal dirty");
    view(&fs)
}

fn boot_dirty(test: &str, disk: &str, features: &str) -> Option<Guest> {
    if !common::have_peers(
        test,
        &[
            "linux.uml",
            "mke2fs",
            "busybox",
            "e2fsck",
            "dumpe2fs",
            "tune2fs",
        ],
    ) {
        return None;
    }
    let guest = Guest::new(GUEST, 24);
    if !features.is_empty() {
        // Turns the ext3 image into an ext4 one whose journal the kernel
        // checksums (v3) and whose new files use extents.
        common::run_ok(
            common::which("tune2fs").unwrap(),
            ["-O".as_ref(), features.as_ref(), guest.image.as_os_str()],
        );
    }
    // Index the big directories now: `e2fsck -f` later would otherwise
    // rehash /bin (an optimization, not recovery) and change its size.
    let r = common::run(
        common::which("e2fsck").unwrap(),
        ["-fyD".as_ref(), guest.image.as_os_str()],
    );
    assert!(
        r.status.code().unwrap_or(99) <= 1,
        "e2fsck -fyD: {}",
        common::stdout(&r)
    );
    let boot = guest.boot(disk, &[&format!("umid={test}")], Duration::from_secs(90));
    assert!(
        boot.output.contains("GUEST-DONE"),
        "guest did not finish: {boot:?}"
    );
    assert!(boot.output.contains("ROOT-MOUNTED"), "{}", boot.output);
    Some(guest)
}

#[test]
fn dirty_journal_from_the_real_kernel_reads_like_e2fsck_fy() {
    plain_case("dirty_journal_plain", "");
}

#[test]
fn dirty_checksummed_ext4_journal_from_the_real_kernel_reads_like_e2fsck_fy() {
    plain_case(
        "dirty_journal_csum",
        "extent,metadata_csum,huge_file,dir_nlink,extra_isize",
    );
}

fn plain_case(test: &str, features: &str) {
    let Some(guest) = boot_dirty(test, "root_fs", features) else {
        return;
    };
    let image = guest.image.clone();
    let dump = common::fsimg::dumpe2fs_header(&image);
    if !features.is_empty() {
        assert!(
            dump["Journal features"].contains("journal_checksum_v3"),
            "{dump:?}"
        );
    }
    assert!(
        dump["Filesystem features"].contains("needs_recovery"),
        "the guest left a clean journal: {dump:?}"
    );

    let info = common::umlkit("uml_fs", ["info".as_ref(), image.as_os_str()]);
    assert!(info.status.success(), "{}", common::stderr(&info));
    let labels = common::fsimg::labels(&common::stdout(&info));
    assert_eq!(labels["Needs recovery"], "yes");
    assert!(
        labels.contains_key("Journal replayed"),
        "{}",
        common::stdout(&info)
    );

    let fs = Ext3::open(FileDevice::open_read_only(&image).unwrap()).unwrap();
    let report = fs.replay_report().expect("replay ran").clone();
    assert!(
        report.transactions > 0 && report.blocks > 0 && report.bad_checksums == 0,
        "{report:?}"
    );
    let ours = view(&fs);
    let want = fsck_view(fs.device().inner(), &guest.path("fscked"));
    assert_same_view(&ours, &want, "replayed view vs e2fsck -fy");
    assert!(want.contains_key(&b"/data/sub/x"[..]));

    // Without replay the guest's files are (at least partly) missing: the
    // test really depends on the journal.
    let raw = Ext3::open_with(
        FileDevice::open_read_only(&image).unwrap(),
        OpenOptions {
            replay_journal: false,
        },
    );
    let differs = match raw {
        Ok(raw) => {
            let mut v = BTreeMap::new();
            let _ = raw.walk(umlkit::ext3::ROOT_INO, b"/", |n| {
                v.insert(n.path.clone(), n.meta.size);
                Ok(true)
            });
            v.len() != want.len() || !v.contains_key(&b"/data/sub/x"[..])
        }
        Err(_) => true,
    };
    assert!(
        differs,
        "the on-disk state already holds everything: nothing was left to replay"
    );
    // Reading never wrote the image.
    let after = common::fsimg::dumpe2fs_header(&image);
    assert!(after["Filesystem features"].contains("needs_recovery"));
}

#[test]
fn dirty_journal_through_a_kernel_made_cow_reads_like_e2fsck_and_diff_lists_the_changes() {
    let test = "dirty_journal_cow";
    let Some(guest) = boot_dirty(test, "a.cow,root_fs", "") else {
        return;
    };
    let cow = guest.path("a.cow");
    let spec = format!("{},{}", cow.display(), guest.image.display());
    // The backing file stayed clean; the COW's view needs recovery.
    let dump = common::fsimg::dumpe2fs_header(&guest.image);
    assert!(!dump["Filesystem features"].contains("needs_recovery"));
    let info = common::umlkit("uml_fs", ["info", spec.as_str()]);
    assert!(info.status.success(), "{}", common::stderr(&info));
    assert_eq!(
        common::fsimg::labels(&common::stdout(&info))["Needs recovery"],
        "yes"
    );

    let disk = umlkit::ext3::tool::open_device(&spec).unwrap();
    let fs = Ext3::open(&disk).unwrap();
    let ours = view(&fs);
    let want = fsck_view(&disk, &guest.path("merged"));
    assert_same_view(&ours, &want, "COW view vs e2fsck -fy of the merged image");
    // Skipping files on blocks the COW did not change gives the same diff
    // as reading everything.
    let backing = Ext3::open(disk.backing().unwrap()).unwrap();
    let unchanged =
        |r: std::ops::Range<u64>| umlkit::ext3::tool::unchanged_in_cow(&disk, &backing, &fs, r);
    let fast = umlkit::ext3::tool::diff_trees_with(&backing, &fs, &unchanged).unwrap();
    let slow = umlkit::ext3::tool::diff_trees(&backing, &fs).unwrap();
    assert_eq!(fast, slow);
    // The kernel wrote the superblock (needs_recovery) into the COW; the
    // blocks of /bin/busybox stayed in the backing file.
    assert!(!unchanged(1024..2048));
    let bb = fs.resolve(b"/bin/busybox", false).unwrap();
    let runs = fs.data_runs(bb, &fs.inode(bb).unwrap()).unwrap();
    let bs = u64::from(fs.block_size());
    assert!(runs.iter().all(|(_, r)| match *r {
        umlkit::ext3::map::Run::Data { pblk, len } => unchanged(pblk * bs..(pblk + len) * bs),
        umlkit::ext3::map::Run::Hole(_) => true,
    }));
    drop(backing);
    drop(fs);
    drop(disk);

    let diff = common::umlkit("uml_fs", ["diff", spec.as_str()]);
    assert!(diff.status.success(), "{}", common::stderr(&diff));
    let got: Vec<(String, String)> = common::stdout(&diff)
        .lines()
        .map(|l| {
            let (k, p) = l.split_once(' ').unwrap();
            (k.to_string(), p.trim().to_string())
        })
        .collect();
    let want: Vec<(String, String)> = EXPECTED_DIFF
        .iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);

    let json = common::umlkit("uml_fs", ["diff", "--json", spec.as_str()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), EXPECTED_DIFF.len());
    assert_eq!(arr[0]["path"], "/bin");
    assert_eq!(arr[0]["change"], "metadata");
}
