//! `uml_net`'s argv protocol (spec §2.2, §2.4): `uml_net VERSION TRANSPORT
//! ARGS...` as the UML kernel sends it, parsed into a validated request.
//!
//! uml_net runs setuid root, so every word is hostile: addresses must be
//! dotted quads of a usable unicast IPv4 address, netmasks contiguous, and
//! interface names short and alphanumeric. Only protocol version 4 (what
//! Linux 6.1 sends) is served; others get the original's messages.

use std::net::Ipv4Addr;

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

fn change(op: Change, args: &[String]) -> Result<Request, String> {
    let [dev, addr, mask, ..] = args else {
        return Err("uml_net : too few arguments to change_addr (need DEV ADDR NETMASK)\n".into());
    };
    if !valid_ifname(dev) {
        return Err(format!(
            "uml_net : bad device name '{}'\n",
            dev.escape_debug()
        ));
    }
    let addr = parse_host_addr(addr)
        .ok_or_else(|| format!("uml_net : bad address '{}'\n", addr.escape_debug()))?;
    let mask = parse_netmask(mask)
        .ok_or_else(|| format!("uml_net : bad netmask '{}'\n", mask.escape_debug()))?;
    Ok(Request::Change(AddrChange {
        op,
        dev: dev.clone(),
        addr,
        mask,
    }))
}

/// Parses `args` (without argv\[0\]).
pub fn parse(args: &[String]) -> Result<Request, Refusal> {
    if args.len() < 2 {
        return Err(Refusal::Stderr(BAD_ARGUMENT_LIST.into()));
    }
    let (version, transport, rest) = match strtoul_prefix(&args[0]) {
        Some(v) if v > CURRENT_VERSION => {
            return Err(Refusal::Stderr(format!(
                "Version mismatch - requested version {v}, uml_net supports up to version {CURRENT_VERSION}\n"
            )))
        }
        Some(v) => (v, args[1].as_str(), &args[2..]),
        None => (0, args[0].as_str(), &args[1..]),
    };
    if !["ethertap", "slip", "tuntap", "add", "del"].contains(&transport) {
        return Err(Refusal::Stdout(format!(
            "Unknown transport : '{}'\n",
            transport.escape_debug()
        )));
    }
    if version != CURRENT_VERSION {
        return Err(Refusal::Stdout(format!(
            "No version #{version} handler for '{transport}'\n"
        )));
    }
    match transport {
        "add" => change(Change::Add, rest).map_err(Refusal::Framed),
        "del" => change(Change::Del, rest).map_err(Refusal::Framed),
        "tuntap" => match rest.first().map(String::as_str) {
            None => Err(Refusal::Framed("uml_net : too few arguments to tuntap_v4\n".into())),
            Some("up") => match rest.get(1) {
                None => Err(Refusal::Datagram("Too few arguments to tuntap_up\n".into())),
                Some(g) if g.is_empty() => Ok(Request::TuntapUp { gate: None }),
                Some(g) => parse_host_addr(g)
                    .map(|a| Request::TuntapUp { gate: Some(a) })
                    .ok_or_else(|| Refusal::Datagram(format!("uml_net : bad gateway address '{}'\n", g.escape_debug()))),
            },
            Some(op @ ("add" | "del")) => {
                if rest.len() < 4 {
                    return Err(Refusal::Framed("uml_net : too few arguments to tuntap change_addr\n".into()));
                }
                let op = if op == "add" { Change::Add } else { Change::Del };
                change(op, &rest[1..]).map_err(Refusal::Framed)
            }
            Some(op) => Err(Refusal::Stderr(format!("Bad tuntap op : '{}'\n", op.escape_debug()))),
        },
        // ethertap: the host driver is gone from Linux; slip: not served
        // here. The kernel prints the text.
        "ethertap" => Err(Refusal::StatusFramed(
            "uml_net : the ethertap transport is not supported (the host driver no longer exists; use eth0=tuntap or eth0=daemon)\n".into(),
        )),
        other => Err(Refusal::Framed(format!(
            "uml_net : the {other} transport is not supported by this uml_net (use eth0=tuntap or eth0=daemon)\n"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Request, Refusal> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
            let _ = parse(&args);
        }
    }
}
