//! The facts one evaluation reads, derived once from (limits, context, ticket, now).
//!
//! Owns: the rounded order (quantity to the lot step, prices to the tick on the conservative
//! side), the quote's verdict (fresh, missing, unusable or stale), the price the ticket is valued
//! at, its notional and fee, the P&L figures, and crbot's position on the symbol. Every rule reads
//! these same values, so two rules can never disagree about what the order is. Must not: decide
//! anything (each rule in `rules` does), read a clock, or change the engine's context.

use rust_decimal::Decimal;

use super::{ApprovedOrder, Denial, Limits, RiskContext, smul};
use crate::domain::{
    Asset, Money, Notional, OrderType, Price, Qty, Quote, Side, Symbol, SymbolRules, Ticket, TicketKind,
    TimeInForce, plain,
};

/// P&L figures derived from the context, or why they are unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PnlFigures {
    pub equity: Decimal,
    pub day_start: Decimal,
    pub hwm: Decimal,
    pub day_pnl: Decimal,
    pub day_pnl_pct: Decimal,
    pub drawdown_pct: Decimal,
}

impl PnlFigures {
    pub(crate) fn from_context(ctx: &RiskContext) -> Result<PnlFigures, String> {
        if !ctx.pnl_ok {
            return Err("the P&L computation failed".to_string());
        }
        let usdt = Asset::usdt();
        let get = |name: &str, m: &Option<Money>| -> Result<Decimal, String> {
            match m {
                None => Err(format!("{name} is unknown")),
                Some(m) if *m.asset() != usdt => Err(format!("{name} is in {}, not USDT", m.asset())),
                Some(m) if m.is_negative() => Err(format!("{name} is negative ({})", plain(m.amount()))),
                Some(m) => Ok(m.amount()),
            }
        };
        let equity = get("equity", &ctx.equity)?;
        let day_start = get("day-start equity", &ctx.day_start_equity)?;
        let hwm = get("high-water mark", &ctx.high_water_mark)?.max(equity);
        if day_start.is_zero() || hwm.is_zero() {
            return Err("day-start equity or high-water mark is zero".to_string());
        }
        let overflow = || "P&L arithmetic overflowed".to_string();
        let day_pnl = equity.checked_sub(day_start).ok_or_else(overflow)?;
        let day_pnl_pct = day_pnl
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|v| v.checked_div(day_start))
            .ok_or_else(overflow)?;
        let drawdown_pct = (hwm - equity)
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|v| v.checked_div(hwm))
            .ok_or_else(overflow)?;
        Ok(PnlFigures {
            equity,
            day_start,
            hwm,
            day_pnl,
            day_pnl_pct,
            drawdown_pct,
        })
    }
}

/// What the quote of a symbol is good for.
#[derive(Debug, Clone, Copy)]
pub(super) enum QuoteState {
    Fresh(Quote),
    Missing,
    /// Its age in ms (negative when it is from the future).
    Stale(i64),
    /// Zero, or crossed (bid above ask).
    Bad(Quote),
}

pub(super) fn quote_state(limits: &Limits, ctx: &RiskContext, symbol: &Symbol, now_ms: i64) -> QuoteState {
    let Some(q) = ctx.quotes.get(symbol) else {
        return QuoteState::Missing;
    };
    if q.bid.is_zero() || q.ask.is_zero() || q.bid > q.ask {
        return QuoteState::Bad(*q);
    }
    let age = now_ms.saturating_sub(q.time_ms);
    if age.saturating_abs() > limits.max_quote_age_ms {
        return QuoteState::Stale(age);
    }
    QuoteState::Fresh(*q)
}

/// Everything the rules read about one ticket, computed once.
#[derive(Debug)]
pub(super) struct Facts<'a> {
    pub limits: &'a Limits,
    pub ctx: &'a RiskContext,
    pub ticket: &'a Ticket,
    pub now_ms: i64,
    /// A buy: spot is long only, so a buy opens or adds to a position.
    pub is_entry: bool,
    pub symbol: &'a Symbol,
    /// The exchange's rules for the symbol; `None` when it has none.
    pub rules: Option<&'a SymbolRules>,
    pub order_type: OrderType,
    /// Rounded down to the LOT_SIZE / MARKET_LOT_SIZE step (as typed without exchange rules).
    pub qty: Qty,
    /// The limit price rounded to the tick (buy down, sell up); `None` for a market order.
    pub price: Option<Price>,
    pub quote: QuoteState,
    /// The quote when it is fresh; every price check needs one.
    pub fresh: Option<Quote>,
    /// The price the ticket is valued at: the rounded limit price, or the ask (buy) / bid (sell)
    /// of a fresh quote for a market order.
    pub reference: Option<Price>,
    /// Quote-asset notional at `reference`.
    pub notional: Option<Notional>,
    /// The symbol's quote asset (USDT when the symbol is unknown).
    pub quote_asset: Asset,
    /// Taker fee estimate on `notional`, in the quote asset.
    pub fee: Option<Money>,
    /// Entries only, rounded toward the entry: risk and reward never grow by rounding.
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    /// The P&L figures, or why they cannot be computed.
    pub figures: Result<PnlFigures, String>,
    /// crbot's own position on the symbol.
    pub position: Qty,
    /// Of `position`, what crbot's own open sells already hold.
    pub held: Qty,
    /// Whether passing rules write out their numbers: the live ticket view reads them
    /// ([`super::report`]); the gate itself ([`super::check`]) needs only the verdict and the
    /// denials, and skips the formatting.
    pub explain: bool,
}

