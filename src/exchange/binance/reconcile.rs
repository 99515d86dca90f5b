//! Order reconciliation.
//!
//! Owns: resolving an order whose outcome is unknown by querying `origClientOrderId` with
//! backoff, the REST resync after a user-stream (re)connect or at start-up, fill
//! deduplication by `(symbol, trade id, order id)` (a self-trade is one trade id, two fills), and the rule that turns an entry's fills into the
//! protective OCO. The queries go through [`Broker`], in domain values. Must not: send an order again, write the journal, or decide what to do
//! with external orders (the engine does; this only reports them).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::backoff::{Backoff, Jitter, ThreadJitter};
use crate::domain::broker::{Account, BrokerError, CODE_NO_SUCH_ORDER, OcoRequest, OrderReport};
use crate::domain::{ClientOrderId, Fill, OrderStatus, OrderType, Price, Qty, Side, Symbol, SymbolRules};
use crate::risk::Broker;

/// Fills already seen, keyed by `(symbol, trade id, order id)`; also the highest trade id per symbol
/// (where the next `myTrades` resync starts).
#[derive(Debug, Clone, Default)]
pub struct FillDedup {
    seen: HashSet<(Symbol, u64, u64)>,
    last_trade_id: HashMap<Symbol, u64>,
}

impl FillDedup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a fill; `true` if it is new (apply it), `false` if it was seen before.
    pub fn insert(&mut self, fill: &Fill) -> bool {
        let last = self
            .last_trade_id
            .entry(fill.symbol.clone())
            .or_insert(fill.trade_id);
        *last = (*last).max(fill.trade_id);
        self.seen
            .insert((fill.symbol.clone(), fill.trade_id, fill.order_id))
    }

    /// Seeds from the journal at start-up: `(trade id, order id)` of each fill of `symbol`.
    pub fn seed(&mut self, symbol: &Symbol, fills: impl IntoIterator<Item = (u64, u64)>) {
        for (id, order_id) in fills {
            self.seen.insert((symbol.clone(), id, order_id));
            let last = self.last_trade_id.entry(symbol.clone()).or_insert(id);
            *last = (*last).max(id);
        }
    }

    /// Keeps only the new fills of a batch, in order.
    pub fn filter_new(&mut self, fills: Vec<Fill>) -> Vec<Fill> {
        fills.into_iter().filter(|f| self.insert(f)).collect()
    }

    pub fn last_trade_id(&self, symbol: &Symbol) -> Option<u64> {
        self.last_trade_id.get(symbol).copied()
    }

    pub fn last_trade_ids(&self) -> HashMap<Symbol, u64> {
        self.last_trade_id.clone()
    }
}

/// How long `resolve_unknown` keeps trying.
#[derive(Debug, Clone)]
pub struct ResolveConfig {
    /// Total queries before giving up (outcome stays unknown).
    pub max_queries: u32,
    /// `-2013` answers in a row needed to conclude "never reached the engine": the query reads
    /// Memory→Database and can lag the matching engine.
    pub not_found_confirmations: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        Self {
            max_queries: 8,
            not_found_confirmations: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
        }
    }
}

/// The result of resolving an unknown order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The exchange has it: adopt its id and status.
    Found(OrderReport),
    /// Confirmed absent (several `-2013` in a row). Only now may the user send a new order,
    /// preferably under a fresh client id.
    NotFound,
    /// Still unknown (5xx, timeouts, rate limits): keep the order UNKNOWN and try again later.
    StillUnknown { reason: String },
}

/// Queries `GET /api/v3/order?origClientOrderId=…` with backoff until the order is found,
/// confirmed absent, or the attempts run out. Never sends the order.
pub async fn resolve_unknown<B: Broker>(
    broker: &B,
    symbol: &Symbol,
    client_order_id: &str,
    config: &ResolveConfig,
) -> Resolution {
    resolve_unknown_with(broker, symbol, client_order_id, config, &mut ThreadJitter).await
}

