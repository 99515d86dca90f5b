//! Clock offset between this machine and the exchange (§10).
//!
//! Owns: the offset estimate `serverTime − (t_send + t_recv) / 2` and the signed-request
//! timestamp derived from it. Must not: read the network (the REST client feeds it samples).
//! Shared by the REST client and the streams through atomics, so reading it never blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The local wall clock in epoch milliseconds.
pub fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The largest offset crbot accepts between its clock and the exchange's; a domain value
/// because the error that reports a larger one quotes it.
pub use crate::domain::broker::MAX_CLOCK_OFFSET_MS;

/// `serverTime − midpoint(t_send, t_recv)`: positive when the exchange is ahead of us.
/// Saturating: a server time from a broken clock must not overflow into a small offset.
pub fn estimate_offset(t_send_ms: i64, t_recv_ms: i64, server_ms: i64) -> i64 {
    let mid = t_send_ms.saturating_add(t_recv_ms.saturating_sub(t_send_ms) / 2);
    server_ms.saturating_sub(mid)
}

/// One clock sample, for display (`ping`, `health`, the screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    pub offset_ms: i64,
    pub rtt_ms: i64,
    pub synced_at_ms: i64,
}

/// The shared clock state: the current offset, the last round trip and a "needs resync" flag
/// raised on `-1021`.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    rtt_ms: Arc<AtomicI64>,
    synced_at_ms: Arc<AtomicI64>,
    stale: Arc<AtomicBool>,
}

impl Clock {
    pub fn new() -> Self {
        let c = Self::default();
        // Never synced: the first signed request syncs first.
        c.stale.store(true, Ordering::Relaxed);
        c
    }

    /// Records a `/api/v3/time` round trip (the caller has checked the offset is plausible).
    pub fn record(&self, t_send_ms: i64, t_recv_ms: i64, server_ms: i64) -> ClockSample {
        let offset = estimate_offset(t_send_ms, t_recv_ms, server_ms);
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.rtt_ms.store(t_recv_ms - t_send_ms, Ordering::Relaxed);
        self.synced_at_ms.store(t_recv_ms, Ordering::Relaxed);
        self.stale.store(false, Ordering::Relaxed);
        self.sample()
    }

    pub fn sample(&self) -> ClockSample {
        ClockSample {
            offset_ms: self.offset_ms.load(Ordering::Relaxed),
            rtt_ms: self.rtt_ms.load(Ordering::Relaxed),
            synced_at_ms: self.synced_at_ms.load(Ordering::Relaxed),
        }
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The exchange's time estimated from a local time.
    pub fn server_time_at(&self, local_ms: i64) -> i64 {
        local_ms.saturating_add(self.offset_ms())
    }

    /// `timestamp` for a signed request: local now + offset.
    pub fn timestamp_ms(&self) -> i64 {
        self.server_time_at(local_now_ms())
    }

    /// Marks the offset untrustworthy (after `-1021`); the next signed request resyncs first.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_uses_the_midpoint_of_the_round_trip() {
        // Sent at 1000, answered at 1200, server said 3600: midpoint 1100 → +2500.
        assert_eq!(estimate_offset(1000, 1200, 3600), 2500);
        // Exchange 2.5 s behind.
        assert_eq!(estimate_offset(10_000, 10_040, 7_520), -2500);
        // A server time from a broken clock saturates instead of wrapping to a small offset.
        assert_eq!(estimate_offset(1_000, 1_200, i64::MIN), i64::MIN);
    }

    #[test]
    fn timestamps_follow_the_recorded_offset_and_stale_flag_clears() {
        let c = Clock::new();
        assert!(c.is_stale());
        let s = c.record(1000, 1100, 4050);
        assert_eq!(s.offset_ms, 3000);
        assert_eq!(s.rtt_ms, 100);
        assert!(!c.is_stale());
        assert_eq!(c.server_time_at(5000), 8000);
        c.mark_stale();
        assert!(c.is_stale());
    }
}
