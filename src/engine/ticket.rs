//! Turning what the trader typed (a [`TicketDraft`] from the screen, or the `crbot order`
//! arguments) into a domain [`Ticket`], with an error per field that does not parse.
//!
//! Owns: field parsing and the quote-amount conversion (`250 USDT` → base quantity at the
//! reference price). Must not: round to filters or judge risk; that is `risk::check`'s job,
//! and the rounded values it approves are what leave.

use crate::domain::{Notional, Price, Qty, Quote, Side, Symbol, Ticket, TicketKind};
use crate::engine::snapshot::{TicketDraft, TicketField};

/// Field errors, in screen order.
pub type FieldErrors = Vec<(TicketField, String)>;

/// Parses a draft. `quote` (the symbol's current book) is needed only to convert a quote
/// amount into a base quantity for a MARKET ticket.
pub fn parse_draft(draft: &TicketDraft, quote: Option<&Quote>) -> Result<Ticket, FieldErrors> {
    let mut errors = FieldErrors::new();
    let symbol = match Symbol::new(draft.symbol.trim()) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push((TicketField::Symbol, e.to_string()));
            None
        }
    };
    let side = match draft.side.trim().to_ascii_uppercase().as_str() {
        "BUY" | "B" => Some(Side::Buy),
        "SELL" | "S" => Some(Side::Sell),
        other => {
            errors.push((TicketField::Side, format!("`{other}` is not BUY or SELL")));
            None
        }
    };
    let is_limit = match draft.order_type.trim().to_ascii_uppercase().as_str() {
        "LIMIT" | "L" => Some(true),
        "MARKET" | "M" | "" => Some(false),
        other => {
            errors.push((
                TicketField::OrderType,
                format!("`{other}` is not MARKET or LIMIT"),
            ));
            None
        }
    };
    let price = optional_price(&draft.price, TicketField::Price, &mut errors);
    let stop_loss = optional_price(&draft.stop_loss, TicketField::StopLoss, &mut errors);
    let take_profit = optional_price(&draft.take_profit, TicketField::TakeProfit, &mut errors);
    let kind = match (is_limit, price) {
        (Some(true), Some(p)) => Some(TicketKind::Limit { price: p }),
        (Some(true), None) => {
            if draft.price.trim().is_empty() {
                errors.push((TicketField::Price, "a LIMIT order needs a price".to_string()));
            }
            None
        }
        (Some(false), _) => Some(TicketKind::Market),
        (None, _) => None,
    };
    let qty = parse_amount(&draft.amount, symbol.as_ref(), side, kind, quote, &mut errors);
    match (symbol, side, kind, qty) {
        (Some(symbol), Some(side), Some(kind), Some(qty)) if errors.is_empty() => Ok(Ticket {
            symbol,
            side,
            kind,
            qty,
            stop_loss,
            take_profit,
        }),
        _ => Err(errors),
    }
}

fn optional_price(text: &str, field: TicketField, errors: &mut FieldErrors) -> Option<Price> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse::<Price>() {
        Ok(p) if !p.is_zero() => Some(p),
        Ok(_) => {
            errors.push((field, "must be greater than zero".to_string()));
            None
        }
        Err(e) => {
            errors.push((field, e.to_string()));
            None
        }
    }
}

