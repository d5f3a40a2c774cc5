//! The vector option parser against `vector_user.c`'s tokenizer and
//! `uml_net_setup_etheraddr`.

use super::*;

fn refusal(unit: usize, text: &str) -> String {
    match Spec::parse(unit, text) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("{text} was not refused: {s:?}"),
    }
}

#[test]
fn options_are_key_value_pairs_and_the_first_of_a_key_wins() {
    let a = parse_ifspec("transport=tap,ifname=t0,ifname=t1,junk,depth=128,gro=1").unwrap();
    assert_eq!(a.fetch("transport"), Some("tap"));
    assert_eq!(a.fetch("ifname"), Some("t0"));
    assert_eq!(a.fetch("depth"), Some("128"));
    assert_eq!(a.fetch("junk"), None);
    assert_eq!(a.len(), 5);
}

#[test]
fn an_empty_value_counts_except_at_the_very_end() {
    let a = parse_ifspec("mac=,transport=tap,ifname=").unwrap();
    assert_eq!(a.fetch("mac"), Some(""));
    assert_eq!(a.fetch("ifname"), None);
}

#[test]
fn a_second_equals_sign_refuses_the_device_with_the_text_up_to_the_first() {
    assert_eq!(
        refusal(0, "transport=tap,ifname=a=b"),
        "vector_setup - Couldn't parse 'transport'"
    );
    let many: Vec<String> = (0..21).map(|i| format!("k{i}=v")).collect();
    assert!(parse_ifspec(&many.join(",")).is_err());
}

#[test]
fn transports_are_chosen_by_prefix_in_the_kernels_order() {
    let t = |s: &str| Spec::parse(3, s).map(|s| s.transport);
    assert_eq!(
        t("transport=tap,ifname=x").unwrap(),
        Transport::Tap {
            ifname: Some("x".into())
        }
    );
    assert_eq!(
        t("transport=tapestry").unwrap(),
        Transport::Tap { ifname: None }
    );
    assert_eq!(
        t("transport=raw,ifname=e").unwrap(),
        Transport::Raw {
            ifname: Some("e".into())
        }
    );
    assert_eq!(
        t("transport=l2tpv3,udp=1").unwrap(),
        Transport::L2tpv3 { udp: true }
    );
    assert_eq!(
        t("transport=l2tpv3,udp=0").unwrap(),
        Transport::L2tpv3 { udp: false }
    );
    assert_eq!(
        t("transport=fd,fd=7").unwrap(),
        Transport::Fd { fd: Some(7) }
    );
    assert_eq!(t("transport=fd,fd=7x").unwrap(), Transport::Fd { fd: None });
    assert_eq!(
        t("transport=vde,vnl=vde:///tmp/sw").unwrap(),
        Transport::Vde {
            vnl: "vde:///tmp/sw".into()
        }
    );
    assert_eq!(refusal(3, "ifname=x"), "missing transport for unit 3");
    assert_eq!(
        refusal(2, "transport=pcap"),
        "vec2: unknown transport 'pcap'; no device"
    );
}

#[test]
fn mac_rules_are_the_kernels() {
    let c = choose_mac("vec0", Some("fe:fd:0:0:0:1"));
    assert_eq!(c.mac, Some(Mac::new([0xfe, 0xfd, 0, 0, 0, 1])));
    assert!(c.lines.is_empty());
    let c = choose_mac("vec0", None);
    assert_eq!(c.mac, None);
    assert_eq!(
        c.lines,
        ["Choosing a random ethernet address for device vec0"]
    );
    let c = choose_mac("vec1", Some("01:00:5e:0:0:1"));
    assert_eq!(c.mac, None);
    assert_eq!(
        c.lines[0],
        "Attempt to assign a multicast ethernet address to a device disallowed"
    );
    let c = choose_mac("vec1", Some("0:0:0:0:0:0"));
    assert_eq!(c.mac, None);
    let c = choose_mac("vec1", Some("zz"));
    assert_eq!(
        c.lines[0],
        "setup_etheraddr: failed to parse 'zz' as an ethernet address"
    );
    let c = choose_mac("vec1", Some("fe:fd:1"));
    assert_eq!(c.mac, None);
    let c = choose_mac("vec1", Some("00:11:22:33:44:55"));
    assert_eq!(c.mac, Some(Mac::new([0, 0x11, 0x22, 0x33, 0x44, 0x55])));
    assert_eq!(
        c.lines,
        [
            "Warning: Assigning a globally valid ethernet address to a device",
            "You should set the 2nd rightmost bit in the first byte of the MAC,",
            "i.e. 02:11:22:33:44:55",
        ]
    );
}

#[test]
fn random_texts_never_panic() {
    for s in [
        "",
        ",",
        "=",
        "==",
        ",=,=",
        "a=b,=c",
        "transport=",
        "transport=fd,fd=-1",
        "mac=0x:",
    ] {
        let _ = Spec::parse(0, s);
        let _ = choose_mac("vec0", Some(s));
    }
}
