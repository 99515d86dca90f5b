//! The watchlist's symbol field: a typed name checked against the exchange's symbols (the
//! snapshot's list, from its `exchangeInfo`) before it is sent, and completed from them on Tab.
//!
//! Owns: the check and the completion. Must not: send anything; the engine checks the symbol
//! again (an attached screen has no list, and the engine's rules are the authority).

use crate::domain::{Price, Symbol, display_price};
use crate::engine::snapshot::{Command, Crossing, PriceAlert, Snapshot};

/// The most candidate names a completion hint lists.
const HINT_NAMES: usize = 6;

/// The symbol a typed name means, or why it cannot be watched. With no list (the rules are not
/// loaded yet, or the screen is attached to an engine elsewhere) any well-formed name passes:
/// the engine decides.
pub fn check(snap: &Snapshot, text: &str) -> Result<Symbol, String> {
    let text = text.trim().to_ascii_uppercase();
    if text.is_empty() {
        return Err("type a symbol, e.g. ADAUSDT (Tab completes)".into());
    }
    let symbol = Symbol::new(&text).map_err(|e| e.to_string())?;
    if snap.symbols.is_empty() || snap.symbols.binary_search(&symbol).is_ok() {
        return Ok(symbol);
    }
    let near = matches(snap, &text[..text.len().min(3)]);
    let hint = if near.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", list(&near))
    };
    Err(format!("{text} is not a symbol of the exchange{hint}"))
}

/// Tab in the symbol field: the longest name every symbol starting with `text` shares, and a
/// hint listing them when more than one does (or saying why nothing completes).
pub fn complete(snap: &Snapshot, text: &str) -> (String, Option<String>) {
    let typed = text.trim().to_ascii_uppercase();
    if snap.symbols.is_empty() {
        return (
            typed,
            Some("the exchange's symbols are not known here yet".into()),
        );
    }
    let found = matches(snap, &typed);
    match found.as_slice() {
        [] => {
            let hint = format!("no symbol of the exchange starts with {typed}");
            (typed, Some(hint))
        }
        [one] => (one.as_str().to_string(), None),
        [first, rest @ ..] => {
            let mut common = first.as_str().to_string();
            for s in rest {
                let shared = common
                    .chars()
                    .zip(s.as_str().chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                common.truncate(shared);
            }
            let hint = format!("{} symbols: {}", found.len(), list(&found));
            (common, Some(hint))
        }
    }
}

/// The exchange's symbols starting with `prefix`, in order.
fn matches<'a>(snap: &'a Snapshot, prefix: &str) -> Vec<&'a Symbol> {
    let start = snap.symbols.partition_point(|s| s.as_str() < prefix);
    snap.symbols[start..]
        .iter()
        .take_while(|s| s.as_str().starts_with(prefix))
        .collect()
}

fn list(names: &[&Symbol]) -> String {
    let shown: Vec<&str> = names.iter().take(HINT_NAMES).map(|s| s.as_str()).collect();
    if names.len() > HINT_NAMES {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// `:alert SYMBOL above|below PRICE`: the command and the status line, or why not (the symbol
/// is not the exchange's, the price is not one, or the last price is past it already: that
/// alert could never cross).
pub fn alert_command(
    snap: &Snapshot,
    text: &str,
    crossing: Crossing,
    price: rust_decimal::Decimal,
) -> Result<(Command, String), String> {
    let symbol = check(snap, text)?;
    let price = Price::try_positive(price).map_err(|e| e.to_string())?;
    let tick = snap.tick(&symbol);
    let shown = display_price(price.value(), tick);
    if let Some(last) = snap
        .watchlist
        .iter()
        .find(|w| w.symbol == symbol)
        .and_then(|w| w.last)
        && crossing.reached(last, price)
    {
        return Err(format!(
            "{symbol} is {} {shown} already (last {}): that alert could never cross",
            crossing.word(),
            display_price(last.value(), tick)
        ));
    }
    let line = format!("alert: {symbol} {} {shown}", crossing.word());
    Ok((
        Command::SetPriceAlert {
            symbol,
            crossing,
            price,
        },
        line,
    ))
}

/// The time of the newest alert firing in `snap` (0 with none).
pub fn newest_firing(snap: &Snapshot) -> i64 {
    snap.price_alerts
        .iter()
        .filter_map(|a| a.fired.map(|(at, _)| at))
        .max()
        .unwrap_or(0)
}

/// A line for the alerts that fired after `seen` (which moves to the newest), if any: the
/// screen rings its bell and shows it.
pub fn fired_since(seen: &mut i64, snap: &Snapshot) -> Option<String> {
    let new: Vec<String> = snap
        .price_alerts
        .iter()
        .filter(|a| a.fired.is_some_and(|(at, _)| at > *seen))
        .map(|a| waits_for(snap, a))
        .collect();
    *seen = (*seen).max(newest_firing(snap));
    (!new.is_empty()).then(|| format!("ALERT {}", new.join("; ")))
}

/// Every price alert on one line, for `:alerts` (the watchlist lists them too, where it has
/// the room): `BTCUSDT above 100000.00 armed; ETHUSDT below 2900.00 FIRED 12:34 at 2899.50`.
pub fn alerts_line(snap: &Snapshot) -> String {
    if snap.price_alerts.is_empty() {
        return "no price alerts: :alert SYMBOL above|below PRICE sets one".into();
    }
    let items: Vec<String> = snap
        .price_alerts
        .iter()
        .map(|a| {
            let state = match a.fired {
                None => "armed".to_string(),
                Some((ms, last)) => format!(
                    "FIRED {} at {}",
                    chrono::DateTime::from_timestamp_millis(ms)
                        .map_or_else(|| "--:--".into(), |t| t.format("%H:%M").to_string()),
                    display_price(last.value(), snap.tick(&a.symbol))
                ),
            };
            format!("{} {state}", waits_for(snap, a))
        })
        .collect();
    format!(
        "{}: {}",
        crate::domain::plural::count(items.len(), "alert", "alerts"),
        items.join("; ")
    )
}

/// What an alert waits for, at its symbol's tick: `BTCUSDT above 100000.00`.
fn waits_for(snap: &Snapshot, a: &PriceAlert) -> String {
    let price = display_price(a.price.value(), snap.tick(&a.symbol));
    format!("{} {} {price}", a.symbol, a.crossing.word())
}
