//! Fuzz the directory block parser (with and without the filetype
//! feature) and the extended-attribute block parser: every entry returned
//! lies inside the block.
#![no_main]

use umlkit::ext3::dir::parse_block;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for filetype in [false, true] {
        if let Ok(entries) = parse_block(data, filetype) {
            for e in entries {
                assert!(e.offset < e.next && e.next <= data.len());
                assert!(!e.name.is_empty() && e.name.len() <= 255 || !filetype);
            }
        }
    }
    let _ = umlkit::ext3::xattr::parse_block(data);
    let _ = umlkit::ext3::extent::ExtentNode::parse(data);
});
