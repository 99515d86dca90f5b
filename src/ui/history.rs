//! The history panel's rows: the journal's fills and orders (as the engine published them)
//! merged into one timeline, newest first.
//!
//! Owns: the order of the rows and what each says, shared by the view (which draws them) and
//! `update` (which selects and filters them by symbol). Must not: read a clock or change state.

use rust_decimal::Decimal;

use crate::domain::{Fill, Order, Symbol};
use crate::engine::snapshot::Snapshot;

/// One row of the history: a fill (with what its sell realized) or an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRow<'a> {
    Fill {
        fill: &'a Fill,
        realized: Option<Decimal>,
    },
    Order(&'a Order),
}

impl<'a> HistoryRow<'a> {
    pub fn time_ms(&self) -> i64 {
        match self {
            HistoryRow::Fill { fill, .. } => fill.time_ms,
            HistoryRow::Order(o) => o.created_ms,
        }
    }

    pub fn symbol(&self) -> &'a Symbol {
        match self {
            HistoryRow::Fill { fill, .. } => &fill.symbol,
            HistoryRow::Order(o) => &o.symbol,
        }
    }
}

/// Every fill and order of the snapshot's history, newest first (a fill before its order when
/// they share a time: it happened after the order was created).
pub fn history_rows(snap: &Snapshot) -> Vec<HistoryRow<'_>> {
    let mut rows: Vec<HistoryRow> = snap
        .history
        .fills
        .iter()
        .map(|f| HistoryRow::Fill {
            fill: &f.fill,
            realized: f.realized,
        })
        .chain(snap.history.orders.iter().map(HistoryRow::Order))
        .collect();
    rows.sort_by_key(|r| (std::cmp::Reverse(r.time_ms()), matches!(r, HistoryRow::Order(_))));
    rows
}