pub async fn resolve_unknown_with<B: Broker>(
    broker: &B,
    symbol: &Symbol,
    client_order_id: &str,
    config: &ResolveConfig,
    jitter: &mut impl Jitter,
) -> Resolution {
    let mut backoff = Backoff::new(config.backoff_base, config.backoff_max);
    let mut not_found_in_a_row = 0;
    let mut last_reason = String::from("no answer yet");
    for attempt in 1..=config.max_queries {
        match broker.query_order(symbol, client_order_id).await {
            Ok(order) => return Resolution::Found(order),
            Err(BrokerError::Api { code, .. }) if code == CODE_NO_SUCH_ORDER => {
                not_found_in_a_row += 1;
                last_reason = "order not found (-2013)".into();
                if not_found_in_a_row >= config.not_found_confirmations {
                    return Resolution::NotFound;
                }
            }
            Err(BrokerError::Banned { until_ms }) => {
                return Resolution::StillUnknown {
                    reason: format!("IP banned until {until_ms}"),
                };
            }
            Err(e) => {
                not_found_in_a_row = 0;
                last_reason = e.to_string();
            }
        }
        if attempt < config.max_queries {
            tokio::time::sleep(backoff.next_delay(jitter)).await;
        }
    }
    Resolution::StillUnknown { reason: last_reason }
}

/// Everything a resync fetched by REST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncReport {
    pub open_orders: Vec<OrderReport>,
    pub account: Account,
    /// Each locally unfinished order: what the exchange says now.
    pub orders: Vec<(String, Resolution)>,
    /// Fills after the last known trade id per symbol, oldest first (not yet deduplicated).
    pub fills: Vec<Fill>,
}

/// What to resync.
#[derive(Debug, Clone, Default)]
pub struct ResyncRequest {
    /// Symbols to read open orders and trades for (the watchlist plus symbols with orders).
    pub symbols: Vec<Symbol>,
    /// Orders crbot believes unfinished: `(symbol, client order id)`.
    pub unfinished: Vec<(Symbol, String)>,
    /// Last known trade id per symbol; a symbol without one reads its recent trades.
    pub last_trade_ids: HashMap<Symbol, u64>,
    /// Quantity already journaled per crbot order, keyed by `(symbol, exchange order id)`:
    /// an order the exchange reports with more executed than this (and than the report's own
    /// fills) has fills the trade-id cursor cannot reach, and they are read by order id.
    pub journaled_qty: HashMap<(Symbol, u64), Qty>,
    /// crbot orders whose executed quantity, as crbot last heard it, exceeds their journaled
    /// fills, `(symbol, exchange order id)`: their fills are read by order id.
    pub fill_gaps: Vec<(Symbol, u64)>,
}

/// Resync by REST after a user-stream (re)connect or at start-up: open orders, account, each
/// unfinished order, `myTrades` since the last known trade id (paged), and `myTrades` by order
/// id for every crbot order whose executed quantity its fills do not cover. Events missed while
/// the stream was down are not replayed by the exchange; this is how they are recovered.
///
/// The trade-id cursor alone is not enough: fills are not learned in trade-id order (an
/// order's answer carries its fills at once, while an older fill of a resting order missed
/// while the stream was down is still unknown), so the journal's highest trade id can sit past
/// a fill crbot never saw. Reading by order id closes that gap; journaling is idempotent on
/// the trade id, so reading a fill twice is harmless.
pub async fn resync<B: Broker>(broker: &B, req: &ResyncRequest) -> Result<ResyncReport, BrokerError> {
    let mut open_orders = Vec::new();
    if req.symbols.is_empty() {
        open_orders = broker.open_orders(None).await?;
    } else {
        for s in &req.symbols {
            open_orders.extend(broker.open_orders(Some(s)).await?);
        }
    }
    let account = broker.account().await?;
    let mut orders = Vec::with_capacity(req.unfinished.len());
    // Same rule as for an unknown order: one `-2013` is not proof (the query can lag the
    // matching engine), so absent orders are re-queried before being reported NotFound.
    let confirm = ResolveConfig {
        max_queries: 4,
        not_found_confirmations: 3,
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(2),
    };
    for (symbol, cid) in &req.unfinished {
        let r = resolve_unknown(broker, symbol, cid, &confirm).await;
        orders.push((cid.clone(), r));
    }
    let mut trade_symbols: Vec<Symbol> = req.symbols.clone();
    for (s, _) in &req.unfinished {
        if !trade_symbols.contains(s) {
            trade_symbols.push(s.clone());
        }
    }
    let mut fills = Vec::new();
    for s in &trade_symbols {
        let mut from = req.last_trade_ids.get(s).map(|id| id + 1);
        loop {
            let page = broker.my_trades(s, from).await?;
            let n = page.len();
            let max_id = page.iter().map(|f| f.trade_id).max();
            fills.extend(page);
            // A full page means there may be more; without a starting id the exchange gave the
            // most recent trades, which is all a first sync needs.
            match (n, max_id, from) {
                (1000, Some(m), Some(_)) => from = Some(m + 1),
                _ => break,
            }
        }
    }
    let mut gaps: Vec<(Symbol, u64)> = req.fill_gaps.clone();
    for (_, res) in &orders {
        if let Resolution::Found(o) = res
            && fills_fall_short(o, req.journaled_qty.get(&(o.symbol.clone(), o.order_id)), &fills)
            && !gaps.contains(&(o.symbol.clone(), o.order_id))
        {
            gaps.push((o.symbol.clone(), o.order_id));
        }
    }
    for (symbol, order_id) in &gaps {
        for f in fills_of_order(broker, symbol, *order_id).await? {
            if !fills
                .iter()
                .any(|g| g.symbol == f.symbol && g.trade_id == f.trade_id)
            {
                fills.push(f);
            }
        }
    }
    Ok(ResyncReport {
        open_orders,
        account,
        orders,
        fills,
    })
}

