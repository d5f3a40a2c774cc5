//! Fuzz the COW header parser: any bytes give a header or an error, never a
//! panic; a header that parses emits bytes that parse to the same header.
#![no_main]

use umlkit::cow::Header;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::parse(data) {
        assert!(header.data_offset >= header.bitmap_offset);
        if let Ok(bytes) = header.to_bytes() {
            let again = Header::parse(&bytes).expect("emitted header parses");
            assert_eq!(again.size, header.size);
            assert_eq!(again.backing_file, header.backing_file);
        }
    }
});
