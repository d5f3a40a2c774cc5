//! `uml_net`'s argv protocol (spec §2.2, §2.4): `uml_net VERSION TRANSPORT
//! ARGS...` as one type, [`Request`]. `uml_net` parses the words into a
//! validated request ([`Request::parse`], refusals as [`RequestError`]);
//! the guest kernel writes them ([`Request::to_argv`], [`kernel_tuntap_up`]),
//! so the two sides cannot drift apart.
//!
//! uml_net runs setuid root, so every word is hostile: addresses must be
//! dotted quads of a usable unicast IPv4 address, netmasks contiguous, and
//! interface names short and alphanumeric. Only protocol version 4 (what
//! Linux 6.1 sends) is served; others get the original's messages.

use std::net::Ipv4Addr;
use thiserror::Error;

/// The protocol version this uml_net speaks (`UML_NET_VERSION` in 6.1).
pub const CURRENT_VERSION: u64 = 4;

/// The original's answer when run without enough arguments (stderr, exit 1).
pub const BAD_ARGUMENT_LIST: &str = "uml_net : bad argument list - if you're running uml_net by\n\
hand, don't bother.  uml_net is run automatically by UML when\n\
necessary.\n";

/// Add or remove a guest address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `add`: host route and proxy ARP for the address.
    Add,
    /// `del`: undo `add`.
    Del,
}

/// A validated `add`/`del` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrChange {
    /// Add or delete.
    pub op: Change,
    /// The host-side TAP interface.
    pub dev: String,
    /// The guest's address.
    pub addr: Ipv4Addr,
    /// The guest's netmask.
    pub mask: Ipv4Addr,
}

/// What the kernel (or a user) asked for, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `tuntap up [GATE]`: make a TAP, configure GATE on it, hand back the
    /// descriptor over fd 1 (a datagram socket).
    TuntapUp {
        /// The host-side address, if any.
        gate: Option<Ipv4Addr>,
    },
    /// `add`/`del` (also as `tuntap add|del`): framed reply on fd 1.
    Change(AddrChange),
}

/// How a refused invocation is answered: where the text goes and the exit
/// status is always 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Plain text on stderr.
    Stderr(String),
    /// Plain text on stdout (the original's choice for transport errors).
    Stdout(String),
    /// Framed output on fd 1 (length, text, NUL), as the kernel reads it
    /// for `add`/`del`.
    Framed(String),
    /// One datagram on fd 1 without a descriptor (the `tuntap up` reply).
    Datagram(String),
    /// A status byte 0 (failure), then framed output: what the kernel's
    /// ethertap transport reads on its control socket.
    StatusFramed(String),
}

/// Parses a leading unsigned number the way `strtoul(s, &end, 0)` does;
/// `None` when no digit was consumed. Saturates instead of wrapping.
fn strtoul_prefix(s: &str) -> Option<u64> {
    let t = s.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if h.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()) {
            (h, 16)
        } else {
            return Some(0);
        }
    } else if t.starts_with('0') {
        (t, 8)
    } else {
        (t, 10)
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        any = true;
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
    }
    any.then_some(value)
}

/// A dotted-quad IPv4 address that can sensibly be put on an interface:
/// not unspecified, broadcast, multicast or loopback.
pub fn parse_host_addr(s: &str) -> Option<Ipv4Addr> {
    let a: Ipv4Addr = s.parse().ok()?;
    let bad = a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback();
    (!bad).then_some(a)
}

/// A dotted-quad netmask with contiguous leading ones.
pub fn parse_netmask(s: &str) -> Option<Ipv4Addr> {
    let m: Ipv4Addr = s.parse().ok()?;
    let bits = u32::from(m);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(m)
}

