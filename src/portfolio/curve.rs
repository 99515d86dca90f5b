//! The equity curve: recent samples kept raw, older history kept downsampled so that memory
//! stays bounded however long the console runs.
//!
//! Owns: the sample store, the windows (session, day, week, all) and [`downsample`]. Must not:
//! read a clock (`now_ms` is a parameter) or persist anything (the journal's `equity_curve`
//! table is the durable copy).
//!
//! Downsampling is **min/max per bucket**: the points are cut into `max / 2` buckets of equal
//! count and each bucket keeps its lowest and its highest sample, in time order. Unlike an
//! average it never hides a peak or a trough, so a drawdown stays visible on the chart.
//! When the raw buffer overflows, its oldest half is folded into the archive; when the archive
//! overflows it is downsampled to half its capacity (older history loses resolution first).

use std::collections::VecDeque;

use super::EquitySample;

const DAY_MS: i64 = 86_400_000;

/// Which part of the history a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Since this console started.
    Session,
    /// Since 00:00 UTC today.
    Day,
    /// The last 7 × 24 hours (rolling).
    Week,
    All,
}

/// Bounded equity history.
#[derive(Debug, Clone)]
pub struct EquityCurve {
    session_start_ms: i64,
    raw: VecDeque<EquitySample>,
    raw_cap: usize,
    archive: Vec<EquitySample>,
    archive_cap: usize,
}

impl EquityCurve {
    /// `raw_cap` recent samples are kept exactly, at most `archive_cap` older ones (both at
    /// least 4).
    pub fn new(session_start_ms: i64, raw_cap: usize, archive_cap: usize) -> Self {
        EquityCurve {
            session_start_ms,
            raw: VecDeque::new(),
            raw_cap: raw_cap.max(4),
            archive: Vec::new(),
            archive_cap: archive_cap.max(4),
        }
    }

    /// Loads persisted history (e.g. from the journal), oldest first, before the session.
    pub fn with_history(mut self, history: &[EquitySample]) -> Self {
        self.archive = downsample(history, self.archive_cap);
        self
    }

    /// Adds a sample; a sample older than the newest one is ignored (returns false).
    pub fn push(&mut self, sample: EquitySample) -> bool {
        let newest = self.raw.back().or(self.archive.last());
        if newest.is_some_and(|n| sample.time_ms < n.time_ms) {
            return false;
        }
        self.raw.push_back(sample);
        if self.raw.len() > self.raw_cap {
            let fold = self.raw.len() / 2;
            self.archive.extend(self.raw.drain(..fold));
            if self.archive.len() > self.archive_cap {
                self.archive = downsample(&self.archive, self.archive_cap / 2);
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.raw.len() + self.archive.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stored sample in the window, oldest first.
    pub fn window(&self, window: Window, now_ms: i64) -> Vec<EquitySample> {
        let from = match window {
            Window::Session => self.session_start_ms,
            Window::Day => now_ms.div_euclid(DAY_MS) * DAY_MS,
            Window::Week => now_ms.saturating_sub(7 * DAY_MS),
            Window::All => i64::MIN,
        };
        self.archive
            .iter()
            .chain(self.raw.iter())
            .filter(|s| s.time_ms >= from)
            .cloned()
            .collect()
    }

    /// The window reduced to at most `max_points` for a chart.
    pub fn series(&self, window: Window, now_ms: i64, max_points: usize) -> Vec<EquitySample> {
        downsample(&self.window(window, now_ms), max_points)
    }
}

/// Min/max-per-bucket downsampling to at most `max` points, time order kept (see the module
/// doc). `max == 1` keeps the last point; fewer points than `max` are returned unchanged.
pub fn downsample(points: &[EquitySample], max: usize) -> Vec<EquitySample> {
    if points.len() <= max {
        return points.to_vec();
    }
    if max < 2 {
        return points.last().filter(|_| max == 1).cloned().into_iter().collect();
    }
    let buckets = max / 2;
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max);
    for chunk in points.chunks(size) {
        let mut lo = 0;
        let mut hi = 0;
        for (i, s) in chunk.iter().enumerate() {
            if s.equity.amount() < chunk[lo].equity.amount() {
                lo = i;
            }
            if s.equity.amount() > chunk[hi].equity.amount() {
                hi = i;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[a].clone());
        if b != a {
            out.push(chunk[b].clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Asset, Money};
    use rust_decimal::Decimal;

    fn s(t: i64, v: i64) -> EquitySample {
        EquitySample {
            time_ms: t,
            equity: Money::new(Decimal::from(v), Asset::usdt()),
        }
    }

    #[test]
    fn downsample_keeps_extremes_in_time_order_within_the_bound() {
        let pts: Vec<_> = (0..100).map(|i| s(i, if i == 37 { -50 } else { i })).collect();
        let out = downsample(&pts, 10);
        assert!(out.len() <= 10, "{}", out.len());
        assert!(out.iter().any(|p| p.equity.amount() == Decimal::from(-50)));
        assert!(out.iter().any(|p| p.equity.amount() == Decimal::from(99)));
        assert!(out.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        assert_eq!(downsample(&pts[..5], 10).len(), 5);
        assert_eq!(downsample(&pts, 1), vec![s(99, 99)]);
        assert!(downsample(&pts, 0).is_empty());
    }

    #[test]
    fn long_histories_stay_bounded_and_keep_the_newest_samples_raw() {
        let mut c = EquityCurve::new(0, 100, 50);
        for i in 0..10_000 {
            assert!(c.push(s(i, i % 97)));
        }
        assert!(c.len() <= 150, "{}", c.len());
        let all = c.window(Window::All, 10_000);
        assert_eq!(all.last(), Some(&s(9_999, 9_999 % 97)));
        assert!(all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
        assert!(!c.push(s(5, 1)), "an older sample is ignored");
    }

    #[test]
    fn windows_select_session_utc_day_and_rolling_week() {
        let day = 20_000 * DAY_MS;
        let mut c = EquityCurve::new(day - 1000, 1000, 1000);
        let times = [
            day - 8 * DAY_MS,
            day - 3 * DAY_MS,
            day - 2000,
            day - 1000,
            day,
            day + 5000,
        ];
        for (i, t) in times.into_iter().enumerate() {
            c.push(s(t, i as i64));
        }
        let now = day + 6000;
        assert_eq!(c.window(Window::All, now).len(), 6);
        assert_eq!(c.window(Window::Week, now).len(), 5);
        assert_eq!(c.window(Window::Session, now).len(), 3);
        assert_eq!(c.window(Window::Day, now).len(), 2);
        assert_eq!(c.series(Window::All, now, 2).len(), 2);
    }
}
