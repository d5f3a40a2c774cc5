#![no_main]
//! Feeds arbitrary datagrams to the VXLAN header view (`-vxlan`).

use umlkit::switch::vxlan::VxlanPacket;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = VxlanPacket::new_checked(data) {
        assert!(p.vni() <= umlkit::switch::vxlan::MAX_VNI);
        assert_eq!(p.payload().len() + 8, data.len());
    }
});
