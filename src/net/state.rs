//! What `uml_net` changed on the host for one TAP it made, as a small text
//! record, and the pure decisions made from a set of records: which proxy
//! ARP entries to withdraw when a TAP is gone, and when to put
//! `ip_forward` back.
//!
//! A record is keyed by the network namespace (its cookie) and the TAP's
//! interface index, neither of which the kernel reuses while it runs, so a
//! new TAP that gets an old one's name is never mistaken for it. The text
//! is read back by a root process, so [`TapRecord::parse`] validates every
//! word and bounds every count; anything else is `None`.
//!
//! ```text
//! uml_net-state 1
//! netns 4096
//! ifindex 7
//! name tap0
//! uid 1000
//! forward_before 0
//! addr 10.0.0.2 255.255.255.0 eth0 br0
//! ```

use super::request::{parse_host_addr, parse_netmask, valid_ifname};
use std::net::Ipv4Addr;

/// The first line of every record.
const MAGIC: &str = "uml_net-state 1";
/// Most guest addresses one record keeps.
pub const MAX_ADDRS: usize = 64;
/// Most interfaces one address is published on.
pub const MAX_PROXY_IFACES: usize = 32;
/// Largest record file read.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024;

/// Which TAP a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapKey {
    /// The network namespace's cookie.
    pub netns: u64,
    /// The TAP's interface index in it.
    pub ifindex: u32,
}

impl TapKey {
    /// The record's file name: `<netns as 16 hex digits>-<ifindex>`.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{}", self.netns, self.ifindex)
    }

    /// The inverse of [`TapKey::file_name`]; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<TapKey> {
        let (ns, idx) = name.split_once('-')?;
        if ns.len() != 16 || !ns.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if idx.is_empty() || idx.len() > 10 || !idx.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let key = TapKey {
            netns: u64::from_str_radix(ns, 16).ok()?,
            ifindex: idx.parse().ok()?,
        };
        (key.file_name() == name).then_some(key)
    }
}

/// One guest address `add` set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEntry {
    /// The guest's address (host route over the TAP, proxy ARP elsewhere).
    pub addr: Ipv4Addr,
    /// Its netmask.
    pub mask: Ipv4Addr,
    /// The other interfaces it was published on with proxy ARP.
    pub proxied: Vec<String>,
}

/// What uml_net changed on the host for one TAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    /// Namespace and interface index.
    pub key: TapKey,
    /// The TAP's name when it was made.
    pub name: String,
    /// The user it was made for.
    pub uid: u32,
    /// Whether `ip_forward` was on before the first of uml_net's TAPs in
    /// this namespace turned it on.
    pub forward_before: bool,
    /// The guest addresses `add` set up and `del` has not taken away.
    pub addrs: Vec<AddrEntry>,
}

/// A name from `/proc/net/route` as kept in a record: 1 to 15 bytes,
/// printable ASCII without spaces or `/`. Names outside that are not
/// recorded (and not published on).
pub fn recordable_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() < 16 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

impl TapRecord {
    /// A record for a fresh TAP with no addresses yet.
    pub fn new(key: TapKey, name: &str, uid: u32, forward_before: bool) -> TapRecord {
        TapRecord {
            key,
            name: name.to_string(),
            uid,
            forward_before,
            addrs: Vec::new(),
        }
    }

    /// Remembers that `addr` was published on `proxied` (merged with what
    /// an earlier `add` of the same address published). Returns false
    /// when the record is full and nothing was kept.
    pub fn add_addr(&mut self, addr: Ipv4Addr, mask: Ipv4Addr, proxied: &[String]) -> bool {
        let keep = |v: &mut Vec<String>| {
            for i in proxied.iter().filter(|i| recordable_ifname(i)) {
                if !v.contains(i) && v.len() < MAX_PROXY_IFACES {
                    v.push(i.clone());
                }
            }
        };
        if let Some(e) = self.addrs.iter_mut().find(|e| e.addr == addr) {
            e.mask = mask;
            keep(&mut e.proxied);
            return true;
        }
        if self.addrs.len() >= MAX_ADDRS {
            return false;
        }
        let mut e = AddrEntry {
            addr,
            mask,
            proxied: Vec::new(),
        };
        keep(&mut e.proxied);
        self.addrs.push(e);
        true
    }

    /// Forgets `addr`; returns the interfaces it had been published on.
    pub fn del_addr(&mut self, addr: Ipv4Addr) -> Vec<String> {
        match self.addrs.iter().position(|e| e.addr == addr) {
            Some(i) => self.addrs.remove(i).proxied,
            None => Vec::new(),
        }
    }

