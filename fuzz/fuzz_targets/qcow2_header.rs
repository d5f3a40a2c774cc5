//! Fuzz the qcow2 header parser: any bytes give a header or an error,
//! never a panic; a header that parses emits bytes that parse to the same
//! size, backing file and tables.
#![no_main]

use umlkit::cow::qcow2::Qcow2Header;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Qcow2Header::parse(data) {
        if let Ok(bytes) = header.to_bytes() {
            let again = Qcow2Header::parse(&bytes).expect("emitted header parses");
            assert_eq!(again.size, header.size);
            assert_eq!(again.backing_file, header.backing_file);
            assert_eq!(again.l1_table_offset, header.l1_table_offset);
            assert_eq!(again.refcount_table_offset, header.refcount_table_offset);
        }
    }
});
