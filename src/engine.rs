//! The engine: the one owner of mutable state.
//!
//! It receives commands (from the screen or the command line) and events (market data, user
//! data, answers of I/O tasks), passes every ticket through the risk gate, journals before it
//! acts, calls the exchange client, and publishes snapshots for the screen.
//!
//! - `state`: everything the console knows, and its snapshot; pure.
//! - `core`: the journal-first money path shared by the console and the command line.
//! - `ticket`: what the trader typed → a domain ticket.
//! - `kill`: the kill switch, one sequence for the console and `crbot kill`.
//! - `lock`: the account's engine lock (one engine per account) and its socket's path.
//! - `backup`: the journal's backups (on command, after a kill, scheduled), off the loop.
//! - `session`: mode → endpoints, keys and (sim, paper) the local exchange.
//! - `machine`: the console's engine as a state machine, `update(input, now) -> effects`.
//! - `oneshot`: a command's engine, which carries one order's workflow to its end.
//! - `runtime`: the executor that runs the machine's effects (`crate::console` starts it).
//! - `snapshot`: the data contract with the screen.
//!
//! Must not: draw, read keys, know the command line, or let anything reach the exchange that did
//! not pass `risk`.

pub mod backup;
pub mod core;
pub mod kill;
pub mod lock;
pub mod machine;
pub mod oneshot;
pub mod reports;
pub mod runtime;
pub mod session;
pub mod snapshot;
pub mod state;
pub mod ticket;

use crate::config::Config;
use crate::risk::Limits;

/// The risk limits of a configuration (the console and the commands both start from them).
pub fn limits_from(config: &Config) -> Limits {
    let l = &config.limits;
    Limits {
        max_daily_loss_pct: l.max_daily_loss_percent,
        max_drawdown_pct: l.max_drawdown_percent,
        max_trades_per_day: l.max_trades_per_day,
        max_position_size_pct: l.max_position_size_percent,
        min_risk_reward: l.min_risk_reward,
        fat_finger_pct: l.fat_finger_percent,
        ..Limits::default()
    }
}
