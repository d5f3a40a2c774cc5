#![no_main]
//! Feeds arbitrary bytes to the uml_switch control-request parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = umlkit::switch::proto::Request::new_unchecked(data).parse();
});
