//! The MAC address table: which port each source address was last seen on
//! and when (spec §4.5). Entries not refreshed for the ageing time are
//! removed; a port's entries all go when the port does. There is no fixed
//! size: the table grows with the number of stations.

use super::PortId;
use crate::net::Mac;
use std::collections::HashMap;
use std::time::Duration;

/// The original's ageing time: entries unseen for 100 s are forgotten.
pub const AGEING_TIME: Duration = Duration::from_secs(100);

#[derive(Debug, Clone, Copy)]
struct Entry {
    port: PortId,
    last_seen: Duration,
}

/// Source address → port, with last-seen times (monotonic, caller-given).
#[derive(Debug, Default)]
pub struct MacTable {
    entries: HashMap<Mac, Entry, super::FastState>,
}

impl MacTable {
    /// An empty table.
    pub fn new() -> MacTable {
        MacTable::default()
    }

    /// The port `mac` was last seen on.
    pub fn lookup(&self, mac: &Mac) -> Option<PortId> {
        self.entries.get(mac).map(|e| e.port)
    }

    /// Records `mac` on `port` at `now`; returns the previous port when the
    /// address is new (`Some(None)`) or moved (`Some(Some(old))`), `None`
    /// when it was already there.
    pub fn learn(&mut self, mac: Mac, port: PortId, now: Duration) -> Option<Option<PortId>> {
        match self.entries.insert(
            mac,
            Entry {
                port,
                last_seen: now,
            },
        ) {
            Some(old) if old.port == port => None,
            Some(old) => Some(Some(old.port)),
            None => Some(None),
        }
    }

    /// Forgets every address on `port`.
    pub fn purge_port(&mut self, port: PortId) {
        self.entries.retain(|_, e| e.port != port);
    }

    /// Forgets entries last seen more than `ageing` before `now`; returns
    /// how many went.
    pub fn age(&mut self, now: Duration, ageing: Duration) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.saturating_sub(e.last_seen) <= ageing);
        before - self.entries.len()
    }

    /// Number of addresses known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = Mac::new([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac::new([2, 0, 0, 0, 0, 2]);

    #[test]
    fn learning_reports_new_and_moved_addresses_only() {
        let mut t = MacTable::new();
        let s = Duration::from_secs;
        assert_eq!(t.learn(A, PortId(1), s(0)), Some(None));
        assert_eq!(t.learn(A, PortId(1), s(1)), None);
        assert_eq!(t.learn(A, PortId(2), s(2)), Some(Some(PortId(1))));
        assert_eq!(t.lookup(&A), Some(PortId(2)));
    }

    #[test]
    fn entries_age_out_after_the_ageing_time_unless_refreshed() {
        let mut t = MacTable::new();
        let s = Duration::from_secs;
        t.learn(A, PortId(1), s(0));
        t.learn(B, PortId(2), s(0));
        t.learn(B, PortId(2), s(90));
        assert_eq!(t.age(s(100), AGEING_TIME), 0);
        assert_eq!(t.age(s(101), AGEING_TIME), 1);
        assert_eq!(t.lookup(&A), None);
        assert_eq!(t.lookup(&B), Some(PortId(2)));
    }

    #[test]
    fn removing_a_port_purges_all_its_addresses() {
        let mut t = MacTable::new();
        t.learn(A, PortId(1), Duration::ZERO);
        t.learn(B, PortId(1), Duration::ZERO);
        t.purge_port(PortId(1));
        assert!(t.is_empty());
    }
}
