//! Fuzz the journal parsers: the journal superblock, then descriptor,
//! revoke and commit blocks interpreted under the features of a superblock
//! taken from the first 1024 bytes (or a default one).
#![no_main]

use umlkit::ext3::journal::block::{parse_descriptor, Commit, Header};
use umlkit::ext3::journal::revoke::parse_revoke;
use umlkit::ext3::journal::superblock::JournalSuperblock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data);
    let _ = Commit::parse(data);
    if let Ok(jsb) = JournalSuperblock::parse(data) {
        let _ = jsb.tag_bytes();
        let _ = jsb.log_end();
        let rest = data.get(1024..).unwrap_or_default();
        for tail in [0, 4] {
            if let Ok(tags) = parse_descriptor(rest, &jsb, tail) {
                assert!(tags.len() <= rest.len() / jsb.tag_bytes().max(1));
            }
            let _ = parse_revoke(rest, &jsb, tail);
        }
    }
});
