//! Feeds arbitrary datagrams to the mconsole decoders (request, reply part,
//! notification): they must never panic, and whatever they accept must
//! survive an encode/decode round trip unchanged.
#![no_main]

use umlkit::mconsole::protocol::{Notification, ReplyPart, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        assert_eq!(Request::decode(&request.encode()), Ok(request));
    }
    if let Ok(part) = ReplyPart::decode(data) {
        assert_eq!(ReplyPart::decode(&part.encode()), Ok(part));
    }
    if let Ok(notification) = Notification::decode(data) {
        assert_eq!(Notification::decode(&notification.encode()), Ok(notification));
    }
});
