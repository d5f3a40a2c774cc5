//! Fuzz the ext2/3/4 superblock parser: any bytes give a validated
//! superblock or an error, never a panic; a parsed superblock's geometry is
//! sane.
#![no_main]

use umlkit::ext3::Superblock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = Superblock::parse(data) {
        assert!((1024..=65536).contains(&sb.block_size()));
        assert!(sb.s_inodes_per_group > 0 && sb.s_blocks_per_group > 0);
        let _ = sb.group_count();
        let _ = umlkit::ext3::features::unsupported_incompat(sb.s_feature_incompat);
    }
});
