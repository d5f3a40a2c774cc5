//! The kernel log a guest reads with `dmesg`: the monitor's boot lines,
//! kept in a ring like the kernel's `log_buf`, and the answers to
//! `syslog(2)`, which the guest's seccomp filter hands to the monitor
//! (the host kernel's own log is not the guest's business).
//!
//! [`answer`] is pure: an action and its arguments in, what to reply out.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The ring's size, as `syslog(SYSLOG_ACTION_SIZE_BUFFER)` reports it
/// (the kernel's default `CONFIG_LOG_BUF_SHIFT` of 17).
pub const LOG_BUF_LEN: usize = 1 << 17;

/// The log: `<level>[seconds.micros] text\n` records, oldest dropped.
#[derive(Clone)]
pub struct Kmsg(Arc<Mutex<Ring>>);

struct Ring {
    start: Instant,
    bytes: std::collections::VecDeque<u8>,
}

impl Default for Kmsg {
    fn default() -> Self {
        Kmsg(Arc::new(Mutex::new(Ring {
            start: Instant::now(),
            bytes: std::collections::VecDeque::new(),
        })))
    }
}

impl Kmsg {
    /// Appends a line at `level` (6 = info, 3 = error).
    pub fn push(&self, level: u8, line: &str) {
        let Ok(mut r) = self.0.lock() else {
            return;
        };
        let t = r.start.elapsed();
        let rec = format!(
            "<{level}>[{:5}.{:06}] {line}\n",
            t.as_secs(),
            t.subsec_micros()
        );
        r.bytes.extend(rec.bytes());
        let excess = r.bytes.len().saturating_sub(LOG_BUF_LEN);
        r.bytes.drain(..excess);
    }

    /// The whole log.
    pub fn contents(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|r| r.bytes.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Empties it (`SYSLOG_ACTION_CLEAR`).
    pub fn clear(&self) {
        if let Ok(mut r) = self.0.lock() {
            r.bytes.clear();
        }
    }
}

/// What to reply to one `syslog(type, buf, len)`.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Return this value.
    Value(i64),
    /// Copy these bytes to `buf` and return their count.
    Copy(Vec<u8>),
    /// Fail with this errno.
    Errno(i32),
}

/// The answer to `syslog(action, _, len)` over `log` (see syslog(2)).
pub fn answer(action: u64, len: u64, log: &Kmsg) -> Reply {
    match action {
        // CLOSE, OPEN, CLEAR is below, CONSOLE_OFF, CONSOLE_ON,
        // CONSOLE_LEVEL: accepted, nothing to do.
        0 | 1 | 6 | 7 | 8 => Reply::Value(0),
        // READ waits for new messages; none will come from here.
        2 => Reply::Errno(libc::EPERM),
        3 | 4 => {
            // `len` is a C int: a negative one is refused.
            let len = u32::try_from(len & 0xffff_ffff)
                .ok()
                .and_then(|v| i32::try_from(v).ok())
                .and_then(|v| usize::try_from(v).ok());
            let Some(len) = len else {
                return Reply::Errno(libc::EINVAL);
            };
            let all = log.contents();
            let from = all.len().saturating_sub(len);
            let out = all[from..].to_vec();
            if action == 4 {
                log.clear();
            }
            Reply::Copy(out)
        }
        5 => {
            log.clear();
            Reply::Value(0)
        }
        9 => Reply::Value(0),
        10 => Reply::Value(i64::try_from(LOG_BUF_LEN).unwrap_or(0)),
        _ => Reply::Errno(libc::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_returns_the_newest_records_that_fit() {
        let k = Kmsg::default();
        k.push(6, "Linux version x");
        k.push(3, "oops");
        let Reply::Copy(all) = answer(3, 4096, &k) else {
            panic!()
        };
        let text = String::from_utf8(all).unwrap();
        assert!(text.starts_with("<6>[    0."), "{text}");
        assert!(text.contains("] Linux version x\n<3>["), "{text}");
        assert!(text.ends_with("] oops\n"), "{text}");
        let Reply::Copy(tail) = answer(3, 5, &k) else {
            panic!()
        };
        assert_eq!(tail, b"oops\n");
    }

    #[test]
    fn clear_console_level_size_and_bad_actions() {
        let k = Kmsg::default();
        k.push(6, "a");
        assert_eq!(answer(8, 1, &k), Reply::Value(0));
        assert_eq!(answer(10, 0, &k), Reply::Value(1 << 17));
        assert_eq!(answer(3, u64::MAX, &k), Reply::Errno(libc::EINVAL));
        assert_eq!(answer(2, 10, &k), Reply::Errno(libc::EPERM));
        assert_eq!(answer(11, 0, &k), Reply::Errno(libc::EINVAL));
        let _ = answer(4, 100, &k);
        assert_eq!(answer(3, 100, &k), Reply::Copy(Vec::new()));
    }

    #[test]
    fn the_ring_keeps_only_the_newest_bytes() {
        let k = Kmsg::default();
        for i in 0..20_000 {
            k.push(6, &format!("line {i}"));
        }
        let all = k.contents();
        assert!(all.len() <= LOG_BUF_LEN);
        assert!(String::from_utf8_lossy(&all).ends_with("] line 19999\n"));
    }
}
