#![no_main]
//! Feeds arbitrary bytes to the VDE control-request parser (`-vde`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = umlkit::switch::vde::parse(data);
});
