//! Random bytes into every parser (the fuzz targets' properties, checked in
//! the normal test run): each returns a value or a `Corrupt` error and
//! never panics; and a small random image behind a valid superblock never
//! panics or hangs the reader.

use super::dir::parse_block;
use super::extent::ExtentNode;
use super::group_desc::GroupDesc;
use super::inode::Inode;
use super::journal::block::{parse_descriptor, Commit, Header};
use super::journal::revoke::parse_revoke;
use super::journal::superblock::JournalSuperblock;
use super::superblock::Superblock;
use super::xattr;
use crate::block::MemDevice;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn superblock_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1100)) {
        if let Ok(sb) = Superblock::parse(&data) {
            prop_assert!(sb.block_size() >= 1024);
        }
    }

    #[test]
    fn superblock_with_random_fields_never_panics(
        patches in proptest::collection::vec((0usize..1024, any::<u8>()), 0..40)
    ) {
        let mut b = super::superblock::tests::fixture();
        for (at, v) in patches {
            b[at] = v;
        }
        let _ = Superblock::parse(&b);
    }

    #[test]
    fn inode_and_group_desc_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), huge: bool) {
        if let Ok(i) = Inode::parse(&data, huge) {
            let _ = (i.file_type(), i.device_number(), i.is_fast_symlink(1024), i.sectors(4096));
            let _ = ExtentNode::parse(&i.i_block);
            let _ = xattr::parse_inode_area(&i.inline_xattrs);
        }
        let _ = GroupDesc::parse(&data, huge);
    }

    #[test]
    fn directory_extent_and_xattr_block_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for ft in [false, true] {
            if let Ok(v) = parse_block(&data, ft) {
                for e in v {
                    prop_assert!(e.next <= data.len());
                }
            }
        }
        let _ = ExtentNode::parse(&data);
        let _ = xattr::parse_block(&data);
    }

    #[test]
    fn journal_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2100), incompat in 0u32..64) {
        let _ = Header::parse(&data);
        let _ = Commit::parse(&data);
        let _ = JournalSuperblock::parse(&data);
        let mut sb = super::journal::superblock::tests::fixture(1024, 1, 1, incompat);
        sb[0x28..0x2C].copy_from_slice(&incompat.to_be_bytes());
        if let Ok(jsb) = JournalSuperblock::parse(&sb) {
            for tail in [0, 4] {
                let _ = parse_descriptor(&data, &jsb, tail);
                let _ = parse_revoke(&data, &jsb, tail);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_image_behind_a_valid_superblock_never_panics(
        seed in any::<u64>(),
        patches in proptest::collection::vec((0usize..1024, any::<u8>()), 0..8)
    ) {
        // 64 KiB of noise, a valid superblock with some fields changed.
        let mut img: Vec<u8> = (0..65536u64)
            .map(|i| (seed.wrapping_mul(i | 1).rotate_left((i % 63) as u32) >> 13) as u8)
            .collect();
        let mut sb = super::superblock::tests::fixture();
        sb[0x04..0x08].copy_from_slice(&64u32.to_le_bytes());
        sb[0x00..0x04].copy_from_slice(&64u32.to_le_bytes());
        sb[0x28..0x2C].copy_from_slice(&64u32.to_le_bytes());
        for (at, v) in patches {
            sb[at] = v;
        }
        img[1024..2048].copy_from_slice(&sb);
        // One group whose inode table (blocks 5..21) is noise; the root
        // inode is made a directory half the time.
        img[2048 + 8..2048 + 12].copy_from_slice(&5u32.to_le_bytes());
        if seed & 1 == 1 {
            let root = 5 * 1024 + 256;
            img[root..root + 2].copy_from_slice(&0o040755u16.to_le_bytes());
        }
        if let Ok(fs) = super::Ext3::open(MemDevice::new(img)) {
            let mut buf = vec![0u8; 4096];
            let _ = fs.walk(super::ROOT_INO, b"/", |n| {
                let _ = fs.read(n.meta.ino, 0, &mut buf);
                let _ = fs.readlink(n.meta.ino);
                Ok(true)
            });
        }
    }
}
