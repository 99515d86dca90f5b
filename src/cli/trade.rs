//! `crbot order`: a ticket through the same rounding, risk gate and journal as the screen,
//! then to the exchange; and what follows a fill (the protective OCO) or an unknown outcome
//! (reconcile by client order id, never resend).
//!
//! Owns: sending what `Core::decide` prepared and reporting each step. Must not: send an
//! order that is not journaled, resend an order whose outcome is unknown, or bypass the risk
//! gate (a dry run runs the same check and journals the decision, nothing else).

use std::str::FromStr;

use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, Ready, now_ms};
use crate::cli::remote::{self, Remote, Route};
use crate::cli::{OrderArgs, OrderSide, exit};
use crate::domain::broker::OrderOutcome;
use crate::domain::{
    ClientOrderId, Order, OrderPurpose, OrderType, Price, Qty, Side, Symbol, SymbolRules, Ticket, TicketKind,
    decimals_of, plain,
};
use crate::engine::core::Refusal;
use crate::journal::RiskEventRecord;
use crate::risk::{self, Denial};

/// A number typed on the command line: its exact text and how many decimals it has (trailing
/// zeros after the point do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    pub text: String,
    pub decimals: u32,
}

/// The most decimals a `rust_decimal` (and so any step size) can have.
const MAX_DECIMALS: u32 = 28;

/// Reads a positive number: a negative or zero one is a usage error that says so, a malformed
/// one one that names the field. A number with more decimals than any step size can have
/// (over 28) is kept cut to 28 decimals, with its true count in [`Typed::decimals`]: the
/// quantity check against the symbol's step size refuses it, naming the filter.
fn parse_num<T: FromStr>(what: &str, noun: &str, text: &str) -> Result<(T, Typed), Failure> {
    let text = text.trim();
    let malformed = || Failure::usage(format!("{what} `{text}` is not a valid positive number"));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let well_formed = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.ends_with(|c: char| c.is_ascii_digit());
    if !well_formed {
        return Err(malformed());
    }
    let is_zero = digits.chars().all(|c| c == '0' || c == '.');
    if negative && !is_zero {
        return Err(Failure::usage(format!(
            "{what} `{text}`: {noun} must be positive"
        )));
    }
    if is_zero {
        return Err(Failure::usage(format!(
            "{what} `{text}`: {noun} must be positive, not zero"
        )));
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    let decimals = u32::try_from(frac.len()).unwrap_or(u32::MAX);
    let cut = &frac[..frac.len().min(MAX_DECIMALS as usize)];
    let exact = if cut.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{cut}")
    };
    let value = exact.parse::<T>().map_err(|_| malformed())?;
    Ok((
        value,
        Typed {
            text: text.to_string(),
            decimals,
        },
    ))
}

/// The ticket exactly as typed (MARKET without `--limit`).
pub fn ticket_from_args(args: &OrderArgs) -> Result<Ticket, Failure> {
    ticket_and_qty(args).map(|(t, _)| t)
}

/// [`ticket_from_args`] with the quantity as typed (for the step-size check).
fn ticket_and_qty(args: &OrderArgs) -> Result<(Ticket, Typed), Failure> {
    let symbol = Symbol::new(&args.symbol.trim().to_uppercase())
        .map_err(|e| Failure::usage(format!("SYMBOL `{}`: {e}", args.symbol)))?;
    let (qty, typed): (Qty, Typed) = parse_num("QTY", "the quantity", &args.qty)?;
    let price = |what: &str, p: &str| parse_num::<Price>(what, "a price", p).map(|(v, _)| v);
    let kind = match &args.limit {
        Some(p) => TicketKind::Limit {
            price: price("--limit", p)?,
        },
        None => TicketKind::Market,
    };
    let stop_loss = args
        .stop_loss
        .as_deref()
        .map(|p| price("--stop-loss", p))
        .transpose()?;
    let take_profit = args
        .take_profit
        .as_deref()
        .map(|p| price("--take-profit", p))
        .transpose()?;
    let ticket = Ticket {
        symbol,
        side: match args.side {
            OrderSide::Buy => Side::Buy,
            OrderSide::Sell => Side::Sell,
        },
        kind,
        qty,
        stop_loss,
        take_profit,
    };
    Ok((ticket, typed))
}

