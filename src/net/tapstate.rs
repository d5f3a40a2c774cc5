//! Keeping the host as it was: what `uml_net` records about its TAPs and
//! how it undoes it when a TAP is gone.
//!
//! ```text
//!   tuntap up ── register_up ── record + watcher ── ip_forward on
//!   add / del ── change ──────── record updated ── route, proxy ARP
//!   TAP gone ─── (watcher, or the next uml_net in the namespace)
//!                 reconcile ──── proxy ARP withdrawn, ip_forward back
//! ```
//!
//! Everything happens under the state directory's lock, and every actor
//! starts with [`reconcile`]: whoever first sees that a recorded TAP's
//! interface index has gone from its namespace withdraws what was
//! published for it and removes the record, so a new TAP that reuses the
//! name (with a new index) is never touched. Host routes over the TAP and
//! its own `proxy_arp` setting go with the device (the kernel flushes
//! them), so nothing is done about them afterwards: the name may already
//! belong to a new TAP.

use super::host::{self, HostError};
use super::request::{AddrChange, Change};
use super::state::{self, TapKey, TapRecord};
use super::statedir::{StateDir, MAX_RECORDS};
use super::watcher;
use crate::sys::net as sysnet;
use std::os::fd::AsFd;
use std::path::Path;

/// The cookie of the caller's network namespace.
pub fn this_netns() -> Result<u64, HostError> {
    let sock = sysnet::inet_socket().map_err(|err| HostError::Sys {
        op: "socket".into(),
        err,
    })?;
    crate::sys::daemon::netns_cookie(sock.as_fd()).map_err(|err| HostError::Sys {
        op: "reading the network namespace cookie".into(),
        err,
    })
}

fn key_of(dev: &str) -> Result<TapKey, HostError> {
    let ifindex = sysnet::if_index(dev).ok_or_else(|| HostError::NotYours {
        dev: dev.to_string(),
        why: "no such interface".into(),
    })?;
    Ok(TapKey {
        netns: this_netns()?,
        ifindex,
    })
}

/// Undoes what was done for the TAPs in `gone` (same namespace as the
/// caller; `live` are the ones that remain): withdraws their proxy ARP
/// entries that no live TAP also published, and when none remains, puts
/// `ip_forward` back. Best effort: what fails stays as it is.
fn retire(gone: &[TapRecord], live: &[TapRecord]) {
    if let Ok(sock) = sysnet::inet_socket() {
        for g in gone {
            for (addr, iface) in state::proxy_entries_to_withdraw(g, live) {
                let _ = host::withdraw_proxy_arp(sock.as_fd(), addr, &iface);
            }
        }
    }
    if let Some(before) = state::forward_to_restore(gone, live) {
        if host::forwarding().ok() != Some(before) {
            let _ = host::set_forwarding(before);
        }
    }
}

/// Brings the records of namespace `netns` (the caller's) in line with
/// its interfaces: records whose TAP is gone are retired and removed.
/// Records of other namespaces whose watcher is gone too are dropped (no
/// one left can act in that namespace). Returns the records of `netns`
/// whose TAP still exists.
pub fn reconcile(sd: &StateDir, netns: u64) -> Vec<TapRecord> {
    let links: Vec<u32> = match nix::net::if_::if_nameindex() {
        Ok(list) => list.iter().map(|i| i.index()).collect(),
        // Without the list nothing can be judged gone.
        Err(_) => {
            return sd
                .records()
                .into_iter()
                .filter_map(|(_, r)| r)
                .filter(|r| r.key.netns == netns)
                .collect()
        }
    };
    let (mut live, mut gone) = (Vec::new(), Vec::new());
    for (key, rec) in sd.records() {
        let Some(rec) = rec else { continue };
        if key.netns != netns {
            if !sd.watched(key) {
                sd.remove(key);
            }
        } else if links.contains(&key.ifindex) {
            live.push(rec);
        } else {
            gone.push(rec);
        }
    }
    for g in &gone {
        sd.remove(g.key);
    }
    retire(&gone, &live);
    live
}

/// `tuntap up`, once the TAP `name` exists (its descriptor still held by
/// the caller): records it for `uid`, starts its watcher and turns
/// forwarding on. On error nothing of this is left behind.
pub fn register_up(dir: &Path, name: &str, uid: u32) -> Result<TapKey, HostError> {
    let key = key_of(name)?;
    let sd = StateDir::lock(dir)?;
    let live = reconcile(&sd, key.netns);
    if sd.records().len() >= MAX_RECORDS {
        return Err(HostError::Limit(format!(
            "uml_net already keeps {MAX_RECORDS} TAPs"
        )));
    }
    let now = host::forwarding()?;
    let rec = TapRecord::new(key, name, uid, state::forward_before_for_new(&live, now));
    let undo = |e: HostError| {
        sd.remove(key);
        e
    };
    let watch = sd.watch(key).map_err(|e| undo(e.into()))?;
    let sock = watcher::link_watch().map_err(|err| {
        undo(HostError::Sys {
            op: "rtnetlink socket".into(),
            err,
        })
    })?;
    watcher::spawn(key, dir, sock, watch.as_fd()).map_err(|err| {
        undo(HostError::Sys {
            op: "starting the TAP watcher".into(),
            err,
        })
    })?;
    drop(watch);
    sd.save(&rec).map_err(|e| undo(e.into()))?;
    if !now {
        host::set_forwarding(true).map_err(undo)?;
    }
    Ok(key)
}

/// Undoes [`register_up`] for a TAP that was never handed out: removes
/// its record and, when it was uml_net's last TAP in the namespace, puts
/// `ip_forward` back.
pub fn unregister(dir: &Path, key: TapKey) -> Result<(), HostError> {
    let sd = StateDir::lock(dir)?;
    let rec = sd.load(key);
    sd.remove(key);
    let live = reconcile(&sd, key.netns);
    if let Some(r) = rec {
        retire(&[r], &live);
    }
    Ok(())
}

/// `add`/`del` on `c.dev` (already checked to be the caller's TAP):
/// changes the host and keeps the TAP's record (if uml_net made it) in
/// step, so that whatever the guest leaves behind is withdrawn when the
/// TAP goes.
pub fn change(dir: &Path, c: &AddrChange) -> Result<(), HostError> {
    let key = key_of(&c.dev)?;
    let sd = StateDir::lock(dir)?;
    reconcile(&sd, key.netns);
    let mut rec = sd.load(key).filter(|r| r.name == c.dev);
    let mut ifaces = host::proxy_ifaces_for(c)?;
    match c.op {
        Change::Add => {
            if let Some(r) = rec.as_mut() {
                // Recorded first: an interrupted add is still withdrawn.
                if !r.add_addr(c.addr, c.mask, &ifaces) {
                    return Err(HostError::Limit(format!(
                        "{} already has {} addresses",
                        c.dev,
                        state::MAX_ADDRS
                    )));
                }
                sd.save(r)?;
            }
            host::change_addr(c, &ifaces)
        }
        Change::Del => {
            if let Some(r) = rec.as_mut() {
                for i in r.del_addr(c.addr) {
                    if !ifaces.contains(&i) {
                        ifaces.push(i);
                    }
                }
            }
            host::change_addr(c, &ifaces)?;
            if let Some(r) = rec {
                sd.save(&r)?;
            }
            Ok(())
        }
    }
}
