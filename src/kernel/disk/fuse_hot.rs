//! One hot server thread: the host kernel hands each FUSE request to the
//! server thread that has waited longest in `read(/dev/fuse)`, so with
//! several threads a guest that asks one thing at a time (a shell loop of
//! creates or lookups) gets every request answered by a different, cold
//! thread, often on the other CPU. [`Hot`] parks a thread that finished
//! its request while another one is already reading, so that one thread
//! takes request after request; a request that may wait for the disk
//! ([`Hot::spare`]) first wakes a parked thread to read the next one
//! meanwhile.
//!
//! ```text
//!   reading  --request-->  enter  --reply-->  leave --(another reads)--> parked
//!      ^                    | spare: wake one parked ----------------------|
//!      +-----------------(nobody else reads, or woken, or PARK_LIMIT)------+
//! ```
//!
//! A thread that has parked for [`PARK_LIMIT`] reads again, so a miscount
//! can slow requests down but never leave the server without a reader.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a thread stays parked without being woken.
pub const PARK_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Threads in (or on their way back to) `read(/dev/fuse)`.
    reading: usize,
    /// Threads parked and not yet woken.
    parked: usize,
    /// Wake-ups given to parked threads and not yet taken.
    woken: usize,
}

/// The server threads' shared counts.
#[derive(Debug)]
pub struct Hot {
    counts: Mutex<Counts>,
    cv: Condvar,
}

/// Held while a thread answers a request; parks it on drop when another
/// thread is reading.
#[must_use]
pub struct Serving<'a>(Option<&'a Hot>);

impl Hot {
    /// For a server whose `threads` threads all start reading.
    pub fn new(threads: usize) -> Hot {
        Hot {
            counts: Mutex::new(Counts {
                reading: threads,
                ..Counts::default()
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread took a request from the kernel.
    pub fn enter(&self) -> Serving<'_> {
        let mut c = self.lock();
        c.reading = c.reading.saturating_sub(1);
        Serving(Some(self))
    }

    /// The request may wait (for the disk): when no thread is reading,
    /// wake a parked one to read the next request meanwhile.
    pub fn spare(&self) {
        let mut c = self.lock();
        if c.reading == 0 && c.parked > 0 {
            c.parked -= 1;
            c.woken += 1;
            c.reading += 1;
            drop(c);
            self.cv.notify_one();
        }
    }

    /// After the reply: back to reading when no other thread reads, else
    /// park until [`Hot::spare`] wakes this thread or [`PARK_LIMIT`].
    fn leave(&self) {
        let mut c = self.lock();
        if c.reading == 0 {
            c.reading = 1;
            return;
        }
        c.parked += 1;
        let deadline = Instant::now() + PARK_LIMIT;
        loop {
            if c.woken > 0 {
                c.woken -= 1;
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                c.parked -= 1;
                c.reading += 1;
                return;
            }
            c = match self.cv.wait_timeout(c, deadline - now) {
                Ok((c, _)) => c,
                Err(e) => e.into_inner().0,
            };
        }
    }

    #[cfg(test)]
    fn counts(&self) -> Counts {
        *self.lock()
    }
}

impl Serving<'_> {
    /// A guard for a server that does not park threads.
    pub fn none() -> Serving<'static> {
        Serving(None)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.0 {
            h.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_only_reader_goes_back_to_reading_without_parking() {
        let h = Hot::new(1);
        for _ in 0..3 {
            let s = h.enter();
            assert_eq!(h.counts().reading, 0);
            drop(s);
            assert_eq!(
                h.counts(),
                Counts {
                    reading: 1,
                    parked: 0,
                    woken: 0
                }
            );
        }
    }

    #[test]
    fn a_thread_parks_while_another_reads_and_a_slow_request_wakes_it() {
        let h = Arc::new(Hot::new(2));
        // Thread A answers a request while B reads: A parks afterwards.
        let a = {
            let h = h.clone();
            std::thread::spawn(move || drop(h.enter()))
        };
        while h.counts().parked == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            h.counts(),
            Counts {
                reading: 1,
                parked: 1,
                woken: 0
            }
        );
        // B takes a request that may wait: A is woken to read meanwhile.
        let b = h.enter();
        h.spare();
        a.join().unwrap();
        assert_eq!(
            h.counts(),
            Counts {
                reading: 1,
                parked: 0,
                woken: 0
            }
        );
        // (B's end would park it now that A reads: not waited for here.)
        std::mem::forget(b);
    }
}