/// A quantity with more decimals than the symbol's step size allows is refused (a usage
/// error), naming the filter and its numbers, rather than rounded down in silence: the
/// command sends what was typed or nothing.
pub fn check_step(ticket: &Ticket, typed: &Typed, rules: Option<&SymbolRules>) -> Result<(), Failure> {
    let Some(rules) = rules else {
        return Ok(());
    };
    let order_type = ticket.order_type();
    let Some(lot) = rules.lot_for(order_type) else {
        return Ok(());
    };
    if lot.step_size.is_zero() {
        return Ok(());
    }
    let filter = if order_type == OrderType::Market && rules.filters.market_lot_size.as_ref() == Some(lot) {
        "MARKET_LOT_SIZE"
    } else {
        "LOT_SIZE"
    };
    let allowed = decimals_of(lot.step_size);
    if typed.decimals <= allowed && ticket.qty.is_multiple_of(lot.step_size) {
        return Ok(());
    }
    let below = rules.round_qty(order_type, ticket.qty);
    Err(Failure::usage(format!(
        "QTY `{}` breaks {filter}: {} takes multiples of its step size {} (at most {allowed} decimals; \
         the quantity has {} decimals); the nearest below is {below}",
        typed.text,
        ticket.symbol,
        plain(lot.step_size),
        typed.decimals,
    )))
}

/// Prints a risk rejection (every rule and reason) and returns exit code 3.
pub fn print_rejection(ctx: &Ctx, ticket: &Ticket, denials: &[Denial]) -> i32 {
    print_rejection_doc(ctx, &crate::api::orders::rejection_json(ticket, denials))
}

/// [`print_rejection`] from its document (`approved`, `symbol`, `side`, `rejections` of
/// `{code, reason}`), as the engine's API returns it too; other fields are left out.
pub fn print_rejection_doc(ctx: &Ctx, doc: &serde_json::Value) -> i32 {
    let items: Vec<(String, String)> = doc["rejections"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| {
                    let code = r["code"].as_str().unwrap_or_default().to_string();
                    let reason = r["reason"].as_str().unwrap_or_default();
                    let reason = reason
                        .strip_prefix(&format!("{code}: "))
                        .unwrap_or(reason)
                        .to_string();
                    (code, reason)
                })
                .collect()
        })
        .unwrap_or_default();
    let text: String = items
        .iter()
        .map(|(code, reason)| format!("REJECTED {code}: {reason}\n"))
        .collect();
    ctx.print(
        &text,
        json!({"approved": false, "symbol": doc["symbol"], "side": doc["side"], "rejections": doc["rejections"]}),
    );
    let first = items
        .first()
        .map(|(code, reason)| format!("{code}: {reason}"))
        .unwrap_or_default();
    eprintln!("crbot: rejected by the risk engine: {first}");
    exit::RISK_REJECTED
}

pub use crate::api::orders::order_json;

pub async fn order(ctx: &Ctx, args: &OrderArgs) -> Outcome {
    let (ticket, typed) = ticket_and_qty(args)?;
    // One engine per account: a running engine takes the ticket against its live risk state
    // (and protects the entry after its fill); otherwise this command is the engine, holding
    // the account's lock until it exits.
    let _lock = match common::route(ctx).await? {
        Route::Engine(engine) => return order_through(ctx, &engine, args, &ticket, &typed).await,
        Route::Alone(lock) => lock,
    };
    // On PostgreSQL the account may be led by an engine on another machine: this command
    // trades only while it holds the lease (its journal's order writes fenced by it).
    let lease = crate::engine::lock::take_lease(&ctx.config.journal_location(), ctx.config.mode)
        .await
        .map_err(|e| {
            common::Failure::new(format!(
                "{e}. Send the order to the leader's API (POST /api/orders with a trade token), or run \
                 the command where it runs"
            ))
        })?;
    let mut ready = common::prepare(ctx, std::slice::from_ref(&ticket.symbol)).await?;
    if let Some(l) = &lease {
        ready.core.journal.set_fence(l.guard());
    }
    if let Err(e) = check_step(&ticket, &typed, ready.core.state.rules.get(&ticket.symbol)) {
        ready.session.close(&ctx.config).await;
        return Err(e);
    }
    let result = if args.dry_run {
        dry_run(ctx, &mut ready, &ticket)
    } else {
        place(ctx, &mut ready, &ticket).await
    };
    ready.session.close(&ctx.config).await;
    drop(lease);
    result
}