/// True when `order` has executed more than its journaled fills plus the fills in `fetched`
/// account for: some of its fills are still unknown to crbot.
fn fills_fall_short(order: &OrderReport, journaled: Option<&Qty>, fetched: &[Fill]) -> bool {
    if order.executed_qty.is_zero() {
        return false;
    }
    let known = fetched
        .iter()
        .filter(|f| f.symbol == order.symbol && f.order_id == order.order_id)
        .fold(journaled.copied().unwrap_or(Qty::ZERO), |acc, f| {
            acc.checked_add(f.qty).unwrap_or(acc)
        });
    known < order.executed_qty
}

/// Every fill of one order, by `myTrades?orderId=` (paged by trade id), oldest first.
pub async fn fills_of_order<B: Broker>(
    broker: &B,
    symbol: &Symbol,
    order_id: u64,
) -> Result<Vec<Fill>, BrokerError> {
    let mut fills: Vec<Fill> = Vec::new();
    let mut from = None;
    loop {
        let page = broker.my_trades_of_order(symbol, order_id, from).await?;
        let n = page.len();
        let max_id = page.iter().map(|f| f.trade_id).max();
        fills.extend(page);
        match (n, max_id) {
            (1000, Some(m)) => from = Some(m + 1),
            _ => break,
        }
    }
    Ok(fills)
}

/// The entry order's state, as far as the protective OCO is concerned.
#[derive(Debug, Clone)]
pub struct EntryFills<'a> {
    pub symbol: &'a Symbol,
    pub side: Side,
    pub status: OrderStatus,
    /// Every fill of the entry (deduplicated).
    pub fills: &'a [Fill],
    /// crbot's whole position on the symbol after these fills, less what crbot's own open
    /// sells already hold (`EngineState::unheld_position`): what the OCO is sized from.
    pub position: Qty,
}

/// What to do about protection for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcoPlan {
    /// Send this OCO.
    Place(OcoRequest),
    /// The entry is still working: wait for it to finish (or cancel its remainder).
    Wait,
    /// Nothing was filled: nothing to protect.
    NothingFilled,
    /// The filled quantity is too small to place (LOT_SIZE or notional). Report it to the user
    /// (a dust position without exchange-side protection); do not send.
    TooSmall { qty: Qty, reason: String },
    /// The parameters cannot make a valid SELL OCO.
    Invalid { reason: String },
}

