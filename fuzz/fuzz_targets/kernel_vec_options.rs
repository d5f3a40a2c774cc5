//! Fuzz the vector device option parser (`vecN:` options, their transport
//! and the MAC rules): any text parses or is refused with the kernel's
//! line, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = umlkit::kernel::net::vector::Spec::parse(0, &text) {
        let _ = spec.mac();
    }
    let _ = umlkit::kernel::net::vector::choose_mac("vec0", Some(&text));
    let mut c = umlkit::kernel::net::vector::vde::Cutter::default();
    c.push(data);
    let mut out = [0u8; 1600];
    while c.next_frame(&mut out).is_some() {}
});