/// `crbot order` through the running engine (`POST /api/orders` on its socket), printed as the
/// command prints it alone: the same rejection, dry run and order documents, the same exit
/// codes. The engine's answer comes when the exchange answered the placement; the protective
/// OCO of an entry is the engine's to place after the fill.
async fn order_through(
    ctx: &Ctx,
    engine: &Remote,
    args: &OrderArgs,
    ticket: &Ticket,
    typed: &Typed,
) -> Outcome {
    // The engine holds the rules, not this process: a quantity no step size can take is
    // refused here, one off its step by the engine's own rounding.
    if typed.decimals > MAX_DECIMALS {
        return Err(Failure::usage(format!(
            "QTY `{}` breaks LOT_SIZE: it has {} decimals and no step size has more than {MAX_DECIMALS}",
            typed.text, typed.decimals
        )));
    }
    let mut body = json!({
        "symbol": ticket.symbol.as_str(),
        "side": ticket.side.as_wire(),
        "quantity": args.qty.trim(),
        "dry_run": args.dry_run,
    });
    for (key, value) in [
        ("limit_price", &args.limit),
        ("stop_loss", &args.stop_loss),
        ("take_profit", &args.take_profit),
    ] {
        if let Some(v) = value {
            body[key] = json!(v.trim());
        }
    }
    let wait = crate::api::orders::ORDER_WAIT + std::time::Duration::from_secs(5);
    let deadline = std::time::Instant::now() + remote::ENGINE_WAIT;
    let mut told = false;
    let (status, mut doc) = loop {
        let (status, doc) = engine
            .call("POST", "/api/orders", Some(&body), wait)
            .await
            .map_err(|e| Failure::new(format!("{e}; the order may have been sent: check crbot orders")))?;
        // An engine still starting decided nothing: asking again is safe (bounded).
        let starting = status == 503 && doc["error"] == json!(crate::api::orders::ENGINE_STARTING);
        if !starting || std::time::Instant::now() >= deadline {
            break (status, doc);
        }
        if !told {
            eprintln!("crbot: the engine is still reconciling with the exchange; waiting");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let text = doc
        .as_object_mut()
        .and_then(|m| m.remove("text"))
        .and_then(|t| t.as_str().map(str::to_string))
        .unwrap_or_default();
    match status {
        422 => Ok(print_rejection_doc(ctx, &doc)),
        200 if doc["approved"] == json!(true) => {
            ctx.print(&text, doc);
            Ok(exit::OK)
        }
        200 => {
            if !ctx.json() {
                println!("{text}");
            }
            Ok(print_rejection_doc(ctx, &doc))
        }
        201 | 202 | 502 => {
            let log: Vec<String> = doc["log"]
                .as_array()
                .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            ctx.print(
                &log.join("\n"),
                json!({"approved": true, "order": doc["order"], "protective": doc["protective"], "log": log}),
            );
            match status {
                201 => Ok(exit::OK),
                _ => Err(Failure::new(log.last().cloned().unwrap_or_default())),
            }
        }
        _ => Err(Failure::new(remote::error_line(status, &doc))),
    }
}

/// The verdict and the exact orders that would be sent; only the risk decision is journaled.
fn dry_run(ctx: &Ctx, ready: &mut Ready, ticket: &Ticket) -> Outcome {
    let now = now_ms();
    let core = &mut ready.core;
    let rctx = core.state.risk_context(false);
    let verdict = risk::check(&core.state.limits, &rctx, ticket, now);
    let (lines, _) = core.preview_lines(ticket, now);
    let (approved, codes, reason) = match &verdict {
        Ok(_) => (true, Vec::new(), "dry run: approved".to_string()),
        Err(d) => (
            false,
            d.iter().map(|d| d.code().to_string()).collect(),
            format!(
                "dry run: {}",
                d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
            ),
        ),
    };
    core.journal
        .record_risk_event(&RiskEventRecord {
            time_ms: now,
            source: core.source,
            ticket: ticket.clone(),
            approved,
            codes,
            reason,
        })
        .map_err(|e| Failure::new(format!("the journal cannot record the decision: {e}")))?;
    let verdict = verdict.map(|a| a.into_inner());
    let (text, doc) = crate::api::orders::dry_run_doc(&lines, &verdict);
    match verdict {
        Err(denials) => {
            if !ctx.json() {
                println!("{text}");
            }
            Ok(print_rejection(ctx, ticket, &denials))
        }
        Ok(_) => {
            ctx.print(&text, doc);
            Ok(exit::OK)
        }
    }
}

async fn place(ctx: &Ctx, ready: &mut Ready, ticket: &Ticket) -> Outcome {
    let purpose = match ticket.side {
        Side::Buy => OrderPurpose::Entry,
        Side::Sell => OrderPurpose::Exit,
    };
    let mut log = Vec::new();
    // A sell of a protected position: its OCO holds the balance, so it is cancelled first and
    // what is left after the sell is protected again at the same prices.
    let reprotect = if ticket.side == Side::Sell {
        unprotect(ready, &ticket.symbol, ticket.qty, &mut log).await
    } else {
        None
    };
    let prepared = match ready.core.decide(ticket, purpose, false, now_ms()) {
        Ok(p) => p,
        Err(refusal) => {
            if let Some((sl, tp)) = reprotect {
                // A failure is already a line in `log`, printed just below.
                let _ = reprotect_rest(ready, &ticket.symbol, sl, tp, &mut log).await;
            }
            for line in &log {
                eprintln!("crbot: {line}");
            }
            return match refusal {
                Refusal::Risk(denials) => Ok(print_rejection(ctx, ticket, &denials)),
                e @ Refusal::Storage(_) => Err(Failure::new(e.to_string())),
            };
        }
    };
    let mut code = ready.oneshot().send_prepared(&prepared.request, &mut log).await;
    if let Some((sl, tp)) = reprotect {
        let r = reprotect_rest(ready, &ticket.symbol, sl, tp, &mut log).await;
        if code.is_ok() {
            code = r;
        }
    }
    let order = ready
        .core
        .state
        .orders
        .get(&prepared.request.client_order_id)
        .cloned();
    let text = log.join("\n");
    let json = json!({
        "approved": true,
        "order": order.as_ref().map(order_json),
        "protective": protective_json(ready, &prepared.request.client_order_id),
        "log": log,
    });
    match code {
        Ok(()) => {
            ctx.print(&text, json);
            Ok(exit::OK)
        }
        Err(line) => {
            ctx.print(&text, json);
            Err(Failure::new(line))
        }
    }
}

/// When what crbot may sell now does not cover a sell of `qty` and the symbol has an open
/// protective OCO, cancels it (one leg cancels the list), reads back both legs and the
/// balances, and returns its stop-loss and take-profit for re-protecting what the sell leaves.
/// "May sell now" is crbot's position less what its own open sells hold, bounded by the free
/// balance ([`EngineState::sellable`](crate::engine::state::EngineState::sellable)): the free
/// balance alone would count the user's own coins, and a sell paid from them would leave the
/// OCO holding more than is left of crbot's position.
async fn unprotect(
    ready: &mut Ready,
    symbol: &Symbol,
    qty: Qty,
    log: &mut Vec<String>,
) -> Option<(Price, Price)> {
    let legs: Vec<Order> = ready
        .core
        .state
        .orders
        .values()
        .filter(|o| &o.symbol == symbol && o.state.is_open() && o.purpose.is_protective())
        .cloned()
        .collect();
    let first = legs.first()?;
    if ready.core.state.sellable(symbol) >= qty {
        return None;
    }
    let sl = legs
        .iter()
        .find(|o| o.purpose == OrderPurpose::StopLoss)?
        .stop_price?;
    let tp = legs
        .iter()
        .find(|o| o.purpose == OrderPurpose::TakeProfit)?
        .price?;
    let rest = ready.rest();
    log.push(format!(
        "{symbol}: cancelling its protective OCO so the sell can use the balance"
    ));
    let mut waits = 0;
    loop {
        match rest.cancel_order(symbol, first.client_order_id.as_str()).await {
            OrderOutcome::Done(o) => {
                ready.core.on_exchange_order(&o, now_ms());
            }
            // A 429 rejected the cancel: repeating a cancel is safe.
            OrderOutcome::Rejected(e)
                if ready
                    .oneshot()
                    .wait_out_429(&e, &mut waits, &format!("cancelling the OCO on {symbol} again"))
                    .await =>
            {
                continue;
            }
            // Unknown or refused: the legs are read back just below either way.
            _ => {}
        }
        break;
    }
    for leg in &legs {
        if let Ok(o) = rest.query_order(symbol, leg.client_order_id.as_str()).await {
            ready.core.on_exchange_order(&o, now_ms());
        }
    }
    if let Ok(a) = rest.account().await {
        ready.core.state.set_balances(a.balances, true);
    }
    Some((sl, tp))
}

/// Protects again, at the same prices, whatever crbot still holds after a sell.
async fn reprotect_rest(
    ready: &mut Ready,
    symbol: &Symbol,
    sl: Price,
    tp: Price,
    log: &mut Vec<String>,
) -> Result<(), String> {
    if let Ok(a) = ready.rest().account().await {
        ready.core.state.set_balances(a.balances, true);
    }
    match ready.core.prepare_reprotection(symbol, sl, tp, now_ms()) {
        Some(request) => {
            ready
                .oneshot()
                .send_oco(request, &format!("the rest of {symbol} is held but"), log)
                .await
        }
        None => Ok(()),
    }
}

fn protective_json(ready: &Ready, entry: &ClientOrderId) -> Vec<serde_json::Value> {
    let Some(e) = ready.core.state.orders.get(entry) else {
        return Vec::new();
    };
    ready
        .core
        .state
        .orders
        .values()
        .filter(|o| {
            matches!(o.purpose, OrderPurpose::StopLoss | OrderPurpose::TakeProfit)
                && o.symbol == e.symbol
                && o.created_ms >= e.created_ms
        })
        .map(order_json)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(qty: &str, limit: Option<&str>) -> OrderArgs {
        OrderArgs {
            side: OrderSide::Buy,
            symbol: "btcusdt".into(),
            qty: qty.into(),
            limit: limit.map(str::to_string),
            stop_loss: Some("90000".into()),
            take_profit: Some("110000".into()),
            dry_run: false,
        }
    }

    #[test]
    fn a_ticket_without_limit_is_market_and_the_symbol_is_upper_cased() {
        let t = ticket_from_args(&args("0.001", None)).expect("valid");
        assert_eq!(t.kind, TicketKind::Market);
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
        assert_eq!(t.side, Side::Buy);
        assert_eq!(t.stop_loss.map(|p| p.to_string()), Some("90000".into()));
    }

    #[test]
    fn a_limit_ticket_carries_its_price() {
        let t = ticket_from_args(&args("0.001", Some("96000.5"))).expect("valid");
        assert_eq!(t.limit_price().map(|p| p.to_string()), Some("96000.5".into()));
    }

    #[test]
    fn malformed_numbers_are_usage_errors_naming_the_field() {
        for (qty, limit, field) in [
            ("lots", None, "QTY"),
            ("-1", None, "QTY"),
            ("1", Some("cheap"), "--limit"),
        ] {
            let e = ticket_from_args(&args(qty, limit)).expect_err("must be refused");
            assert_eq!(e.code, exit::USAGE);
            assert!(e.line.contains(field), "{}", e.line);
        }
    }

    #[test]
    fn a_denial_is_printed_without_repeating_its_code() {
        let d = Denial::MissingStopLoss;
        let stripped = crate::api::orders::strip_code(&d);
        assert!(!stripped.starts_with("MISSING_STOP_LOSS"));
        assert!(!stripped.is_empty());
    }
}
