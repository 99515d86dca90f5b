//! The history panel's rows: the journal's fills and orders (as the engine published them)
//! merged into one timeline, newest first, and [`HistoryTable`], the same rows sorted,
//! filtered and formatted once and kept until what they are made of changes.
//!
//! Owns: the order of the rows and what each says, shared by the view (which draws them) and
//! `update` (which selects and filters them by symbol). Must not: read a clock or change
//! trading state; the table is a memo of the snapshot (the same snapshot and filter always
//! give the same rows), never a source of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::domain::{Fill, Order, Symbol, display_price, plain};
use crate::engine::snapshot::{HistoryFill, Snapshot};
use crate::ui::format::{purpose_label, signed2};

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

/// The history table's columns: When, Symbol, What, Side, Qty, Price, Detail, Realized.
pub const COLUMNS: usize = 8;

/// How a cell is drawn; the view takes the colour from the theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Dim,
    Positive,
    /// A P&L: red below zero, plain at zero, green above.
    Signed {
        negative: bool,
        zero: bool,
    },
}

/// One row, formatted: its symbol (for the filter) and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub symbol: Symbol,
    pub cells: [(String, Tone); COLUMNS],
}

/// What the lines were made from. The journal's lists are shared by every snapshot until the
/// next read (an `Arc`), so most frames compare two pointers; an attached screen's snapshot
/// brings lists of its own, compared by value, which costs far less than formatting them.
#[derive(Debug, Clone)]
struct Source {
    fills: Arc<Vec<HistoryFill>>,
    orders: Arc<Vec<Order>>,
    /// The UTC day of the snapshot: a row of it shows its time, an earlier one its date.
    day: Option<chrono::NaiveDate>,
    /// The symbols' ticks, at which prices are shown.
    ticks: BTreeMap<Symbol, Decimal>,
}

impl Source {
    fn of(snap: &Snapshot) -> Source {
        Source {
            fills: snap.history.fills.clone(),
            orders: snap.history.orders.clone(),
            day: day_of(snap.now_ms),
            ticks: snap.price_ticks.clone(),
        }
    }

    /// Whether `snap` gives the same lines; when its lists are equal copies, they are taken
    /// so that the next frame compares pointers again.
    fn matches(&mut self, snap: &Snapshot) -> bool {
        let h = &snap.history;
        let same = (Arc::ptr_eq(&self.fills, &h.fills) || self.fills == h.fills)
            && (Arc::ptr_eq(&self.orders, &h.orders) || self.orders == h.orders)
            && self.day == day_of(snap.now_ms)
            && self.ticks == snap.price_ticks;
        if same {
            self.fills = h.fills.clone();
            self.orders = h.orders.clone();
        }
        same
    }
}

fn day_of(ms: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// The history's rows sorted (newest first), formatted and filtered, with each column's
/// widest cell among the rows shown. Rebuilt only when the journal's lists, the day or a tick
/// change; filtered again only when the filter changes. A frame then draws the few rows on
/// screen, whatever the length of the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryTable {
    source: Option<Source>,
    filter: String,
    lines: Vec<HistoryLine>,
    shown: Vec<usize>,
    widths: [usize; COLUMNS],
}

impl HistoryTable {
    /// Brings the table up to date with `snap` and the `/` filter (upper case; empty: every
    /// row).
    pub fn refresh(&mut self, snap: &Snapshot, filter: &str) {
        let current = self.source.as_mut().is_some_and(|s| s.matches(snap));
        if !current {
            let now_day = day_of(snap.now_ms);
            self.lines = history_rows(snap)
                .iter()
                .map(|row| line(snap, now_day, row))
                .collect();
            self.source = Some(Source::of(snap));
        } else if self.filter == filter {
            return;
        }
        self.filter = filter.to_string();
        self.shown = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| filter.is_empty() || l.symbol.as_str().contains(filter))
            .map(|(i, _)| i)
            .collect();
        let mut widths = [0; COLUMNS];
        for i in &self.shown {
            for (w, (text, _)) in widths.iter_mut().zip(&self.lines[*i].cells) {
                *w = (*w).max(text.chars().count());
            }
        }
        self.widths = widths;
    }

    /// Every row, newest first.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The rows the filter lets through (indices into every row, in order).
    pub fn shown(&self) -> &[usize] {
        &self.shown
    }

    /// Where row `i` is among the rows shown, if it is.
    pub fn shown_position(&self, i: usize) -> Option<usize> {
        self.shown.binary_search(&i).ok()
    }

    pub fn line(&self, i: usize) -> Option<&HistoryLine> {
        self.lines.get(i)
    }

    /// Each column's widest cell (in characters) among the rows shown.
    pub fn widths(&self) -> &[usize; COLUMNS] {
        &self.widths
    }
}

/// `HH:MM:SS` for a time of the snapshot's UTC day, `MM-DD HH:MM` for an earlier one.
fn when(ms: i64, today: Option<chrono::NaiveDate>) -> String {
    let (Some(t), Some(today)) = (chrono::DateTime::from_timestamp_millis(ms), today) else {
        return "-".into();
    };
    if t.date_naive() == today {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// One row's cells: a fill with its fee and what it realized, or an order with its type,
/// state and purpose.
fn line(snap: &Snapshot, today: Option<chrono::NaiveDate>, row: &HistoryRow) -> HistoryLine {
    let tick = snap.tick(row.symbol());
    let p = Tone::Plain;
    let cells = match row {
        HistoryRow::Fill { fill, realized } => {
            let (pnl, pnl_tone) = match realized {
                Some(d) => (
                    signed2(*d),
                    Tone::Signed {
                        negative: d.is_sign_negative(),
                        zero: d.is_zero(),
                    },
                ),
                None => (String::new(), p),
            };
            [
                (when(fill.time_ms, today), Tone::Dim),
                (fill.symbol.to_string(), p),
                ("fill".into(), Tone::Positive),
                (fill.side.to_string(), p),
                (plain(fill.qty.value()), p),
                (display_price(fill.price.value(), tick), p),
                (
                    format!("fee {} {}", plain(fill.commission.value()), fill.commission_asset),
                    Tone::Dim,
                ),
                (pnl, pnl_tone),
            ]
        }
        HistoryRow::Order(o) => {
            let price = o
                .price
                .map_or_else(|| "-".into(), |v| display_price(v.value(), tick));
            [
                (when(o.created_ms, today), Tone::Dim),
                (o.symbol.to_string(), p),
                ("order".into(), p),
                (o.side.to_string(), p),
                (plain(o.qty.value()), p),
                (price, p),
                (
                    format!(
                        "{} {} {}",
                        o.order_type,
                        o.state.as_code(),
                        purpose_label(o.purpose)
                    ),
                    Tone::Dim,
                ),
                (String::new(), p),
            ]
        }
    };
    HistoryLine {
        symbol: row.symbol().clone(),
        cells,
    }
}
