use super::*;
use proptest::prelude::*;

fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

#[test]
fn request_encodes_the_whole_524_byte_structure() {
    let bytes = Request::new(b"version").encode();
    assert_eq!(bytes.len(), 524);
    assert_eq!(&bytes[..12], &le(&[0xcafe_babe, 2, 7])[..]);
    assert_eq!(&bytes[12..19], b"version");
    assert!(bytes[19..].iter().all(|&b| b == 0));
}

#[test]
fn request_truncates_long_commands_to_511_bytes() {
    let long = vec![b'x'; 600];
    let req = Request::new(&long);
    assert_eq!(req.command.len(), 511);
    let bytes = req.encode();
    assert_eq!(word(&bytes, 8), 511);
    assert_eq!(bytes[12 + 511], 0);
    assert_eq!(Request::decode(&bytes).unwrap(), req);
}

#[test]
fn request_decode_checks_magic_then_length() {
    let mut bytes = Request::new(b"help").encode();
    bytes[0] = 0;
    assert!(matches!(
        Request::decode(&bytes),
        Err(ProtocolError::BadMagic(_))
    ));
    let mut bytes = Request::new(b"help").encode();
    bytes[8..12].copy_from_slice(&512u32.to_ne_bytes());
    assert!(matches!(
        Request::decode(&bytes),
        Err(ProtocolError::BadLength { len: 512, .. })
    ));
    assert!(matches!(
        Request::decode(&bytes[..11]),
        Err(ProtocolError::Truncated { .. })
    ));
}

#[test]
fn request_decode_reports_the_version_without_rejecting_it() {
    let mut bytes = Request::new(b"version").encode();
    bytes[4..8].copy_from_slice(&1u32.to_ne_bytes());
    let req = Request::decode(&bytes).unwrap();
    assert_eq!(req.version, 1);
    assert_eq!(req.command, b"version");
}

#[test]
fn request_decode_stops_at_an_embedded_nul_and_needs_len_bytes() {
    let mut bytes = le(&[0xcafe_babe, 2, 5]);
    bytes.extend_from_slice(b"ab\0cd");
    assert_eq!(Request::decode(&bytes).unwrap().command, b"ab");
    assert!(matches!(
        Request::decode(&bytes[..15]),
        Err(ProtocolError::Truncated { need: 17, .. })
    ));
}

#[test]
fn reply_part_round_trips_with_the_nul_counted_in_len() {
    let part = ReplyPart {
        err: 0,
        more: false,
        data: b"stopped".to_vec(),
    };
    let bytes = part.encode();
    assert_eq!(bytes.len(), 12 + 8);
    assert_eq!(&bytes[..12], &le(&[0, 0, 8])[..]);
    assert_eq!(ReplyPart::decode(&bytes).unwrap(), part);
}

#[test]
fn reply_decode_keeps_negative_errno_and_any_nonzero_more() {
    let mut bytes = le(&[(-19i32) as u32, 7, 25]);
    bytes.extend_from_slice(b"Device doesn't exist\0\0\0\0\0");
    let part = ReplyPart::decode(&bytes).unwrap();
    assert_eq!(part.err as i32, -19);
    assert!(part.more);
    assert_eq!(part.data, b"Device doesn't exist");
}

#[test]
fn reply_decode_rejects_lengths_beyond_the_datagram_or_the_array() {
    let mut bytes = le(&[0, 0, 10]);
    bytes.extend_from_slice(b"abc\0");
    assert!(matches!(
        ReplyPart::decode(&bytes),
        Err(ProtocolError::Truncated { need: 22, .. })
    ));
    let bytes = le(&[0, 0, 513]);
    assert!(matches!(
        ReplyPart::decode(&bytes),
        Err(ProtocolError::BadLength { len: 513, .. })
    ));
    let bytes = le(&[0, 0, u32::MAX]);
    assert!(matches!(
        ReplyPart::decode(&bytes),
        Err(ProtocolError::BadLength { .. })
    ));
    assert!(matches!(
        ReplyPart::decode(b"ERR"),
        Err(ProtocolError::Truncated { .. })
    ));
    assert!(matches!(
        ReplyPart::decode(&[0; 525]),
        Err(ProtocolError::TooLong { .. })
    ));
}

