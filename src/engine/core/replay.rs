//! The start-up replay of the journal's fills into the positions, page by page.
//!
//! Owns: which symbols' fills are booked already and which wait for their rules, and where a replay
//! under way has read to. Must not: hold more than one page of fills at a time — the journal
//! grows by every fill ever made, and a restore that read it whole took memory in proportion
//! (the start-up's memory peak); nor book a fill twice, nor one journaled after the restore
//! (those were booked as they came).
//!
//! Which journaled fills are crbot's own is the journal's to say ([`PricedFill::own_order`]:
//! the fill's order among all the orders it holds), not the restored orders': a restore keeps
//! only the newest finished orders in memory, and the fills of older ones are crbot's too.
//!
//! Positions need each symbol's rules (base and quote assets), which arrive from the exchange
//! after the restore. So a pass books the fills of the symbols whose rules are known, in time
//! order, and notes the symbols still waiting; a later call (new rules) makes another pass for
//! those only. A pass that fails to read the journal stops where it is and resumes from there
//! at the next call, so a fill is never booked twice.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::domain::{Qty, Symbol};
use crate::engine::snapshot::{LogKind, LogLevel};
use crate::engine::state::EngineState;
use crate::journal::{FillKey, Journal, JournalError, PricedFill};

/// Fills read from the journal at once by a replay.
pub const REPLAY_PAGE: usize = 1_000;

/// The journal's fills still to book into the positions.
#[derive(Debug)]
pub(super) struct Replay {
    /// The newest fill journaled at the restore (its row id): later ones were booked live.
    upto: i64,
    /// Symbols whose fills a finished pass booked.
    booked: BTreeSet<Symbol>,
    /// Symbols with own fills not booked for want of rules; `None` before the first pass ends.
    waiting: Option<BTreeSet<Symbol>>,
    /// The pass under way (one whose read failed stays here and resumes).
    pass: Option<Pass>,
}

#[derive(Debug)]
struct Pass {
    /// The symbols it books: those with rules when it started, not booked before.
    symbols: BTreeSet<Symbol>,
    /// The last fill it read.
    after: Option<FillKey>,
    /// Own fills' symbols it met without rules.
    waiting: BTreeSet<Symbol>,
}

/// What a replay step left to do.
pub(super) enum Left {
    /// Every own fill journaled before the restore is booked: the replay is over.
    Nothing,
    /// Some symbols' fills wait for their rules (or a read failed): keep the replay.
    More,
}

impl Replay {
    /// The replay of the fills journaled up to row `upto` (the newest at the restore).
    pub(super) fn new(upto: i64) -> Replay {
        Replay {
            upto,
            booked: BTreeSet::new(),
            waiting: None,
            pass: None,
        }
    }

    /// Books, page by page (`page` fills at a time), the own fills of the symbols whose rules
    /// `state` now knows and that no pass booked yet. A read that fails is returned; the pass
    /// resumes after the last fill it read at the next call.
    pub(super) fn run(
        &mut self,
        journal: &Journal,
        state: &mut EngineState,
        page: usize,
    ) -> Result<Left, JournalError> {
        let pass = match self.pass.take() {
            Some(pass) => pass,
            None => {
                let symbols: BTreeSet<Symbol> = state
                    .rules
                    .keys()
                    .filter(|s| !self.booked.contains(*s))
                    .cloned()
                    .collect();
                if let Some(waiting) = &self.waiting
                    && !waiting.iter().any(|s| symbols.contains(s))
                {
                    return Ok(Left::More);
                }
                Pass {
                    symbols,
                    after: None,
                    waiting: BTreeSet::new(),
                }
            }
        };
        let pass = self.pass.insert(pass);
        loop {
            let fills = journal.fills_priced_page(self.upto, pass.after, page.max(1))?;
            let last_page = fills.len() < page.max(1);
            for PricedFill {
                mut fill,
                fee_price,
                key,
                own_order,
            } in fills
            {
                pass.after = Some(key);
                // A fill journaled without its client order id (as `myTrades` reports it) is
                // crbot's when its exchange order id is one of crbot's orders.
                let Some(own) = own_order else { continue };
                fill.client_order_id.get_or_insert(own);
                if self.booked.contains(&fill.symbol) {
                    continue;
                }
                if !pass.symbols.contains(&fill.symbol) {
                    pass.waiting.insert(fill.symbol.clone());
                    continue;
                }
                if let Err(e) = state.apply_own_fill_priced(&fill, fee_price) {
                    let text = format!(
                        "journaled fill {} on {} not booked: {e}",
                        fill.trade_id, fill.symbol
                    );
                    state.log(fill.time_ms, LogLevel::Error, LogKind::Fill, text);
                }
            }
            if last_page {
                break;
            }
        }
        let Some(pass) = self.pass.take() else {
            return Ok(Left::More);
        };
        self.booked.extend(pass.symbols);
        let left = if pass.waiting.is_empty() {
            Left::Nothing
        } else {
            Left::More
        };
        self.waiting = Some(pass.waiting);
        Ok(left)
    }

    /// Where a failed pass stopped (the time of the last fill it read), for its log line.
    pub(super) fn stopped_at_ms(&self) -> i64 {
        self.pass.as_ref().and_then(|p| p.after).map_or(0, |k| k.time_ms)
    }
}

/// The quantity journaled per exchange order, for the orders `state` holds (the only ones
/// ever read: `Core::journaled_qty` is asked about the state's orders, and the map is pruned
/// to them as it grows), read page by page.
/// Fills up to row `upto` are read.
pub(super) fn journaled_quantities(
    journal: &Journal,
    state: &EngineState,
    upto: i64,
    page: usize,
) -> Result<HashMap<(Symbol, u64), Qty>, JournalError> {
    let mut totals = HashMap::new();
    let known: HashSet<(&Symbol, u64)> = state
        .orders
        .values()
        .filter_map(|o| Some((&o.symbol, o.order_id?)))
        .collect();
    let mut after = None;
    loop {
        let fills = journal.fills_priced_page(upto, after, page.max(1))?;
        let last_page = fills.len() < page.max(1);
        for PricedFill { fill, key, .. } in fills {
            after = Some(key);
            if known.contains(&(&fill.symbol, fill.order_id)) {
                super::add_journaled(&mut totals, &fill);
            }
        }
        if last_page {
            return Ok(totals);
        }
    }
}