/// The protective OCO rule, written down:
///
/// 1. Only BUY entries get one (spot longs); it is a SELL OCO, take-profit above, stop below.
/// 2. It is placed once, when the entry is terminal (FILLED, or CANCELED/EXPIRED/REJECTED with
///    some quantity executed), for the cumulative filled quantity. While the entry is NEW or
///    PARTIALLY_FILLED the answer is [`OcoPlan::Wait`]: an OCO for part of a working entry
///    would have to be replaced as more fills arrive. To protect a partial fill now, cancel
///    the entry's remainder; its CANCELED status then triggers this rule.
/// 3. Quantity = crbot's whole position on the symbol, not just this entry's fills, less what
///    its own open sells already hold ([`EntryFills::position`]), rounded **down** to
///    LOT_SIZE's step. A leftover from an earlier round is covered with the new entry, so
///    rounding never strands a sellable remainder; the commission paid in the base asset is
///    already out of the position; and nothing beyond crbot's position (the user's own coins)
///    is ever covered.
/// 4. Prices are rounded to the tick on the sell side (up), so the stop never sits lower than
///    asked.
/// 5. If the quantity is below LOT_SIZE's minimum, or its notional at the **stop** price (the
///    smaller leg) is below the NOTIONAL minimum, nothing is sent: [`OcoPlan::TooSmall`].
pub fn protective_oco(
    entry: &EntryFills<'_>,
    rules: &SymbolRules,
    stop_loss: Price,
    take_profit: Price,
    ids: [ClientOrderId; 3],
) -> OcoPlan {
    if entry.side != Side::Buy {
        return OcoPlan::Invalid {
            reason: "only a BUY entry gets a protective SELL OCO".into(),
        };
    }
    if !entry.status.is_terminal() {
        return OcoPlan::Wait;
    }
    let filled = entry
        .fills
        .iter()
        .filter(|f| &f.symbol == entry.symbol)
        .fold(Qty::ZERO, |acc, f| acc.checked_add(f.qty).unwrap_or(acc));
    if filled.is_zero() {
        return OcoPlan::NothingFilled;
    }
    let held = entry.position;
    let qty = rules.round_qty(OrderType::Limit, held);
    let tp = rules.round_price(Side::Sell, take_profit);
    let sl = rules.round_price(Side::Sell, stop_loss);
    if tp <= sl {
        return OcoPlan::Invalid {
            reason: format!("take-profit {tp} must be above stop-loss {sl}"),
        };
    }
    if let Some(lot) = rules.lot_for(OrderType::Limit)
        && (qty.is_zero() || qty.value() < lot.min_qty)
    {
        return OcoPlan::TooSmall {
            qty,
            reason: format!(
                "position {held} rounds to {qty}, below LOT_SIZE minimum {}",
                lot.min_qty.normalize()
            ),
        };
    }
    if qty.is_zero() {
        return OcoPlan::TooSmall {
            qty,
            reason: "nothing of the position is left unheld".into(),
        };
    }
    if let (Some(nf), Some(n)) = (&rules.filters.notional, sl.notional(qty))
        && n.value() < nf.min_notional
    {
        return OcoPlan::TooSmall {
            qty,
            reason: format!(
                "notional {n} at the stop price is below the minimum {}",
                nf.min_notional.normalize()
            ),
        };
    }
    let [list, tp_id, sl_id] = ids;
    OcoPlan::Place(OcoRequest {
        symbol: entry.symbol.clone(),
        qty,
        take_profit: tp,
        stop_loss: sl,
        stop_limit: None,
        list_client_order_id: list,
        take_profit_client_order_id: tp_id,
        stop_loss_client_order_id: sl_id,
    })
}