/// An interface name: 1 to 15 ASCII letters and digits (the original's
/// `isalnum` check, plus the length limit it left to truncation).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() < 16 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Why an invocation was refused; each text is the original's (or, for
/// what it did not check, one in its style). [`RequestError::refusal`]
/// says where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// Fewer than two words.
    #[error("{}", BAD_ARGUMENT_LIST.trim_end())]
    BadArgumentList,
    /// A protocol version newer than [`CURRENT_VERSION`].
    #[error("Version mismatch - requested version {requested}, uml_net supports up to version {CURRENT_VERSION}")]
    VersionMismatch {
        /// The version asked for.
        requested: u64,
    },
    /// A transport name uml_net never knew.
    #[error("Unknown transport : '{}'", .0.escape_debug())]
    UnknownTransport(String),
    /// A known transport at a version other than [`CURRENT_VERSION`].
    #[error("No version #{version} handler for '{transport}'")]
    NoHandler {
        /// The version asked for.
        version: u64,
        /// The transport.
        transport: String,
    },
    /// `tuntap` with no operation.
    #[error("uml_net : too few arguments to tuntap_v4")]
    TuntapTooFew,
    /// `tuntap up` with no gateway word.
    #[error("Too few arguments to tuntap_up")]
    TuntapUpTooFew,
    /// `tuntap up` with a gateway that is not a usable address.
    #[error("uml_net : bad gateway address '{}'", .0.escape_debug())]
    BadGateway(String),
    /// `tuntap add|del` with fewer than three words after it.
    #[error("uml_net : too few arguments to tuntap change_addr")]
    TuntapChangeTooFew,
    /// `tuntap` with an operation other than `up`, `add`, `del`.
    #[error("Bad tuntap op : '{}'", .0.escape_debug())]
    BadTuntapOp(String),
    /// `add`/`del` with fewer than three words after it.
    #[error("uml_net : too few arguments to change_addr (need DEV ADDR NETMASK)")]
    ChangeTooFew,
    /// An interface name that is not 1 to 15 letters and digits.
    #[error("uml_net : bad device name '{}'", .0.escape_debug())]
    BadDevice(String),
    /// A guest address that is not a usable unicast dotted quad.
    #[error("uml_net : bad address '{}'", .0.escape_debug())]
    BadAddress(String),
    /// A netmask that is not a contiguous dotted quad.
    #[error("uml_net : bad netmask '{}'", .0.escape_debug())]
    BadNetmask(String),
    /// `ethertap`: the host driver is gone from Linux.
    #[error("uml_net : the ethertap transport is not supported (the host driver no longer exists; use eth0=tuntap or eth0=daemon)")]
    Ethertap,
    /// `slip`: not served here.
    #[error("uml_net : the {0} transport is not supported by this uml_net (use eth0=tuntap or eth0=daemon)")]
    Unsupported(String),
}

impl RequestError {
    /// How the original answers this refusal: the text, a newline, on
    /// the channel the kernel (or a user) reads for that request.
    pub fn refusal(&self) -> Refusal {
        let text = format!("{self}\n");
        match self {
            RequestError::BadArgumentList
            | RequestError::VersionMismatch { .. }
            | RequestError::BadTuntapOp(_) => Refusal::Stderr(text),
            RequestError::UnknownTransport(_) | RequestError::NoHandler { .. } => {
                Refusal::Stdout(text)
            }
            RequestError::TuntapUpTooFew | RequestError::BadGateway(_) => Refusal::Datagram(text),
            RequestError::Ethertap => Refusal::StatusFramed(text),
            RequestError::TuntapTooFew
            | RequestError::TuntapChangeTooFew
            | RequestError::ChangeTooFew
            | RequestError::BadDevice(_)
            | RequestError::BadAddress(_)
            | RequestError::BadNetmask(_)
            | RequestError::Unsupported(_) => Refusal::Framed(text),
        }
    }
}

fn change(op: Change, args: &[String]) -> Result<Request, RequestError> {
    let [dev, addr, mask, ..] = args else {
        return Err(RequestError::ChangeTooFew);
    };
    if !valid_ifname(dev) {
        return Err(RequestError::BadDevice(dev.clone()));
    }
    let addr = parse_host_addr(addr).ok_or_else(|| RequestError::BadAddress(addr.clone()))?;
    let mask = parse_netmask(mask).ok_or_else(|| RequestError::BadNetmask(mask.clone()))?;
    Ok(Request::Change(AddrChange {
        op,
        dev: dev.clone(),
        addr,
        mask,
    }))
}

