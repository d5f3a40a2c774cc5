//! When the switch polls instead of sleeping: a pure policy, tested
//! without sockets.
//!
//! A switch that sleeps between frames costs every frame a wake-up on both
//! sides: the sender's kernel wakes it, and it pays a context switch to
//! come back. Under a steady stream that is most of the time per frame, so
//! after frames arrive the daemon keeps polling (`epoll_wait` with a zero
//! timeout) for a short budget, like the kernel's `net.core.busy_poll`.
//!
//! The budget follows the traffic: a spin that ends with a frame doubles
//! it (up to [`MAX_SPIN`]), one that runs out empty halves it, and once it
//! falls under [`MIN_SPIN`] the switch sleeps between frames again. A
//! wake-up that finds more than one frame waiting (the traffic is dense
//! again) starts spinning at [`MIN_SPIN`]. Sparse traffic therefore costs
//! a few short spins and then none; an idle switch never spins.

use std::time::{Duration, Instant};

/// The longest spin after a frame.
pub const MAX_SPIN: Duration = Duration::from_micros(50);
/// The shortest spin worth doing; below it the switch sleeps.
pub const MIN_SPIN: Duration = Duration::from_micros(4);

/// The busy-poll state of one daemon.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin {
    /// Current budget; zero when the switch sleeps between frames.
    budget: Duration,
    /// Polling without sleeping until then.
    until: Option<Instant>,
}

impl Spin {
    /// Frames arrived at `now`; `waiting` is how many the first receive
    /// found.
    pub fn on_frames(&mut self, now: Instant, waiting: usize) {
        if self.until.is_some() {
            // Found while spinning: the spin paid.
            self.budget = (self.budget * 2).min(MAX_SPIN);
        } else if self.budget.is_zero() && waiting > 1 {
            self.budget = MIN_SPIN;
        }
        if !self.budget.is_zero() {
            self.until = Some(now + self.budget);
        }
    }

    /// Whether to poll without sleeping at `now`. A spin that ran out
    /// without frames halves the budget.
    pub fn polling(&mut self, now: Instant) -> bool {
        match self.until {
            Some(t) if now < t => true,
            Some(_) => {
                self.until = None;
                self.budget /= 2;
                if self.budget < MIN_SPIN {
                    self.budget = Duration::ZERO;
                }
                false
            }
            None => false,
        }
    }

    /// The current budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn idle_switch_never_spins() {
        let mut s = Spin::default();
        let t = Instant::now();
        assert!(!s.polling(t));
        // Single frames after sleeping do not start a spin.
        s.on_frames(t, 1);
        assert!(!s.polling(t));
        assert_eq!(s.budget(), Duration::ZERO);
    }

    #[test]
    fn dense_traffic_grows_the_budget_to_the_cap() {
        let mut s = Spin::default();
        let mut t = Instant::now();
        s.on_frames(t, 3);
        assert_eq!(s.budget(), MIN_SPIN);
        for _ in 0..20 {
            t += us(1);
            assert!(s.polling(t));
            s.on_frames(t, 1);
        }
        assert_eq!(s.budget(), MAX_SPIN);
        assert!(s.polling(t + MAX_SPIN - us(1)));
    }

    #[test]
    fn empty_spins_halve_the_budget_until_it_stops() {
        let mut s = Spin::default();
        let mut t = Instant::now();
        s.on_frames(t, 2);
        for _ in 0..10 {
            t += us(1);
            s.polling(t);
            s.on_frames(t, 1);
        }
        assert_eq!(s.budget(), MAX_SPIN);
        // Frames now come every 100 us: each spin runs out empty, and
        // after a few the switch sleeps between frames.
        for _ in 0..5 {
            t += us(100);
            assert!(!s.polling(t));
            s.on_frames(t, 1);
        }
        assert_eq!(s.budget(), Duration::ZERO);
        assert!(!s.polling(t + us(1)));
    }
}
