//! Fuzz the whole reader: the bytes are a (small) disk image; opening it
//! (with journal replay), walking every directory and reading every file,
//! symlink and attribute list must end with data or an error, never a
//! panic or a hang.
#![no_main]

use umlkit::block::MemDevice;
use umlkit::ext3::Ext3;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(fs) = Ext3::open(MemDevice::new(data.to_vec())) else {
        return;
    };
    let mut buf = vec![0u8; 8192];
    let _ = fs.walk(umlkit::ext3::ROOT_INO, b"/", |node| {
        let _ = fs.read(node.meta.ino, 0, &mut buf);
        let _ = fs.readlink(node.meta.ino);
        let _ = fs.listxattr(node.meta.ino);
        Ok(true)
    });
    let _ = fs.resolve(b"/a/b/../c", true);
});