impl Change {
    /// The transport word: `add` or `del`.
    pub fn word(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Del => "del",
        }
    }
}

impl Request {
    /// Parses `args` (without argv\[0\]), validating every word.
    pub fn parse(args: &[String]) -> Result<Request, RequestError> {
        if args.len() < 2 {
            return Err(RequestError::BadArgumentList);
        }
        let (version, transport, rest) = match strtoul_prefix(&args[0]) {
            Some(v) if v > CURRENT_VERSION => {
                return Err(RequestError::VersionMismatch { requested: v })
            }
            Some(v) => (v, args[1].as_str(), &args[2..]),
            None => (0, args[0].as_str(), &args[1..]),
        };
        if !["ethertap", "slip", "tuntap", "add", "del"].contains(&transport) {
            return Err(RequestError::UnknownTransport(transport.into()));
        }
        if version != CURRENT_VERSION {
            return Err(RequestError::NoHandler {
                version,
                transport: transport.into(),
            });
        }
        match transport {
            "add" => change(Change::Add, rest),
            "del" => change(Change::Del, rest),
            "tuntap" => match rest.first().map(String::as_str) {
                None => Err(RequestError::TuntapTooFew),
                Some("up") => match rest.get(1) {
                    None => Err(RequestError::TuntapUpTooFew),
                    Some(g) if g.is_empty() => Ok(Request::TuntapUp { gate: None }),
                    Some(g) => parse_host_addr(g)
                        .map(|a| Request::TuntapUp { gate: Some(a) })
                        .ok_or_else(|| RequestError::BadGateway(g.clone())),
                },
                Some(op @ ("add" | "del")) => {
                    if rest.len() < 4 {
                        return Err(RequestError::TuntapChangeTooFew);
                    }
                    let op = if op == "add" {
                        Change::Add
                    } else {
                        Change::Del
                    };
                    change(op, &rest[1..])
                }
                Some(op) => Err(RequestError::BadTuntapOp(op.into())),
            },
            "ethertap" => Err(RequestError::Ethertap),
            other => Err(RequestError::Unsupported(other.into())),
        }
    }

    /// The words after argv\[0\] that ask for this request, as the UML
    /// kernel writes them: `4 tuntap up GATE` (an empty word for no
    /// gateway) and `4 add|del DEV ADDR NETMASK`. [`Request::parse`] gives
    /// the request back.
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![CURRENT_VERSION.to_string()];
        match self {
            Request::TuntapUp { gate } => {
                argv.extend(["tuntap".into(), "up".into()]);
                argv.push(gate.map(|g| g.to_string()).unwrap_or_default());
            }
            Request::Change(c) => {
                argv.extend([
                    c.op.word().into(),
                    c.dev.clone(),
                    c.addr.to_string(),
                    c.mask.to_string(),
                ]);
            }
        }
        argv
    }
}