#[test]
fn reply_decode_rejects_a_full_data_array_without_nul() {
    let mut bytes = le(&[0, 0, 512]);
    bytes.extend_from_slice(&[b'a'; 512]);
    assert!(matches!(
        ReplyPart::decode(&bytes),
        Err(ProtocolError::Unterminated { .. })
    ));
    bytes[12 + 511] = 0;
    assert_eq!(ReplyPart::decode(&bytes).unwrap().data.len(), 511);
}

#[test]
fn reply_decode_accepts_the_full_structure_a_server_may_send() {
    let mut bytes = le(&[0, 0, 3]);
    bytes.extend_from_slice(b"ok\0");
    bytes.resize(524, 0xAA);
    assert_eq!(ReplyPart::decode(&bytes).unwrap().data, b"ok");
}

#[test]
fn split_reply_makes_511_byte_chunks_with_err_first_and_more_until_last() {
    let text = vec![b'a'; 1100];
    let parts = split_reply(1, &text, false);
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts.iter().map(|p| p.data.len()).collect::<Vec<_>>(),
        [511, 511, 78]
    );
    assert_eq!(parts.iter().map(|p| p.err).collect::<Vec<_>>(), [1, 0, 0]);
    assert_eq!(
        parts.iter().map(|p| p.more).collect::<Vec<_>>(),
        [true, true, false]
    );
}

#[test]
fn split_reply_of_an_empty_text_is_one_empty_part_and_keeps_more() {
    assert_eq!(
        split_reply(0, b"", false),
        [ReplyPart {
            err: 0,
            more: false,
            data: vec![]
        }]
    );
    assert_eq!(split_reply(0, &[b'x'; 511], true).len(), 1);
    assert!(split_reply(0, &[b'x'; 511], true)[0].more);
    assert_eq!(split_reply(0, &[b'x'; 512], false).len(), 2);
}

#[test]
fn notification_decodes_the_verified_socket_announcement() {
    // Spec §5: type=0 len=26, a 42-byte datagram, payload with its NUL.
    let path = b"/root/.uml/spec2/mconsole\0";
    let mut bytes = le(&[0xcafe_babe, 2, 0, 26]);
    bytes.extend_from_slice(path);
    assert_eq!(bytes.len(), 42);
    let n = Notification::decode(&bytes).unwrap();
    assert_eq!(n.kind, NotifyKind::Socket);
    assert_eq!(n.text(), b"/root/.uml/spec2/mconsole");
    assert_eq!(n.encode(), bytes);
}

#[test]
fn notification_decode_rejects_bad_magic_version_and_length() {
    let mut bytes = Notification {
        kind: NotifyKind::Panic,
        data: b"oops\0".to_vec(),
    }
    .encode();
    assert_eq!(
        Notification::decode(&bytes).unwrap().kind,
        NotifyKind::Panic
    );
    bytes[4] = 3;
    assert!(matches!(
        Notification::decode(&bytes),
        Err(ProtocolError::UnsupportedVersion(_))
    ));
    bytes[0] = 0;
    assert!(matches!(
        Notification::decode(&bytes),
        Err(ProtocolError::BadMagic(_))
    ));
    let bytes = le(&[0xcafe_babe, 2, 3, 9]);
    assert!(matches!(
        Notification::decode(&bytes),
        Err(ProtocolError::Truncated { .. })
    ));
    let bytes = le(&[0xcafe_babe, 2, 3, 600]);
    assert!(matches!(
        Notification::decode(&bytes),
        Err(ProtocolError::BadLength { .. })
    ));
}