/// The key must not be able to withdraw; crbot refuses to trade with
/// one that can, and says so.
pub fn check_key_permissions(r: &super::wire::ApiRestrictions) -> Result<(), String> {
    if r.enable_withdrawals {
        return Err("this API key can withdraw funds: disable withdrawals for it on Binance".into());
    }
    if !r.enable_spot_and_margin_trading {
        return Err("this API key cannot trade spot: enable spot trading for it on Binance".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Asset, Filters, LotSize, NotionalFilter, PriceFilter, SymbolStatus};
    use rust_decimal::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn sym() -> Symbol {
        Symbol::new("BTCUSDT").expect("ok")
    }

    fn q(s: &str) -> Qty {
        s.parse().expect("quantity")
    }

    fn rules() -> SymbolRules {
        SymbolRules {
            symbol: sym(),
            status: SymbolStatus::Trading,
            base_asset: Asset::new("BTC").expect("ok"),
            quote_asset: Asset::usdt(),
            order_types: vec![],
            oco_allowed: true,
            filters: Filters {
                price: Some(PriceFilter {
                    min_price: d("0.01"),
                    max_price: d("1000000"),
                    tick_size: d("0.01"),
                }),
                lot_size: Some(LotSize {
                    min_qty: d("0.00010"),
                    max_qty: d("9000"),
                    step_size: d("0.00010"),
                }),
                notional: Some(NotionalFilter {
                    min_notional: d("5"),
                    apply_min_to_market: true,
                    max_notional: None,
                    apply_max_to_market: false,
                }),
                ..Filters::default()
            },
        }
    }

    fn fill(trade_id: u64, q: &str, fee: &str, fee_asset: &str) -> Fill {
        Fill {
            symbol: sym(),
            trade_id,
            order_id: 9,
            client_order_id: None,
            side: Side::Buy,
            price: "60000".parse().expect("ok"),
            qty: q.parse().expect("ok"),
            commission: fee.parse().expect("ok"),
            commission_asset: Asset::new(fee_asset).expect("ok"),
            time_ms: 0,
            is_maker: false,
        }
    }

    fn ids() -> [ClientOrderId; 3] {
        ["l", "tp", "sl"].map(|s| ClientOrderId::new(s).expect("ok"))
    }

    /// The plan for a position that is exactly what `fills` received (nothing before them, no
    /// open sells).
    fn plan(status: OrderStatus, fills: &[Fill], sl: &str, tp: &str) -> OcoPlan {
        let received = fills.iter().fold(Qty::ZERO, |acc, f| {
            let fee = if f.commission_asset.as_str() == "BTC" {
                f.commission
            } else {
                Qty::ZERO
            };
            acc.checked_add(f.qty.saturating_sub(fee)).expect("small")
        });
        plan_for(status, fills, received, sl, tp)
    }

    fn plan_for(status: OrderStatus, fills: &[Fill], position: Qty, sl: &str, tp: &str) -> OcoPlan {
        let s = sym();
        let entry = EntryFills {
            symbol: &s,
            side: Side::Buy,
            status,
            fills,
            position,
        };
        protective_oco(
            &entry,
            &rules(),
            sl.parse().expect("ok"),
            tp.parse().expect("ok"),
            ids(),
        )
    }

    #[test]
    fn oco_covers_the_cumulative_fill_net_of_base_commission_rounded_down() {
        let fills = [
            fill(1, "0.0030", "0.000003", "BTC"),
            fill(2, "0.0020", "0.1", "USDT"),
        ];
        let OcoPlan::Place(o) = plan(OrderStatus::Filled, &fills, "58000.005", "63000.001") else {
            panic!("expected an OCO")
        };
        // 0.0050 − 0.000003 = 0.004997 → 0.0049 on a 0.0001 step.
        assert_eq!(o.qty.to_string(), "0.0049");
        assert_eq!(o.stop_loss.to_string(), "58000.01");
        assert_eq!(o.take_profit.to_string(), "63000.01");
        assert_eq!(o.stop_limit, None);
    }

    #[test]
    fn oco_covers_the_whole_unheld_position_not_just_the_last_fill() {
        // The entry received 0.0009992 (0.001 less its commission); an earlier round left a
        // remainder, so the position is larger. Step 0.0001.
        let fills = [fill(1, "0.0010", "0.0000008", "BTC")];
        let OcoPlan::Place(o) = plan_for(OrderStatus::Filled, &fills, q("0.00105"), "58000", "63000") else {
            panic!("expected an OCO")
        };
        assert_eq!(o.qty.to_string(), "0.001");
        let OcoPlan::Place(o) = plan_for(OrderStatus::Filled, &fills, q("0.00115"), "58000", "63000") else {
            panic!("expected an OCO")
        };
        assert_eq!(
            o.qty.to_string(),
            "0.0011",
            "the leftover is protected with the new fill"
        );
        // Never more than what crbot holds unheld, whatever was filled.
        let OcoPlan::Place(o) = plan_for(OrderStatus::Filled, &fills, q("0.0005"), "58000", "63000") else {
            panic!("expected an OCO")
        };
        assert_eq!(o.qty.to_string(), "0.0005");
    }

    #[test]
    fn no_oco_while_the_entry_is_still_working() {
        let fills = [fill(1, "0.0030", "0", "BNB")];
        assert_eq!(
            plan(OrderStatus::PartiallyFilled, &fills, "58000", "63000"),
            OcoPlan::Wait
        );
        assert_eq!(plan(OrderStatus::New, &[], "58000", "63000"), OcoPlan::Wait);
    }

    #[test]
    fn a_cancelled_partial_entry_is_protected_for_what_filled() {
        let fills = [fill(1, "0.0030", "0", "BNB")];
        assert!(matches!(
            plan(OrderStatus::Canceled, &fills, "58000", "63000"),
            OcoPlan::Place(ref o) if o.qty.to_string() == "0.003"
        ));
        assert_eq!(
            plan(OrderStatus::Canceled, &[], "58000", "63000"),
            OcoPlan::NothingFilled
        );
    }

    #[test]
    fn dust_below_lot_or_notional_minimum_is_reported_not_sent() {
        let tiny = [fill(1, "0.00005", "0", "BNB")];
        assert!(matches!(
            plan(OrderStatus::Filled, &tiny, "58000", "63000"),
            OcoPlan::TooSmall { .. }
        ));
        // 0.0001 × 40000 = 4 < 5 at the stop price.
        let small = [fill(1, "0.0001", "0", "BNB")];
        assert!(matches!(
            plan(OrderStatus::Filled, &small, "40000", "63000"),
            OcoPlan::TooSmall { .. }
        ));
    }

    #[test]
    fn inverted_prices_or_a_sell_entry_are_invalid() {
        let fills = [fill(1, "0.0030", "0", "BNB")];
        assert!(matches!(
            plan(OrderStatus::Filled, &fills, "63000", "58000"),
            OcoPlan::Invalid { .. }
        ));
        let s = sym();
        let entry = EntryFills {
            symbol: &s,
            side: Side::Sell,
            status: OrderStatus::Filled,
            fills: &fills,
            position: q("0.003"),
        };
        assert!(matches!(
            protective_oco(
                &entry,
                &rules(),
                "1".parse().expect("ok"),
                "2".parse().expect("ok"),
                ids()
            ),
            OcoPlan::Invalid { .. }
        ));
    }

    #[test]
    fn keys_that_can_withdraw_or_cannot_trade_are_refused() {
        use super::super::wire::ApiRestrictions;
        let ok = ApiRestrictions {
            ip_restrict: true,
            enable_reading: true,
            enable_spot_and_margin_trading: true,
            enable_withdrawals: false,
        };
        assert!(check_key_permissions(&ok).is_ok());
        assert!(
            check_key_permissions(&ApiRestrictions {
                enable_withdrawals: true,
                ..ok
            })
            .is_err()
        );
        assert!(
            check_key_permissions(&ApiRestrictions {
                enable_spot_and_margin_trading: false,
                ..ok
            })
            .is_err()
        );
    }

    #[test]
    fn fills_are_deduplicated_by_symbol_trade_id_and_order_id() {
        let mut dd = FillDedup::new();
        let order_id = fill(5, "1", "0", "BNB").order_id;
        dd.seed(&sym(), [(5, order_id)]);
        let batch = vec![
            fill(5, "1", "0", "BNB"),
            fill(6, "1", "0", "BNB"),
            fill(6, "1", "0", "BNB"),
        ];
        let new = dd.filter_new(batch);
        assert_eq!(new.iter().map(|f| f.trade_id).collect::<Vec<_>>(), vec![6]);
        assert_eq!(dd.last_trade_id(&sym()), Some(6));
        let mut other = fill(6, "1", "0", "BNB");
        other.symbol = Symbol::new("ETHUSDT").expect("ok");
        assert!(
            dd.insert(&other),
            "same trade id on another symbol is a different fill"
        );
        // A self-trade: one trade id, the other side's order.
        let mut other_side = fill(6, "1", "0", "BNB");
        other_side.order_id += 1;
        assert!(
            dd.insert(&other_side),
            "the other side of a self-trade is a fill too"
        );
    }

    /// Answers `query_order` from a script (then "not found"); nothing else is asked of it.
    #[derive(Clone, Default)]
    struct ScriptedQueries(std::sync::Arc<std::sync::Mutex<Vec<Result<OrderReport, BrokerError>>>>);

    fn unused<T>() -> Result<T, BrokerError> {
        Err(BrokerError::Connect("not asked by resolve_unknown".into()))
    }

    impl Broker for ScriptedQueries {
        async fn place_order(
            &self,
            _: &crate::risk::RiskApproved<crate::domain::OrderRequest>,
        ) -> crate::domain::OrderOutcome<crate::domain::Placed> {
            panic!("resolving never sends an order")
        }
        async fn place_oco(
            &self,
            _: &crate::risk::RiskApproved<OcoRequest>,
        ) -> crate::domain::OrderOutcome<crate::domain::ListReport> {
            panic!("resolving never sends an order")
        }
        async fn cancel_order(&self, _: &Symbol, _: &str) -> crate::domain::OrderOutcome<OrderReport> {
            panic!("resolving never cancels")
        }
        async fn cancel_all(&self, _: &Symbol) -> crate::domain::OrderOutcome<Vec<crate::domain::Cancelled>> {
            panic!("resolving never cancels")
        }
        async fn query_order(&self, _: &Symbol, _: &str) -> Result<OrderReport, BrokerError> {
            let mut script = self.0.lock().expect("script");
            if script.is_empty() {
                Err(not_found())
            } else {
                script.remove(0)
            }
        }
        async fn open_orders(&self, _: Option<&Symbol>) -> Result<Vec<OrderReport>, BrokerError> {
            unused()
        }
        async fn open_order_lists(&self) -> Result<Vec<crate::domain::ListReport>, BrokerError> {
            unused()
        }
        async fn account(&self) -> Result<Account, BrokerError> {
            unused()
        }
        async fn my_trades(&self, _: &Symbol, _: Option<u64>) -> Result<Vec<Fill>, BrokerError> {
            unused()
        }
        async fn my_trades_of_order(
            &self,
            _: &Symbol,
            _: u64,
            _: Option<u64>,
        ) -> Result<Vec<Fill>, BrokerError> {
            unused()
        }
        async fn book_quote(&self, _: &Symbol) -> Result<crate::domain::BookQuote, BrokerError> {
            unused()
        }
        fn cancel_hold_until_ms(&self) -> Option<i64> {
            None
        }
    }

    fn not_found() -> BrokerError {
        BrokerError::Api {
            http_status: 400,
            code: CODE_NO_SUCH_ORDER,
            msg: "Order does not exist.".into(),
        }
    }

    fn quick() -> ResolveConfig {
        ResolveConfig {
            backoff_base: std::time::Duration::ZERO,
            backoff_max: std::time::Duration::ZERO,
            ..ResolveConfig::default()
        }
    }

    #[tokio::test]
    async fn an_unknown_order_is_absent_only_after_not_found_answers_in_a_row() {
        // A 5xx between two "not found" answers restarts the count: the query can lag.
        let broker = ScriptedQueries::default();
        *broker.0.lock().expect("script") = vec![
            Err(not_found()),
            Err(BrokerError::Server5xx {
                status: 503,
                msg: "busy".into(),
            }),
        ];
        let r = resolve_unknown(&broker, &sym(), "cr-1", &quick()).await;
        assert_eq!(r, Resolution::NotFound);
        assert!(broker.0.lock().expect("script").is_empty());
    }

    #[tokio::test]
    async fn an_unknown_order_the_exchange_has_is_found_and_a_ban_leaves_it_unknown() {
        let report = crate::domain::broker::OrderReport {
            symbol: sym(),
            order_id: 9,
            order_list_id: None,
            client_order_id: "cr-1".into(),
            orig_client_order_id: None,
            side: Side::Buy,
            order_type: OrderType::Market,
            time_in_force: None,
            status: OrderStatus::Filled,
            price: None,
            stop_price: None,
            orig_qty: q("1"),
            executed_qty: q("1"),
            cumulative_quote_qty: crate::domain::Notional::ZERO,
            time_ms: 1,
            update_ms: 1,
        };
        let broker = ScriptedQueries::default();
        *broker.0.lock().expect("script") = vec![Err(not_found()), Ok(report.clone())];
        let r = resolve_unknown(&broker, &sym(), "cr-1", &quick()).await;
        assert_eq!(r, Resolution::Found(report));
        *broker.0.lock().expect("script") = vec![Err(BrokerError::Banned { until_ms: 5 })];
        let r = resolve_unknown(&broker, &sym(), "cr-1", &quick()).await;
        assert!(matches!(r, Resolution::StillUnknown { .. }), "{r:?}");
    }
}