impl<'a> Facts<'a> {
    pub fn new(limits: &'a Limits, ctx: &'a RiskContext, ticket: &'a Ticket, now_ms: i64) -> Facts<'a> {
        let is_entry = ticket.side == Side::Buy;
        let symbol = &ticket.symbol;
        let rules = ctx.rules.get(symbol);
        let order_type = ticket.order_type();
        let qty = rules.map_or(ticket.qty, |r| r.round_qty(order_type, ticket.qty));
        let price = ticket
            .limit_price()
            .map(|p| rules.map_or(p, |r| r.round_price(ticket.side, p)));
        let quote = quote_state(limits, ctx, symbol, now_ms);
        let fresh = match quote {
            QuoteState::Fresh(q) => Some(q),
            _ => None,
        };
        let reference = match ticket.kind {
            TicketKind::Market => fresh.map(|q| touch(ticket.side, q)),
            TicketKind::Limit { .. } => price,
        };
        let notional = reference.and_then(|p| p.notional(qty));
        let quote_asset = rules.map_or_else(Asset::usdt, |r| r.quote_asset.clone());
        let fee = notional.and_then(|n| {
            let v = n.value().checked_mul(limits.taker_fee_pct)? / Decimal::ONE_HUNDRED;
            Some(Money::new(v, quote_asset.clone()))
        });
        // Stop-loss and take-profit rounded toward the entry: risk and reward never grow.
        let (stop_loss, take_profit) = if is_entry {
            (
                ticket
                    .stop_loss
                    .map(|p| rules.map_or(p, |r| r.round_price(Side::Sell, p))),
                ticket
                    .take_profit
                    .map(|p| rules.map_or(p, |r| r.round_price(Side::Buy, p))),
            )
        } else {
            (None, None)
        };
        Facts {
            limits,
            ctx,
            ticket,
            now_ms,
            is_entry,
            symbol,
            rules,
            order_type,
            qty,
            price,
            quote,
            fresh,
            reference,
            notional,
            quote_asset,
            fee,
            stop_loss,
            take_profit,
            figures: PnlFigures::from_context(ctx),
            position: ctx.positions.get(symbol).copied().unwrap_or(Qty::ZERO),
            held: ctx.held_by_open_sells.get(symbol).copied().unwrap_or(Qty::ZERO),
            explain: true,
        }
    }

    /// The side of a quote this ticket trades against: the ask for a buy, the bid for a sell.
    pub fn touch(&self, q: Quote) -> Price {
        touch(self.ticket.side, q)
    }

    /// The free balance of an asset (zero when the account has none).
    pub fn free(&self, asset: &Asset) -> Decimal {
        self.ctx
            .balances
            .get(asset)
            .map_or(Decimal::ZERO, |b| b.free.value())
    }

    /// The ticket's notional in USDT: as is for a USDT-quoted symbol, else converted at the mid
    /// of a fresh `<QUOTE>USDT` quote (no fresh quote → the entry fails closed).
    pub fn notional_in_usdt(&self, notional: Notional) -> Result<Decimal, Denial> {
        let usdt = Asset::usdt();
        let quote_asset = &self.quote_asset;
        if *quote_asset == usdt {
            return Ok(notional.value());
        }
        let conv = Symbol::new(&format!("{quote_asset}{usdt}")).map_err(|_| Denial::PnlUnavailable {
            reason: format!("{quote_asset} cannot be valued in USDT"),
        })?;
        match quote_state(self.limits, self.ctx, &conv, self.now_ms) {
            QuoteState::Fresh(q) => Ok(smul(notional.value(), q.mid().value())),
            QuoteState::Missing => Err(Denial::NoQuote { symbol: conv }),
            QuoteState::Bad(q) => Err(Denial::BadQuote {
                symbol: conv,
                bid: q.bid,
                ask: q.ask,
            }),
            QuoteState::Stale(age) => Err(Denial::StaleQuote {
                symbol: conv,
                age_ms: age,
                max_ms: self.limits.max_quote_age_ms,
            }),
        }
    }

    /// The exact (rounded) order that would be sent if every rule passes.
    pub fn order(&self) -> ApprovedOrder {
        ApprovedOrder {
            symbol: self.symbol.clone(),
            side: self.ticket.side,
            order_type: self.order_type,
            time_in_force: self.price.map(|_| TimeInForce::Gtc),
            qty: self.qty,
            price: self.price,
            stop_loss: self.stop_loss,
            take_profit: self.take_profit,
            is_entry: self.is_entry,
            reference_price: self.reference,
            notional: self.notional,
            est_fee: self.fee.clone(),
        }
    }
}

fn touch(side: Side, q: Quote) -> Price {
    match side {
        Side::Buy => q.ask,
        Side::Sell => q.bid,
    }
}

/// True when a position is too small for any order to sell it ([`crate::portfolio::is_dust`]:
/// below the lot step or minimum, or below the minimum notional at the mid).
pub(super) fn is_dust(rules: Option<&SymbolRules>, qty: Qty, quote: Option<&Quote>) -> bool {
    if qty.is_zero() {
        return true;
    }
    let Some(r) = rules else { return false };
    crate::portfolio::is_dust(qty, r, quote.map(Quote::mid))
}
