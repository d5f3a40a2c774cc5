//! Fuzz the inode parser and what is derived from a parsed inode (type,
//! device number, fast-symlink test, block pointers, extent root, in-inode
//! extended attributes).
#![no_main]

use umlkit::ext3::extent::ExtentNode;
use umlkit::ext3::xattr::parse_inode_area;
use umlkit::ext3::Inode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let huge = data.first().is_some_and(|b| b & 1 != 0);
    if let Ok(inode) = Inode::parse(data.get(1..).unwrap_or_default(), huge) {
        let _ = inode.file_type();
        let _ = inode.device_number();
        let _ = inode.is_fast_symlink(4096);
        let _ = inode.sectors(1024);
        let _ = inode.block_pointers();
        let _ = ExtentNode::parse(&inode.i_block);
        let _ = parse_inode_area(&inode.inline_xattrs);
    }
});