/// What the UML kernel runs for `eth<N>=tuntap,,MAC,GATEWAY`: the argv of
/// [`Request::TuntapUp`] with the gateway. Without one, the real kernel's
/// argv ends after `up` (its gateway entry is NULL), which uml_net refuses
/// with [`RequestError::TuntapUpTooFew`]; this keeps that.
pub fn kernel_tuntap_up(gate: Option<Ipv4Addr>) -> Vec<String> {
    let mut argv = Request::TuntapUp { gate }.to_argv();
    if gate.is_none() {
        argv.pop();
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Request, Refusal> {
        Request::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(|e| e.refusal())
    }

    #[test]
    fn kernel_invocations_parse() {
        assert_eq!(
            p(&["4", "tuntap", "up", "192.168.0.254"]),
            Ok(Request::TuntapUp {
                gate: Some([192, 168, 0, 254].into())
            })
        );
        assert_eq!(
            p(&["4", "add", "tap0", "192.168.0.1", "255.255.255.0"]),
            Ok(Request::Change(AddrChange {
                op: Change::Add,
                dev: "tap0".into(),
                addr: [192, 168, 0, 1].into(),
                mask: [255, 255, 255, 0].into()
            }))
        );
        assert!(
            matches!(p(&["4", "tuntap", "del", "tap3", "10.0.0.2", "255.0.0.0"]), Ok(Request::Change(c)) if c.op == Change::Del)
        );
    }

    #[test]
    fn the_originals_messages_are_kept() {
        assert_eq!(p(&[]), Err(Refusal::Stderr(BAD_ARGUMENT_LIST.into())));
        assert_eq!(p(&["4"]), Err(Refusal::Stderr(BAD_ARGUMENT_LIST.into())));
        assert_eq!(
            p(&["9", "tuntap"]),
            Err(Refusal::Stderr(
                "Version mismatch - requested version 9, uml_net supports up to version 4\n".into()
            ))
        );
        assert_eq!(
            p(&["4", "foo"]),
            Err(Refusal::Stdout("Unknown transport : 'foo'\n".into()))
        );
        assert_eq!(
            p(&["1", "tuntap", "x"]),
            Err(Refusal::Stdout(
                "No version #1 handler for 'tuntap'\n".into()
            ))
        );
        assert_eq!(
            p(&["tuntap", "up"]),
            Err(Refusal::Stdout(
                "No version #0 handler for 'tuntap'\n".into()
            ))
        );
        assert_eq!(
            p(&["4", "tuntap"]),
            Err(Refusal::Framed(
                "uml_net : too few arguments to tuntap_v4\n".into()
            ))
        );
        assert_eq!(
            p(&["4", "tuntap", "up"]),
            Err(Refusal::Datagram("Too few arguments to tuntap_up\n".into()))
        );
        assert_eq!(
            p(&["4", "tuntap", "frob"]),
            Err(Refusal::Stderr("Bad tuntap op : 'frob'\n".into()))
        );
        assert!(
            matches!(p(&["4", "tuntap", "add", "tap0"]), Err(Refusal::Framed(t)) if t.contains("tuntap change_addr"))
        );
    }

    #[test]
    fn hostile_words_are_refused() {
        for args in [
            &["4", "add", "tap0", "down", "255.255.255.0"][..],
            &["4", "add", "tap0", "-net", "255.255.255.0"],
            &["4", "add", "tap0", "10.0.0.1", "255.0.255.0"],
            &["4", "add", "tap0", "127.0.0.1", "255.0.0.0"],
            &["4", "add", "tap0", "224.0.0.1", "255.255.255.0"],
            &["4", "add", "tap0", "010.0.0.1", "255.255.255.0"],
            &["4", "add", "tap0", "10.0.0.1"],
            &["4", "add", "tap/../0", "10.0.0.1", "255.255.255.0"],
            &["4", "add", "abcdefghijklmnop", "10.0.0.1", "255.255.255.0"],
            &["4", "add", "", "10.0.0.1", "255.255.255.0"],
            &["4", "del", "tap0;rm", "10.0.0.1", "255.255.255.0"],
        ] {
            assert!(
                matches!(p(args), Err(Refusal::Framed(_))),
                "{args:?} accepted"
            );
        }
        assert!(matches!(
            p(&["4", "tuntap", "up", "255.255.255.255"]),
            Err(Refusal::Datagram(_))
        ));
        assert!(matches!(
            p(&["4", "tuntap", "up", "1.2.3"]),
            Err(Refusal::Datagram(_))
        ));
        assert!(matches!(
            p(&["4", "ethertap", "tap0", "3"]),
            Err(Refusal::StatusFramed(_))
        ));
        assert!(matches!(
            p(&["4", "slip", "up", "10.0.0.1"]),
            Err(Refusal::Framed(_))
        ));
    }

    #[test]
    fn versions_parse_like_strtoul() {
        assert_eq!(strtoul_prefix("4"), Some(4));
        assert_eq!(strtoul_prefix("0x4"), Some(4));
        assert_eq!(strtoul_prefix("04"), Some(4));
        assert_eq!(strtoul_prefix("4abc"), Some(4));
        assert_eq!(strtoul_prefix("abc"), None);
        assert_eq!(strtoul_prefix("99999999999999999999999"), Some(u64::MAX));
        assert!(matches!(
            p(&["99999999999999999999", "tuntap"]),
            Err(Refusal::Stderr(_))
        ));
    }

    #[test]
    fn random_argument_lists_never_panic() {
        let words = [
            "4",
            "0x4",
            "tuntap",
            "up",
            "add",
            "del",
            "tap0",
            "lo",
            "10.0.0.1",
            "255.255.255.0",
            "",
            "\u{0}",
            "é",
            "-1",
            "9",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 7) as usize;
            let args: Vec<String> = (0..n)
                .map(|i| words[((x >> (i * 4)) % words.len() as u64) as usize].to_string())
                .collect();
            let _ = Request::parse(&args);
        }
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn host_addr() -> impl Strategy<Value = Ipv4Addr> {
        any::<[u8; 4]>()
            .prop_map(Ipv4Addr::from)
            .prop_filter("usable unicast", |a| {
                parse_host_addr(&a.to_string()).is_some()
            })
    }

    fn request() -> impl Strategy<Value = Request> {
        let change = (
            prop_oneof![Just(Change::Add), Just(Change::Del)],
            "[a-zA-Z0-9]{1,15}",
            host_addr(),
            0u32..=32,
        )
            .prop_map(|(op, dev, addr, prefix)| {
                let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - prefix).unwrap_or(0));
                Request::Change(AddrChange {
                    op,
                    dev,
                    addr,
                    mask,
                })
            });
        prop_oneof![
            proptest::option::of(host_addr()).prop_map(|gate| Request::TuntapUp { gate }),
            change,
        ]
    }

    proptest! {
        #[test]
        fn every_request_parses_back_from_its_argv(r in request()) {
            prop_assert_eq!(Request::parse(&r.to_argv()), Ok(r));
        }

        #[test]
        fn parsed_argv_is_written_back_to_an_equivalent_argv(
            words in proptest::collection::vec(
                prop_oneof![
                    Just("4".to_string()), Just("0x4".to_string()), Just("tuntap".to_string()),
                    Just("up".to_string()), Just("add".to_string()), Just("del".to_string()),
                    Just("tap0".to_string()), Just("10.0.0.1".to_string()),
                    Just("255.255.255.0".to_string()), Just(String::new()),
                ],
                0..7,
            )
        ) {
            if let Ok(r) = Request::parse(&words) {
                prop_assert_eq!(Request::parse(&r.to_argv()), Ok(r));
            }
        }
    }

    #[test]
    fn the_kernel_writes_what_it_always_wrote() {
        let r = Request::Change(AddrChange {
            op: Change::Del,
            dev: "tap0".into(),
            addr: [10, 0, 9, 2].into(),
            mask: [255, 255, 255, 0].into(),
        });
        assert_eq!(
            r.to_argv(),
            ["4", "del", "tap0", "10.0.9.2", "255.255.255.0"]
        );
        assert_eq!(
            kernel_tuntap_up(Some([192, 168, 0, 254].into())),
            ["4", "tuntap", "up", "192.168.0.254"]
        );
        // No gateway: no word, and uml_net refuses it as the original does.
        let bare = kernel_tuntap_up(None);
        assert_eq!(bare, ["4", "tuntap", "up"]);
        assert_eq!(Request::parse(&bare), Err(RequestError::TuntapUpTooFew));
    }

    #[test]
    fn refusals_are_typed_and_keep_their_texts() {
        let w = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Request::parse(&w(&["4", "add", "tap0", "10.0.0.1", "255.0.255.0"])),
            Err(RequestError::BadNetmask("255.0.255.0".into()))
        );
        assert_eq!(
            RequestError::BadDevice("a\nb".into()).to_string(),
            "uml_net : bad device name 'a\\nb'"
        );
        assert_eq!(
            RequestError::ChangeTooFew.refusal(),
            Refusal::Framed(
                "uml_net : too few arguments to change_addr (need DEV ADDR NETMASK)\n".into()
            )
        );
        assert_eq!(
            RequestError::BadArgumentList.refusal(),
            Refusal::Stderr(BAD_ARGUMENT_LIST.into())
        );
    }
}
