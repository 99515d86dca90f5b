//! Exponential backoff with jitter, for GET retries, stream reconnects and order queries.
//!
//! Owns: the delay sequence. Must not: sleep or read a clock; the randomness is injected so
//! tests are deterministic.

use std::time::Duration;

/// A source of jitter: a uniform integer in `0..=max`.
pub trait Jitter {
    fn upto(&mut self, max: u64) -> u64;
}

/// Jitter from the thread RNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadJitter;

impl Jitter for ThreadJitter {
    fn upto(&mut self, max: u64) -> u64 {
        use rand::RngExt as _;
        rand::rng().random_range(0..=max)
    }
}

/// Exponential backoff with "equal jitter": attempt n waits between half and all of
/// `min(max, base · 2ⁿ)`, so reconnecting clients spread out but never retry instantly.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay; each call doubles the ceiling up to `max`.
    pub fn next_delay(&mut self, jitter: &mut impl Jitter) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        let half = cap_ms / 2;
        Duration::from_millis(half + jitter.upto(cap_ms - half))
    }

    /// Starts over (after a success or a stable connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Jitter that always returns the maximum, or always zero.
    pub(crate) struct Fixed(pub bool);
    impl Jitter for Fixed {
        fn upto(&mut self, max: u64) -> u64 {
            if self.0 { max } else { 0 }
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_within_the_jitter_band() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let hi: Vec<u128> = (0..6)
            .map(|_| b.next_delay(&mut Fixed(true)).as_millis())
            .collect();
        assert_eq!(hi, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        let lo: Vec<u128> = (0..5)
            .map(|_| b.next_delay(&mut Fixed(false)).as_millis())
            .collect();
        assert_eq!(lo, vec![50, 100, 200, 400, 500]);
    }

    #[test]
    fn thread_jitter_stays_in_range() {
        let mut j = ThreadJitter;
        for _ in 0..100 {
            assert!(j.upto(10) <= 10);
        }
        assert_eq!(j.upto(0), 0);
    }
}
