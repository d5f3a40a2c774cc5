//! Directory read-ahead (`kernel::disk::readahead`) through a real FUSE
//! mount of our server, as the guest's root and `uml_fs mount` are
//! served: a directory whose names are looked up one by one is listed
//! with READDIRPLUS once its share of lookups is reached, after which the
//! rest of its names are answered from the host's dentry cache and no
//! longer reach the server; a directory with few lookups is never listed.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::fs::InodeFs;
use umlkit::kernel::disk::fuse::FuseFs;
use umlkit::kernel::disk::readahead::{Readahead, MIN_MISSES};

const BIG: usize = 3000;
const SMALL: usize = 50;

#[test]
fn names_looked_up_one_by_one_are_read_ahead_and_the_rest_stay_in_the_host_cache() {
    let test = "names_looked_up_one_by_one_are_read_ahead_and_the_rest_stay_in_the_host_cache";
    if !common::have_root(test) || !common::have_peers(test, &["mke2fs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for (sub, n) in [("big", BIG), ("listed", BIG), ("small", SMALL)] {
        std::fs::create_dir_all(tree.join(sub)).unwrap();
        for i in 0..n {
            std::fs::write(tree.join(sub).join(format!("f{i}")), b"").unwrap();
        }
    }
    let img = dir.path().join("root.img");
    common::mkfs_from("ext4", &tree, &img, "32M");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();

    let writer = Writer::open(
        FileDevice::open_read_write(&img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let fs: Arc<dyn InodeFs> = Arc::new(writer);
    let ra = Readahead::start(&mnt).unwrap();
    let served = FuseFs::new(fs, true, false).read_ahead(ra.clone());
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("readahead-test".into())];
    let session = fuser::Session::new(served, &mnt, &config).unwrap();
    ra.notify_with(session.notifier());
    let background = session.spawn().unwrap();

    let exists = |sub: &str, i: usize| mnt.join(sub).join(format!("f{i}")).exists();
    for i in 0..SMALL {
        assert!(exists("small", i), "small/f{i}");
    }
    // `listed` is listed first, as `ls` would: the host then holds its
    // names without attributes, and the read-ahead must drop that.
    let listed = std::fs::read_dir(mnt.join("listed")).unwrap().count();
    assert_eq!(listed, BIG);
    for (n, sub) in ["big", "listed"].into_iter().enumerate() {
        read_ahead_after_its_share(&ra, &mnt, sub, u64::try_from(n).unwrap() + 1);
    }
    assert_eq!(ra.stats().dirs, 2, "small was never listed");
    drop(background);
}

/// Looks up `sub`'s names one by one: once its share has reached the
/// server, the directory is listed (the `nth` listing), and at most one in
/// twenty of the rest reach the server afterwards.
fn read_ahead_after_its_share(ra: &Readahead, mnt: &Path, sub: &str, nth: u64) {
    let exists = |i: usize| mnt.join(sub).join(format!("f{i}")).exists();
    // Due after an eighth of the names its size suggests: at the first
    // multiple of 64 lookups past size / 256 (and at least 64).
    let size = std::fs::metadata(mnt.join(sub)).unwrap().len();
    let due = usize::try_from((size / 256).max(u64::from(MIN_MISSES)).div_ceil(64) * 64).unwrap();
    assert!(due < BIG / 2, "{sub} is {size} bytes");
    // Names the host already holds (from a listing) do not count.
    let start = ra.stats().lookups;
    let mut looked = 0;
    while ra.stats().lookups - start < u64::try_from(due).unwrap() && looked < BIG {
        assert!(exists(looked), "{sub}/f{looked}");
        looked += 1;
    }
    // The server counts a lookup after answering it: wait for the listing.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ra.stats().dirs < nth && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        ra.wait_idle(Duration::from_secs(120)),
        "read-ahead still running"
    );
    let stats = ra.stats();
    assert_eq!(stats.dirs, nth, "{sub} was listed, once: {stats:?}");
    assert!(
        stats.names >= nth * u64::try_from(BIG).unwrap(),
        "the listing returned every name: {stats:?}"
    );
    let before = stats.lookups;
    for i in looked..BIG {
        assert!(exists(i), "{sub}/f{i}");
    }
    let reached = ra.stats().lookups - before;
    let rest = u64::try_from(BIG - looked).unwrap();
    assert!(
        rest > u64::try_from(BIG / 2).unwrap(),
        "{sub}: listed after {looked}"
    );
    assert!(
        reached * 20 <= rest,
        "{sub}: {reached} of the last {rest} lookups still reached the server"
    );
}
