//! Fuzz the writer: the bytes are a (small) disk image; opening it for
//! writing (journal replay into the device, orphan processing) and a fixed
//! sequence of operations must end with success or an errno, never a
//! panic or a hang.
#![no_main]

use umlkit::block::MemDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::fs::{InodeFs, Owner, RenameFlags, SetAttr};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(w) = Writer::open(MemDevice::new(data.to_vec()), WriteOptions::default()) else {
        return;
    };
    let me = Owner { uid: 0, gid: 0 };
    let _ = w.mkdir(2, b"d", 0o755, me);
    if let Ok(f) = w.create(2, b"f", 0o644, me) {
        let _ = w.write(f.ino, 0, &[7u8; 5000]);
        let _ = w.write(f.ino, 70_000, b"x");
        let _ = w.setattr(f.ino, &SetAttr { size: Some(100), ..Default::default() });
    }
    let _ = w.symlink(2, b"s", &[b'a'; 80], me);
    let _ = w.rename(2, b"f", 2, b"g", RenameFlags::default());
    let _ = w.unlink(2, b"lost+found");
    let _ = w.rmdir(2, b"lost+found");
    let _ = w.readdir(2, 0, &mut |_| true);
    let _ = w.unmount();
});