    /// The record's text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nnetns {}\nifindex {}\nname {}\nuid {}\nforward_before {}\n",
            self.key.netns,
            self.key.ifindex,
            self.name,
            self.uid,
            u8::from(self.forward_before)
        );
        for e in &self.addrs {
            s.push_str(&format!("addr {} {}", e.addr, e.mask));
            for i in &e.proxied {
                s.push(' ');
                s.push_str(i);
            }
            s.push('\n');
        }
        s
    }

    /// Parses a record's text; `None` unless every line is well formed,
    /// every field present once, and the counts within bounds.
    pub fn parse(text: &str) -> Option<TapRecord> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut netns, mut ifindex, mut name, mut uid, mut fwd) = (None, None, None, None, None);
        let mut addrs: Vec<AddrEntry> = Vec::new();
        fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
            if slot.is_some() {
                return None;
            }
            *slot = Some(v?);
            Some(())
        }
        for line in lines {
            let mut w = line.split(' ');
            let key = w.next()?;
            let rest: Vec<&str> = w.collect();
            match (key, rest.as_slice()) {
                ("netns", [v]) => once(&mut netns, decimal::<u64>(v))?,
                ("ifindex", [v]) => once(&mut ifindex, decimal::<u32>(v).filter(|&i| i != 0))?,
                ("name", [v]) => once(&mut name, valid_ifname(v).then(|| v.to_string()))?,
                ("uid", [v]) => once(&mut uid, decimal::<u32>(v))?,
                ("forward_before", [v]) => once(
                    &mut fwd,
                    match *v {
                        "0" => Some(false),
                        "1" => Some(true),
                        _ => None,
                    },
                )?,
                ("addr", [a, m, ifs @ ..]) => {
                    let addr = parse_host_addr(a)?;
                    let mask = parse_netmask(m)?;
                    if addrs.len() >= MAX_ADDRS
                        || ifs.len() > MAX_PROXY_IFACES
                        || addrs.iter().any(|e| e.addr == addr)
                        || !ifs.iter().all(|i| recordable_ifname(i))
                    {
                        return None;
                    }
                    addrs.push(AddrEntry {
                        addr,
                        mask,
                        proxied: ifs.iter().map(|i| i.to_string()).collect(),
                    });
                }
                _ => return None,
            }
        }
        Some(TapRecord {
            key: TapKey {
                netns: netns?,
                ifindex: ifindex?,
            },
            name: name?,
            uid: uid?,
            forward_before: fwd?,
            addrs,
        })
    }
}

/// A plain decimal number (no sign, no leading zeros but "0").
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    let ok = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// The proxy ARP entries to withdraw for `gone` (a TAP that no longer
/// exists): every `(address, interface)` it published that no TAP in
/// `live` (same namespace) has published too.
pub fn proxy_entries_to_withdraw(gone: &TapRecord, live: &[TapRecord]) -> Vec<(Ipv4Addr, String)> {
    let claimed = |addr: Ipv4Addr, iface: &str| {
        live.iter().any(|r| {
            r.addrs
                .iter()
                .any(|e| e.addr == addr && e.proxied.iter().any(|i| i == iface))
        })
    };
    let mut out = Vec::new();
    for e in &gone.addrs {
        for i in &e.proxied {
            if !claimed(e.addr, i) && !out.iter().any(|(a, n)| *a == e.addr && n == i) {
                out.push((e.addr, i.clone()));
            }
        }
    }
    out
}

/// What `ip_forward` must be set back to after the TAPs in `gone` went
/// away and `live` remain in the same namespace: `None` while any remains
/// (or nothing went), else the value from before uml_net's first change.
pub fn forward_to_restore(gone: &[TapRecord], live: &[TapRecord]) -> Option<bool> {
    if !live.is_empty() {
        return None;
    }
    gone.first().map(|r| r.forward_before)
}

