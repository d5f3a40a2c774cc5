//! When the switch polls instead of sleeping: a pure policy, tested
//! without sockets.
//!
//! A switch that sleeps between frames costs every frame a wake-up on both
//! sides: the sender's kernel wakes it, and it pays a context switch to
//! come back. Under a steady stream that is most of the time per frame, so
//! after frames arrive the daemon may keep polling (`epoll_wait` with a
//! zero timeout) for up to [`SPIN`], like the kernel's
//! `net.core.busy_poll`.
//!
//! Polling pays only when the next frame comes sooner than a sleep and a
//! wake-up would cost ([`WAKE_COST`]). So the switch keeps a running
//! estimate of what polling costs per event: the idle time before each
//! event less [`WAKE_COST`] when the event came within [`SPIN`] (polling
//! would catch it), and the whole [`SPIN`] when it came later (polling
//! would run out empty). A wake-up from sleep that finds more than one
//! frame waiting counts as a catch: frames came faster than the switch
//! could wake. It polls only while that estimate is negative. An idle
//! switch never polls; a busy one polls while frames come close together;
//! traffic too sparse to catch costs no polling at all once the estimate
//! has seen a few gaps.

use std::time::{Duration, Instant};

/// The longest the switch polls after an event.
pub const SPIN: Duration = Duration::from_micros(50);
/// What a sleep and a wake-up cost, roughly, on both sides.
pub const WAKE_COST: Duration = Duration::from_micros(10);

/// The busy-poll state of one daemon.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin {
    /// Polling without sleeping until then.
    until: Option<Instant>,
    /// Time waited (polling or asleep) since the last event.
    idle: Duration,
    /// Running average of what polling costs per event, in nanoseconds
    /// (negative: it saves time).
    score: i64,
    /// The machine has more runnable tasks than CPUs: never poll.
    crowded: bool,
}

/// Whether the machine is crowded, from `/proc/loadavg`'s text and the
/// number of CPUs: more runnable tasks on average over the last minute
/// than CPUs. Polling then only takes time from the tasks that would send
/// the frames (and the scheduler, which favours tasks that sleep, gives a
/// polling switch less of the CPU than a sleeping one).
pub fn crowded(loadavg: &str, cpus: usize) -> bool {
    let load = loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .unwrap_or(0.0);
    let cpus = u32::try_from(cpus).map_or(f64::MAX, f64::from);
    load > cpus
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Spin {
    /// Whether the wait about to start at `now` should only poll.
    pub fn polling(&self, now: Instant) -> bool {
        !self.crowded && self.until.is_some_and(|t| now < t)
    }

    /// Says whether the machine is crowded (see [`crowded`]).
    pub fn set_crowded(&mut self, crowded: bool) {
        self.crowded = crowded;
    }

    /// A wait (a poll or a sleep) took `spent`.
    pub fn waited(&mut self, spent: Duration) {
        self.idle = self.idle.saturating_add(spent);
    }

    /// Events were handled, ending at `now`; `frames` is how many frames
    /// they brought and `slept` whether the wait before them slept.
    pub fn handled(&mut self, now: Instant, frames: usize, slept: bool) {
        let sample = if slept && frames > 1 {
            -nanos(WAKE_COST)
        } else if self.idle < SPIN {
            nanos(self.idle) - nanos(WAKE_COST)
        } else {
            nanos(SPIN)
        };
        self.score += (sample - self.score) / 8;
        self.idle = Duration::ZERO;
        self.until = (self.score < 0).then(|| now + SPIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowded_machine_never_polls() {
        assert!(crowded("7.46 6.43 6.84 3/900 123", 2));
        assert!(!crowded("1.20 1.00 0.90 1/300 123", 2));
        assert!(!crowded("garbage", 2));
        let mut s = Spin::default();
        let t = Instant::now();
        s.handled(t, 4, true);
        assert!(s.polling(t), "a busy burst polls");
        s.set_crowded(true);
        assert!(!s.polling(t));
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A switch taking `work` per frame, with frames every `gap` for
    /// 100 ms, polling in 100 ns steps while the policy says so and
    /// otherwise sleeping (waking `wake` after a frame, and then handling
    /// every frame that has arrived). Returns the share of the time spent
    /// in empty polls and how many times the switch slept.
    fn simulate(gap: Duration, work: Duration, wake: Duration) -> (f64, usize) {
        let start = Instant::now();
        let end = start + Duration::from_millis(100);
        let mut s = Spin::default();
        let step = Duration::from_nanos(100);
        let (mut wasted, mut sleeps) = (Duration::ZERO, 0);
        let mut next = start; // the next frame to arrive
        let mut now = start;
        while next < end {
            let mut slept = false;
            while now < next && s.polling(now) {
                s.waited(step);
                wasted += step;
                now += step;
            }
            if now < next {
                sleeps += 1;
                slept = true;
                s.waited(next + wake - now);
                now = next + wake;
            }
            // Handle every frame that has arrived by now.
            let mut frames = 0;
            while next <= now {
                frames += 1;
                next += gap;
            }
            now += work * frames;
            s.handled(now, frames as usize, slept);
        }
        (wasted.as_secs_f64() / (end - start).as_secs_f64(), sleeps)
    }

    #[test]
    fn an_idle_switch_never_polls() {
        let t = Instant::now();
        let mut s = Spin::default();
        for k in 1..100 {
            assert!(!s.polling(t + us(k * 1000)));
            s.waited(us(1000));
        }
    }

    #[test]
    fn a_busy_switch_keeps_polling() {
        // A frame every 3 us and 2.5 us of work each: after the first few
        // frames the switch no longer sleeps.
        let (share, sleeps) = simulate(us(3), Duration::from_nanos(2500), us(5));
        assert!(sleeps <= 3, "{sleeps} sleeps, waste {share}");
        assert!(share < 0.2, "waste {share}");
    }

    #[test]
    fn slow_wake_ups_do_not_hide_dense_traffic() {
        // Waking takes 30 us, longer than polling is worth: the gaps seen
        // from sleep all look long, but each wake-up finds a queue.
        let (share, sleeps) = simulate(us(3), us(1), us(30));
        assert!(sleeps <= 3, "{sleeps} sleeps, waste {share}");
    }

    #[test]
    fn sparse_traffic_costs_next_to_no_polling() {
        for gap in [us(20), us(40), us(60), us(200), us(5000)] {
            let (share, _) = simulate(gap, us(1), us(5));
            assert!(share < 0.02, "gap {gap:?}: waste {share}");
        }
    }

    #[test]
    fn polling_stops_after_the_spin() {
        let t = Instant::now();
        let mut s = Spin::default();
        for k in 0..20 {
            s.waited(us(1));
            s.handled(t + us(k), 1, false);
        }
        let last = t + us(19);
        assert!(s.polling(last + SPIN - us(1)));
        assert!(!s.polling(last + SPIN));
    }
}