/// `0.05` is a base quantity; `250 USDT` (the symbol's quote asset) is a quote amount,
/// converted at the limit price, or at the ask (buy) / bid (sell) for a MARKET ticket.
fn parse_amount(
    text: &str,
    symbol: Option<&Symbol>,
    side: Option<Side>,
    kind: Option<TicketKind>,
    quote: Option<&Quote>,
    errors: &mut FieldErrors,
) -> Option<Qty> {
    let mut parts = text.split_whitespace();
    let number = parts.next().unwrap_or("");
    let unit = parts.next();
    if parts.next().is_some() || number.is_empty() {
        errors.push((
            TicketField::Amount,
            "type a quantity (0.05) or a quote amount (250 USDT)".to_string(),
        ));
        return None;
    }
    let Some(unit) = unit else {
        return match number.parse::<Qty>() {
            Ok(q) if !q.is_zero() => Some(q),
            Ok(_) => {
                errors.push((TicketField::Amount, "must be greater than zero".to_string()));
                None
            }
            Err(e) => {
                errors.push((TicketField::Amount, e.to_string()));
                None
            }
        };
    };
    let amount = match number.parse::<Notional>() {
        Ok(n) if !n.is_zero() => n,
        Ok(_) => {
            errors.push((TicketField::Amount, "must be greater than zero".to_string()));
            return None;
        }
        Err(e) => {
            errors.push((TicketField::Amount, e.to_string()));
            return None;
        }
    };
    let unit = unit.to_ascii_uppercase();
    if let Some(symbol) = symbol
        && !symbol.as_str().ends_with(&unit)
    {
        errors.push((
            TicketField::Amount,
            format!("{unit} is not the quote asset of {symbol}"),
        ));
        return None;
    }
    let reference = match kind? {
        TicketKind::Limit { price } => Some(price),
        TicketKind::Market => quote.map(|q| match side {
            Some(Side::Sell) => q.bid,
            _ => q.ask,
        }),
    };
    let Some(reference) = reference.filter(|p| !p.is_zero()) else {
        errors.push((
            TicketField::Amount,
            "no price yet to convert a quote amount".to_string(),
        ));
        return None;
    };
    let qty = amount.qty_at(reference);
    if qty.is_none() {
        errors.push((TicketField::Amount, "amount out of range".to_string()));
    }
    qty
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(symbol: &str, side: &str, t: &str, amount: &str, price: &str) -> TicketDraft {
        TicketDraft {
            symbol: symbol.into(),
            side: side.into(),
            order_type: t.into(),
            amount: amount.into(),
            price: price.into(),
            stop_loss: "".into(),
            take_profit: "".into(),
        }
    }

    fn quote() -> Quote {
        Quote {
            bid: "99".parse().expect("ok"),
            ask: "100".parse().expect("ok"),
            time_ms: 0,
        }
    }

    #[test]
    fn parses_a_limit_buy() {
        let t = parse_draft(&draft("ethusdt", "b", "l", "0.5", "3000"), None).expect("valid");
        assert_eq!(t.symbol.as_str(), "ETHUSDT");
        assert_eq!(t.side, Side::Buy);
        assert_eq!(
            t.kind,
            TicketKind::Limit {
                price: "3000".parse().expect("ok")
            }
        );
        assert_eq!(t.qty.to_string(), "0.5");
    }

    #[test]
    fn converts_a_quote_amount_at_the_ask_for_a_market_buy() {
        let t =
            parse_draft(&draft("BTCUSDT", "BUY", "MARKET", "250 usdt", ""), Some(&quote())).expect("valid");
        assert_eq!(t.qty.to_string(), "2.5");
    }

    #[test]
    fn converts_a_quote_amount_at_the_limit_price() {
        let t = parse_draft(&draft("BTCUSDT", "SELL", "LIMIT", "300 USDT", "150"), None).expect("valid");
        assert_eq!(t.qty.to_string(), "2");
    }

    #[test]
    fn reports_every_bad_field() {
        let errs = parse_draft(&draft("BTC/USDT", "hold", "stop", "-1", "abc"), None).expect_err("invalid");
        let fields: Vec<TicketField> = errs.iter().map(|(f, _)| *f).collect();
        for f in [
            TicketField::Symbol,
            TicketField::Side,
            TicketField::OrderType,
            TicketField::Price,
        ] {
            assert!(fields.contains(&f), "{f:?} missing in {errs:?}");
        }
    }

    #[test]
    fn a_limit_without_price_is_refused() {
        let errs = parse_draft(&draft("BTCUSDT", "BUY", "LIMIT", "1", ""), None).expect_err("invalid");
        assert!(errs.iter().any(|(f, _)| *f == TicketField::Price));
    }

    #[test]
    fn a_quote_amount_in_the_wrong_asset_is_refused() {
        let errs = parse_draft(&draft("BTCUSDT", "BUY", "MARKET", "1 ETH", ""), Some(&quote()))
            .expect_err("invalid");
        assert!(
            errs.iter()
                .any(|(f, m)| *f == TicketField::Amount && m.contains("ETH"))
        );
    }

    #[test]
    fn zero_quantity_is_refused() {
        assert!(parse_draft(&draft("BTCUSDT", "BUY", "MARKET", "0", ""), None).is_err());
    }
}