/// The `forward_before` of a new TAP: inherited from the TAPs uml_net
/// already has in the namespace (they saw the value before the first
/// change), else the value now.
pub fn forward_before_for_new(live: &[TapRecord], now: bool) -> bool {
    live.first().map_or(now, |r| r.forward_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ifindex: u32, fwd: bool) -> TapRecord {
        TapRecord::new(
            TapKey {
                netns: 0xabc,
                ifindex,
            },
            &format!("tap{ifindex}"),
            1000,
            fwd,
        )
    }

    #[test]
    fn a_record_survives_render_and_parse() {
        let mut r = rec(7, false);
        assert!(r.add_addr(
            [10, 0, 0, 2].into(),
            [255, 255, 255, 0].into(),
            &["eth0".into(), "br-1.5".into()]
        ));
        assert!(r.add_addr([10, 0, 1, 2].into(), [255, 0, 0, 0].into(), &[]));
        let text = r.render();
        assert_eq!(TapRecord::parse(&text), Some(r.clone()));
        assert!(text.contains("addr 10.0.0.2 255.255.255.0 eth0 br-1.5\n"));
        assert_eq!(r.del_addr([10, 0, 0, 2].into()), vec!["eth0", "br-1.5"]);
        assert_eq!(r.addrs.len(), 1);
    }

    #[test]
    fn damaged_or_hostile_records_are_refused() {
        let good = {
            let mut r = rec(7, true);
            r.add_addr(
                [10, 0, 0, 2].into(),
                [255, 255, 255, 0].into(),
                &["eth0".into()],
            );
            r.render()
        };
        assert!(TapRecord::parse(&good).is_some());
        for bad in [
            good.replace("uml_net-state 1", "uml_net-state 2"),
            good.replace("ifindex 7", "ifindex 0"),
            good.replace("ifindex 7", "ifindex 07"),
            good.replace("name tap7", "name ../x"),
            good.replace("forward_before 1", "forward_before 2"),
            good.replace("uid 1000", "uid -1"),
            good.replace("10.0.0.2", "127.0.0.1"),
            good.replace("255.255.255.0", "255.0.255.0"),
            good.replace(" eth0", " eth/0"),
            good.replace("netns 2748\n", ""),
            format!("{good}uid 5\n"),
            format!("{good}addr 10.0.0.2 255.255.255.0\n"),
            format!("{good}frob 1\n"),
            format!("{good}\n"),
            String::new(),
        ] {
            assert_eq!(TapRecord::parse(&bad), None, "{bad:?}");
        }
        let many: String = (0..=MAX_ADDRS)
            .map(|i| format!("addr 10.1.{}.{} 255.255.255.0\n", i / 200, i % 200 + 1))
            .collect();
        assert_eq!(TapRecord::parse(&format!("{good}{many}")), None);
    }

    #[test]
    fn file_names_round_trip_and_nothing_else_parses() {
        let k = TapKey {
            netns: 0x1234,
            ifindex: 42,
        };
        assert_eq!(k.file_name(), "0000000000001234-42");
        assert_eq!(TapKey::from_file_name(&k.file_name()), Some(k));
        for bad in [
            "lock",
            "0000000000001234-42.watch",
            "0000000000001234-042",
            "000000000001234-42",
            "0000000000001234-",
            "0000000000001234-99999999999",
            "tmp.0000000000001234-42",
        ] {
            assert_eq!(TapKey::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_proxy_entry_another_live_tap_also_published_is_kept() {
        let mut gone = rec(1, false);
        gone.add_addr(
            [10, 0, 0, 2].into(),
            [255, 255, 255, 0].into(),
            &["eth0".into(), "eth1".into()],
        );
        let mut other = rec(2, false);
        other.add_addr(
            [10, 0, 0, 2].into(),
            [255, 255, 255, 0].into(),
            &["eth1".into()],
        );
        assert_eq!(
            proxy_entries_to_withdraw(&gone, &[other.clone()]),
            vec![([10, 0, 0, 2].into(), "eth0".to_string())]
        );
        assert_eq!(proxy_entries_to_withdraw(&gone, &[]).len(), 2);
    }

    #[test]
    fn ip_forward_is_restored_only_when_the_last_tap_goes() {
        let first = rec(1, false);
        // The second TAP inherits "off" although forwarding is on by then.
        let second = rec(
            2,
            forward_before_for_new(std::slice::from_ref(&first), true),
        );
        assert!(!second.forward_before);
        assert_eq!(
            forward_to_restore(std::slice::from_ref(&first), std::slice::from_ref(&second)),
            None
        );
        assert_eq!(
            forward_to_restore(std::slice::from_ref(&second), &[]),
            Some(false)
        );
        assert_eq!(forward_to_restore(&[], &[]), None);
        assert!(forward_before_for_new(&[], true));
    }

    #[test]
    fn a_full_record_refuses_more_addresses() {
        let mut r = rec(1, false);
        for i in 0..MAX_ADDRS {
            let a = Ipv4Addr::new(
                10,
                2,
                u8::try_from(i / 200).unwrap(),
                u8::try_from(i % 200 + 1).unwrap(),
            );
            assert!(r.add_addr(a, [255, 255, 0, 0].into(), &[]));
        }
        assert!(!r.add_addr([10, 3, 0, 1].into(), [255, 255, 0, 0].into(), &[]));
        assert!(TapRecord::parse(&r.render()).is_some());
    }
}
