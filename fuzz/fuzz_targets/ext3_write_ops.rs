//! Fuzz the writer: the bytes are a (small) disk image; opening it for
//! writing (journal replay into the device, orphan processing) and a fixed
//! sequence of operations must end with success or an errno, never a
//! panic or a hang. The operations reach the places where on-disk numbers
//! meet arithmetic: allocation against the group counts, writes at the
//! edges of the block map and past 2^32 blocks, fallocate and punch
//! against `i_size`, directory records, attributes, the journal commit.
//! Build it with overflow checks (`RUSTFLAGS="-C overflow-checks=on"`) so
//! that a wrap is a crash too. `tests/ext3_bad_input.rs` runs the same kind
//! of operations on randomly damaged real images without cargo-fuzz.
#![no_main]

use umlkit::block::MemDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::fs::{
    InodeFs, Owner, RenameFlags, SetAttr, XattrMode, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(w) = Writer::open(MemDevice::new(data.to_vec()), WriteOptions::default()) else {
        return;
    };
    let me = Owner { uid: 0, gid: 0 };
    let _ = w.statfs();
    let _ = w.mkdir(2, b"d", 0o755, me);
    if let Ok(f) = w.create(2, b"f", 0o644, me) {
        let _ = w.write(f.ino, 0, &[7u8; 5000]);
        let _ = w.write(f.ino, 70_000, b"x");
        let _ = w.write(f.ino, (1 << 32) * 1024 - 1, b"edge");
        let _ = w.fallocate(f.ino, 0, 1 << 20, FALLOC_FL_KEEP_SIZE);
        let _ = w.fallocate(f.ino, 4096, 4096, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
        let _ = w.setxattr(f.ino, b"user.a", &[1u8; 300], XattrMode::Any);
        let _ = w.setattr(f.ino, &SetAttr { size: Some(100), ..Default::default() });
        let _ = w.link(f.ino, 2, b"h");
    }
    // Files already on the image: whatever their records say.
    for ino in 11..16 {
        let _ = w.write(ino, 3000, &[1u8; 3000]);
        let _ = w.fallocate(ino, 8192, 8192, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
        let _ = w.setattr(ino, &SetAttr { size: Some(1), ..Default::default() });
    }
    let _ = w.symlink(2, b"s", &[b'a'; 80], me);
    let _ = w.rename(2, b"f", 2, b"g", RenameFlags::default());
    let _ = w.unlink(2, b"lost+found");
    let _ = w.rmdir(2, b"lost+found");
    let _ = w.readdir(2, 0, &mut |_| true);
    let _ = w.unmount();
});
