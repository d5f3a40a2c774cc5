#![no_main]
//! Runs arbitrary datagrams through the frame view and the forwarding core:
//! the first byte picks the ingress port (of 4), the rest is the frame.

use std::time::Duration;
use umlkit::switch::core::Forwarder;
use umlkit::switch::frame::EthernetFrame;
use umlkit::switch::PortId;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut fwd = Forwarder::new(first & 0x80 != 0);
    for p in 0..4 {
        fwd.add_port(PortId(p));
    }
    for (i, chunk) in rest.chunks(64).enumerate() {
        if let Ok(frame) = EthernetFrame::new_checked(chunk) {
            let ingress = PortId(u32::from(chunk[0] % 4));
            let _ = fwd.forward(ingress, &frame, Duration::from_secs(i as u64 * 7));
        }
        if i % 5 == 4 {
            fwd.remove_port(PortId(u32::from(first % 4)));
            fwd.add_port(PortId(u32::from(first % 4)));
            fwd.age(Duration::from_secs(i as u64 * 50));
        }
    }
});
