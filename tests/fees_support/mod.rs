//! A scripted book of fills with fees in the base asset, the quote asset and BNB (one BNB fee
//! priced at its fill time, one with no price then), journaled through `Core` as the console
//! journals them. Shared by the fee-accounting and export tests, which check the same numbers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use crbot::domain::{
    Asset, ClientOrderId, Fill, Filters, LocalOrderState, LotSize, Mode, Notional, Order, OrderPurpose,
    OrderStatus, OrderType, Price, PriceFilter, Qty, Quote, Side, Symbol, SymbolRules, SymbolStatus,
};
use crbot::engine::core::Core;
use crbot::journal::{Journal, Location, TicketSource};
use crbot::risk::Limits;

/// 2026-03-02 00:00:00 UTC.
pub const T0: i64 = 1_772_409_600_000;
pub const DAY_MS: i64 = 86_400_000;

pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

pub fn asset(s: &str) -> Asset {
    Asset::new(s).unwrap()
}

pub fn rules(symbol: &str, base: &str, quote: &str) -> SymbolRules {
    SymbolRules {
        symbol: sym(symbol),
        status: SymbolStatus::Trading,
        base_asset: asset(base),
        quote_asset: asset(quote),
        order_types: vec![OrderType::Market, OrderType::Limit],
        oco_allowed: true,
        filters: Filters {
            price: Some(PriceFilter {
                min_price: d("0.01"),
                max_price: d("1000000"),
                tick_size: d("0.01"),
            }),
            lot_size: Some(LotSize {
                min_qty: d("0.0001"),
                max_qty: d("1000"),
                step_size: d("0.0001"),
            }),
            ..Filters::default()
        },
    }
}

pub fn order(
    cid: &str,
    order_id: u64,
    list: Option<i64>,
    side: Side,
    purpose: OrderPurpose,
    at: i64,
) -> Order {
    Order {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        order_id: Some(order_id),
        order_list_id: list,
        symbol: sym("BTCUSDT"),
        side,
        order_type: OrderType::Limit,
        price: Some("100".parse().unwrap()),
        stop_price: None,
        qty: "1".parse().unwrap(),
        executed_qty: Qty::ZERO,
        cumulative_quote_qty: Notional::ZERO,
        state: LocalOrderState::Exchange(OrderStatus::Filled),
        purpose,
        created_ms: at,
        updated_ms: at,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn fill(
    trade_id: u64,
    order_id: u64,
    cid: &str,
    side: Side,
    qty: &str,
    price: &str,
    fee: &str,
    fee_asset: &str,
    at: i64,
) -> Fill {
    Fill {
        symbol: sym("BTCUSDT"),
        trade_id,
        order_id,
        client_order_id: Some(ClientOrderId::new(cid).unwrap()),
        side,
        price: price.parse().unwrap(),
        qty: qty.parse().unwrap(),
        commission: fee.parse().unwrap(),
        commission_asset: asset(fee_asset),
        time_ms: at,
        is_maker: false,
    }
}

pub fn bnb_quote(core: &mut Core, mid: &str, at: i64) {
    let p: Price = mid.parse().unwrap();
    core.state.on_quote(
        sym("BNBUSDT"),
        Quote {
            bid: p,
            ask: p,
            time_ms: at,
        },
    );
}

/// Where a journal is: an SQLite file, or a [`Location`] on either store.
pub trait JournalAt {
    fn open_journal(&self) -> Journal;
}

impl JournalAt for Path {
    fn open_journal(&self) -> Journal {
        Journal::open(self, Mode::Sim).unwrap()
    }
}

impl JournalAt for PathBuf {
    fn open_journal(&self) -> Journal {
        self.as_path().open_journal()
    }
}

impl JournalAt for Location {
    fn open_journal(&self) -> Journal {
        Journal::open_at(self, Mode::Sim).unwrap()
    }
}

/// A core on the journal at `path`, restored as at start-up, with BTCUSDT's rules known.
pub fn core_at(path: &(impl JournalAt + ?Sized), now: i64) -> Core {
    let journal = path.open_journal();
    let mut core = Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Tui, now).unwrap();
    core.state
        .rules
        .insert(sym("BTCUSDT"), rules("BTCUSDT", "BTC", "USDT"));
    core.replay_fills();
    core
}

/// The script (all on BTCUSDT, crbot's own orders):
///
/// | # | day | side | qty   | price | fee            | fee value      | qty after | cost after | realized |
/// |---|-----|------|-------|-------|----------------|----------------|-----------|------------|----------|
/// | 1 | 1   | BUY  | 1     | 100   | 0.1 USDT       | 0.1            | 1         | 100.1      | 0        |
/// | 2 | 1   | BUY  | 1.001 | 110   | 0.001 BTC      | 0.11 (at 110)  | 2         | 210.21     | 0        |
/// | 3 | 1   | SELL | 1     | 120   | 0.0002 BNB     | 0.12 (BNB 600) | 1         | 105.105    | 14.775   |
/// | 4 | 2   | SELL | 1     | 90    | 0.0003 BNB     | unpriced       | 0         | 0          | -15.105  |
///
/// Fill 3's BNB price comes from a quote at its fill time; fill 4 arrives a day later while
/// the only BNB quote is that old one, so its fee has no price at fill time.
pub fn script(path: &(impl JournalAt + ?Sized)) -> Core {
    let mut core = {
        let journal = path.open_journal();
        journal
            .insert_order(&order("cr-entry-1", 11, None, Side::Buy, OrderPurpose::Entry, T0))
            .unwrap();
        journal
            .insert_order(&order(
                "cr-entry-2",
                12,
                None,
                Side::Buy,
                OrderPurpose::Entry,
                T0 + 1_000,
            ))
            .unwrap();
        journal
            .insert_order(&order(
                "cr-tp-1",
                13,
                Some(7),
                Side::Sell,
                OrderPurpose::TakeProfit,
                T0 + 2_000,
            ))
            .unwrap();
        journal
            .insert_order(&order(
                "cr-flat-1",
                14,
                None,
                Side::Sell,
                OrderPurpose::Flatten,
                T0 + DAY_MS,
            ))
            .unwrap();
        drop(journal);
        core_at(path, T0)
    };
    let fills = [
        fill(1, 11, "cr-entry-1", Side::Buy, "1", "100", "0.1", "USDT", T0),
        fill(
            2,
            12,
            "cr-entry-2",
            Side::Buy,
            "1.001",
            "110",
            "0.001",
            "BTC",
            T0 + 1_000,
        ),
        fill(
            3,
            13,
            "cr-tp-1",
            Side::Sell,
            "1",
            "120",
            "0.0002",
            "BNB",
            T0 + 2_000,
        ),
        fill(
            4,
            14,
            "cr-flat-1",
            Side::Sell,
            "1",
            "90",
            "0.0003",
            "BNB",
            T0 + DAY_MS,
        ),
    ];
    bnb_quote(&mut core, "600", T0 + 2_000);
    for f in &fills {
        assert!(core.on_fill(f, f.time_ms), "fill {} is new", f.trade_id);
    }
    core
}
