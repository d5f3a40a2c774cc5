//! Fuzz the rtnetlink address-message walk the guest kernel uses to hear of
//! the guest's addresses: any bytes give a list of events, never a panic or
//! a read outside the buffer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for ev in umlkit::kernel::net::tap_helper::parse_addr_events(data) {
        let _ = ev.mask();
    }
});
