//! Which old backups of the journal the console removes (weekly copies kept), and the backup
//! intervals it picks from (daily, hourly).
//!
//! Owns: the retention rule, as a pure function of times. Must not: touch files (the engine
//! lists the backup folder, asks which to delete, and deletes them), or read the configuration:
//! which interval applies is the caller's choice, made from the deployment environment.

use std::path::PathBuf;

/// The hourly backup interval (production).
pub const HOUR_MS: i64 = 3_600_000;
/// The daily backup interval (staging).
pub const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;

/// Backups to delete: everything from the last 7 days is kept; before that, only the newest
/// backup of each 7-day period (counted back from `now_ms`) — the weekly copies.
pub fn to_prune(backups: &[(PathBuf, i64)], now_ms: i64) -> Vec<PathBuf> {
    let mut older: Vec<&(PathBuf, i64)> = backups.iter().filter(|(_, t)| now_ms - t > WEEK_MS).collect();
    // Newest first, so the first one seen in each week is the one kept.
    older.sort_by_key(|b| std::cmp::Reverse(b.1));
    let mut kept_weeks = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (path, t) in older {
        let week = (now_ms - t) / WEEK_MS;
        if !kept_weeks.insert(week) {
            out.push(path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str) -> PathBuf {
        PathBuf::from(n)
    }

    #[test]
    fn the_last_week_is_kept_whole_and_older_weeks_keep_their_newest_copy() {
        let now = 100 * WEEK_MS;
        let backups = vec![
            (p("recent-1"), now - HOUR_MS),
            (p("recent-2"), now - 6 * DAY_MS),
            (p("week2-new"), now - 8 * DAY_MS),
            (p("week2-old"), now - 9 * DAY_MS),
            (p("week3-only"), now - 15 * DAY_MS),
            (p("week5-a"), now - 30 * DAY_MS),
            (p("week5-b"), now - 31 * DAY_MS),
        ];
        let mut gone = to_prune(&backups, now);
        gone.sort();
        assert_eq!(gone, vec![p("week2-old"), p("week5-b")]);
    }
}