#[test]
fn the_hang_message_of_debians_64_bit_uml_watchdog_decodes() {
    // Captured from /usr/bin/uml_watchdog -mconsole (uml-utilities
    // 20070815.4) after its 60 s timeout: an 8-byte magic and 4 bytes of
    // stack after the length.
    let bytes = [
        0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0x7f, 0, 0,
    ];
    let n = Notification::decode(&bytes).unwrap();
    assert_eq!(n.kind, NotifyKind::Hang);
    assert!(n.data.is_empty());
    // The same header with the kernel's 4-byte magic is version 0.
    assert!(matches!(
        Notification::decode(&le(&[0xcafe_babe, 0, 2, 0])),
        Err(ProtocolError::Truncated { .. }) | Err(ProtocolError::UnsupportedVersion(0))
    ));
}

#[test]
fn notification_keeps_unknown_types() {
    let n = Notification {
        kind: NotifyKind::Other(9),
        data: b"x".to_vec(),
    };
    assert_eq!(Notification::decode(&n.encode()).unwrap(), n);
    assert_eq!(NotifyKind::from_number(2), NotifyKind::Hang);
    assert_eq!(NotifyKind::User.name(), "user");
}

proptest! {
    #[test]
    fn decoders_never_panic_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Request::decode(&data);
        let _ = ReplyPart::decode(&data);
        let _ = Notification::decode(&data);
    }

    #[test]
    fn decoders_never_panic_on_headers_with_random_lengths(
        a in any::<u32>(), b in any::<u32>(), c in any::<u32>(), d in any::<u32>(),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = le(&[a, b, c, d]);
        bytes.extend_from_slice(&tail);
        for magic_first in [false, true] {
            if magic_first {
                bytes[..4].copy_from_slice(&MCONSOLE_MAGIC.to_ne_bytes());
            }
            let _ = Request::decode(&bytes);
            let _ = ReplyPart::decode(&bytes);
            let _ = Notification::decode(&bytes);
        }
    }

    #[test]
    fn whatever_decodes_survives_a_round_trip(
        head in proptest::collection::vec(any::<u8>(), 16),
        len in 0u32..530,
        tail in proptest::collection::vec(any::<u8>(), 0..530),
        kind in 0usize..3,
    ) {
        let mut bytes = head;
        match kind {
            0 => bytes[..4].copy_from_slice(&MCONSOLE_MAGIC.to_ne_bytes()),
            1 => bytes[..4].copy_from_slice(&0u32.to_ne_bytes()),
            _ => {
                bytes[..8].copy_from_slice(&le(&[MCONSOLE_MAGIC, 2]));
                bytes[12..16].copy_from_slice(&len.to_ne_bytes());
            }
        }
        if kind < 2 {
            bytes[8..12].copy_from_slice(&len.to_ne_bytes());
        }
        bytes.extend_from_slice(&tail);
        if let Ok(r) = Request::decode(&bytes) {
            prop_assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        if let Ok(p) = ReplyPart::decode(&bytes) {
            prop_assert_eq!(ReplyPart::decode(&p.encode()), Ok(p));
        }
        if let Ok(n) = Notification::decode(&bytes) {
            prop_assert_eq!(Notification::decode(&n.encode()), Ok(n));
        }
    }

    #[test]
    fn request_round_trips(cmd in proptest::collection::vec(1u8..=255, 0..600)) {
        let req = Request::new(&cmd);
        let decoded = Request::decode(&req.encode()).unwrap();
        prop_assert_eq!(&decoded.command[..], &cmd[..cmd.len().min(511)]);
    }

    #[test]
    fn split_reply_parts_reassemble_to_the_text(
        text in proptest::collection::vec(1u8..=255, 0..3000), err in any::<u32>(),
    ) {
        let parts = split_reply(err, &text, false);
        let mut joined = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let decoded = ReplyPart::decode(&part.encode()).unwrap();
            prop_assert_eq!(decoded.more, i + 1 < parts.len());
            prop_assert_eq!(decoded.err, if i == 0 { err } else { 0 });
            joined.extend_from_slice(&decoded.data);
        }
        prop_assert_eq!(joined, text);
    }
}
