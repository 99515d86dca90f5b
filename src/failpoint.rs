//! Failpoints: a test hook for the crash-safety tests. It does nothing unless
//! the environment variable `CRBOT_FAILPOINT` is set.
//!
//! Owns: [`hit`], called at the exact points of an order's life where a crash is most
//! dangerous (journaled but not sent, sent but not answered, a fill received but not
//! journaled, a halt journaled but nothing cancelled, a kill sweep half done). When
//! `CRBOT_FAILPOINT` names the point (`before_send`), or names it with a count
//! (`before_send:3`: the third time it is reached), the process aborts on the spot with
//! `std::process::abort()` — as SIGKILL would: no destructors run, nothing is flushed, no
//! transaction is finished. The variable is read once and cached; with it unset, a hit costs
//! one comparison of a cached value. Must not: do anything else (no logging, no I/O), so
//! that the code under test behaves exactly as it does in production up to the abort.
//!
//! The points, in an order's life:
//! - `before_send`: the order row is journaled, the request has not left;
//! - `after_send`: the request went out, its answer is not handled yet;
//! - `before_fill_journal`: a fill was received, it is not journaled yet;
//! - `after_fill_journal`: the fill is journaled, nothing else happened yet;
//! - `kill_after_halt`: the halt is journaled, no cancel has left;
//! - `kill_mid_sweep`: the first cancel of the kill switch was answered, the rest are not.
//!
//! One point stalls instead of aborting ([`stall`]), for the test that proves a slow step
//! holds nothing else up: `backup_slow`, a journal backup that takes seconds (as a large
//! journal's does).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the failpoint to fire.
pub const ENV: &str = "CRBOT_FAILPOINT";

/// Every failpoint crbot's code calls (the crash harness picks from these).
pub const POINTS: [&str; 6] = [
    "before_send",
    "after_send",
    "before_fill_journal",
    "after_fill_journal",
    "kill_after_halt",
    "kill_mid_sweep",
];

/// The armed failpoint: its name and on which hit it fires (1 = the first).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Armed {
    name: String,
    nth: u64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// `name` or `name:N` (N ≥ 1); anything else arms nothing (a typo must not crash a run
/// somewhere unexpected, and an empty value is the same as unset).
fn parse(value: &str) -> Option<Armed> {
    let value = value.trim();
    let (name, nth) = match value.split_once(':') {
        Some((name, n)) => (name, n.trim().parse::<u64>().ok().filter(|n| *n >= 1)?),
        None => (value, 1),
    };
    if name.is_empty() {
        return None;
    }
    Some(Armed {
        name: name.to_string(),
        nth,
    })
}

fn armed() -> &'static Option<Armed> {
    ARMED.get_or_init(|| std::env::var(ENV).ok().as_deref().and_then(parse))
}

/// Whether reaching `name` now must abort; counts the hits of the armed point.
fn fires(armed: &Option<Armed>, name: &str, hits: &AtomicU64) -> bool {
    match armed {
        Some(a) if a.name == name => hits.fetch_add(1, Ordering::SeqCst) + 1 >= a.nth,
        _ => false,
    }
}

/// Aborts the process here when `CRBOT_FAILPOINT` names this point (see the module doc).
#[inline]
pub fn hit(name: &str) {
    if fires(armed(), name, &HITS) {
        std::process::abort();
    }
}

/// Blocks this thread for `how_long` when `CRBOT_FAILPOINT` names this point; otherwise does
/// nothing. Only for steps that already run on a thread of their own (a backup's copy).
pub fn stall(name: &str, how_long: std::time::Duration) {
    if armed().as_ref().is_some_and(|a| a.name == name) {
        std::thread::sleep(how_long);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bare_name_as_the_first_hit() {
        assert_eq!(
            parse("before_send"),
            Some(Armed {
                name: "before_send".into(),
                nth: 1
            })
        );
    }

    #[test]
    fn parses_a_count_after_a_colon() {
        assert_eq!(
            parse("after_send:3"),
            Some(Armed {
                name: "after_send".into(),
                nth: 3
            })
        );
    }

    #[test]
    fn arms_nothing_for_empty_or_malformed_values() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("before_send:0"), None);
        assert_eq!(parse("before_send:x"), None);
        assert_eq!(parse(":2"), None);
    }

    #[test]
    fn fires_only_for_the_armed_name_on_the_nth_hit() {
        let armed = parse("after_fill_journal:2");
        let hits = AtomicU64::new(0);
        assert!(!fires(&armed, "before_send", &hits));
        assert!(!fires(&armed, "after_fill_journal", &hits));
        assert!(fires(&armed, "after_fill_journal", &hits));
    }

    #[test]
    fn never_fires_when_unset() {
        let hits = AtomicU64::new(0);
        for p in POINTS {
            assert!(!fires(&None, p, &hits));
        }
    }
}
