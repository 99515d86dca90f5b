//! The `:` command line: what a typed line means to the screen.
//!
//! Owns: parsing one line into a [`Typed`] request. Must not: send anything. An order typed here
//! only fills the order ticket, which then goes through the same risk verdict, review and
//! confirmation as one typed field by field; the kill and the limits go through the same
//! actions and commands as their keys.

use rust_decimal::Decimal;

use crate::domain::Price;
use crate::engine::snapshot::{Crossing, LimitName};

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Fill the ticket: symbol, side, type, amount, price, stop-loss, take-profit (the ticket's
    /// field order). An empty price on a LIMIT ticket starts at the market.
    Ticket([String; 7]),
    Kill,
    Flatten,
    Rearm,
    Quit,
    Help,
    Limit(LimitName, Decimal),
    Add(String),
    Remove(String),
    /// `alert SYMBOL above|below PRICE`.
    Alert(String, Crossing, Decimal),
    /// `alert clear [SYMBOL]`: the symbol's alerts, or every one that fired.
    ClearAlerts(Option<String>),
    /// `alerts` (or `alert` alone): every alert on the status line.
    ListAlerts,
    /// `theme NAME`.
    Theme(String),
    /// `protect SYMBOL [SL TP]`: offer a protective OCO on crbot's position in SYMBOL, at the
    /// given stop-loss and take-profit or (without them) at the protection it lost.
    Protect(String, Option<(Price, Price)>),
}

/// The commands, for the error message and the help.
pub const COMMANDS: &str =
    "buy, sell, kill, flatten, resume, limit, add, rm, alert, alerts, protect, theme, help, quit";

/// Parses one line (without the leading `:`).
///
/// `buy BTCUSDT 0.01 --limit 97000 --stop-loss 95000 --take-profit 99000` (as on the command
/// line of `crbot order`, a MARKET order without a limit price; also `@97000`, `sl 95000`,
/// `tp 99000`, `market`, and a quote amount `100 USDT`), `kill`, `flatten`, `resume`,
/// `limit daily 4` (`daily`, `drawdown`, `trades`, `size`, `rr`), `add ADAUSDT`, `rm ADAUSDT`,
/// `help`, `quit`.
pub fn parse(line: &str) -> Result<Typed, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Err(format!("type a command: {COMMANDS}"));
    };
    let no_args = |t: Typed| {
        if rest.is_empty() {
            Ok(t)
        } else {
            Err(format!("`{first}` takes no arguments"))
        }
    };
    match first.to_ascii_lowercase().as_str() {
        "buy" => order("BUY", rest),
        "sell" => order("SELL", rest),
        "kill" => no_args(Typed::Kill),
        "flatten" => no_args(Typed::Flatten),
        "resume" | "rearm" => no_args(Typed::Rearm),
        "quit" | "q" => no_args(Typed::Quit),
        "help" | "?" => no_args(Typed::Help),
        "limit" => limit(rest),
        "add" => one_symbol(rest).map(Typed::Add),
        "rm" | "remove" => one_symbol(rest).map(Typed::Remove),
        "alert" if rest.is_empty() => Ok(Typed::ListAlerts),
        "alerts" => no_args(Typed::ListAlerts),
        "alert" => alert(rest),
        "protect" => protect(rest),
        "theme" => match rest {
            [name] => Ok(Typed::Theme(name.to_ascii_lowercase())),
            _ => Err(format!("theme NAME: {}", crate::ui::theme::THEME_NAMES)),
        },
        other => Err(format!("unknown command `{other}`: {COMMANDS}")),
    }
}

fn one_symbol(rest: &[&str]) -> Result<String, String> {
    match rest {
        [s] => Ok(s.to_ascii_uppercase()),
        _ => Err("give one symbol, e.g. `add ADAUSDT`".into()),
    }
}

/// `alert SYMBOL above|below PRICE`, `alert clear [SYMBOL]`.
fn alert(rest: &[&str]) -> Result<Typed, String> {
    let usage = "alert SYMBOL above|below PRICE (e.g. `alert BTCUSDT above 100000`), or alert clear [SYMBOL]";
    match rest {
        [clear] if clear.eq_ignore_ascii_case("clear") => Ok(Typed::ClearAlerts(None)),
        [clear, symbol] if clear.eq_ignore_ascii_case("clear") => {
            Ok(Typed::ClearAlerts(Some(symbol.to_ascii_uppercase())))
        }
        [symbol, way, price] => {
            let crossing = match way.to_ascii_lowercase().as_str() {
                "above" | ">" | ">=" => Crossing::Above,
                "below" | "<" | "<=" => Crossing::Below,
                other => return Err(format!("`{other}` is not above or below: {usage}")),
            };
            match Decimal::from_str_exact(price) {
                Ok(p) if p > Decimal::ZERO => Ok(Typed::Alert(symbol.to_ascii_uppercase(), crossing, p)),
                _ => Err(format!("`{price}` is not a positive price")),
            }
        }
        _ => Err(usage.into()),
    }
}

/// `protect SYMBOL [SL TP]`.
fn protect(rest: &[&str]) -> Result<Typed, String> {
    let usage = "protect SYMBOL [STOP-LOSS TAKE-PROFIT], e.g. `protect BTCUSDT 95000 100000`";
    let price = |text: &str| match text.parse::<Price>() {
        Ok(p) if !p.value().is_zero() => Ok(p),
        _ => Err(format!("`{text}` is not a positive price")),
    };
    match rest {
        [symbol] => Ok(Typed::Protect(symbol.to_ascii_uppercase(), None)),
        [symbol, sl, tp] => Ok(Typed::Protect(
            symbol.to_ascii_uppercase(),
            Some((price(sl)?, price(tp)?)),
        )),
        _ => Err(usage.into()),
    }
}

fn limit(rest: &[&str]) -> Result<Typed, String> {
    let [name, value] = rest else {
        return Err("limit NAME VALUE, e.g. `limit daily 4` (daily, drawdown, trades, size, rr)".into());
    };
    let name = match name.to_ascii_lowercase().as_str() {
        "daily" | "daily-loss" => LimitName::DailyLoss,
        "drawdown" | "dd" => LimitName::Drawdown,
        "trades" => LimitName::TradesPerDay,
        "size" | "position-size" => LimitName::PositionSize,
        "rr" | "risk-reward" => LimitName::MinRiskReward,
        other => return Err(format!("no limit `{other}`: daily, drawdown, trades, size, rr")),
    };
    match Decimal::from_str_exact(value) {
        Ok(v) if v > Decimal::ZERO => Ok(Typed::Limit(name, v)),
        _ => Err(format!("`{value}` is not a positive number")),
    }
}

/// `buy|sell SYMBOL AMOUNT [ASSET] [options]`: the fields of the ticket, as typed. Values are
/// not judged here: the ticket's own parsing and the risk engine do that, with their messages.
fn order(side: &str, rest: &[&str]) -> Result<Typed, String> {
    let usage = || {
        format!(
            "{} SYMBOL QTY [--limit P | --market] [--stop-loss P] [--take-profit P]",
            side.to_lowercase()
        )
    };
    let [symbol, amount, options @ ..] = rest else {
        return Err(usage());
    };
    let mut amount = (*amount).to_string();
    let mut options = options;
    // A quote amount: `100 USDT`.
    if let Some((unit, more)) = options.split_first()
        && !unit.starts_with('-')
        && !unit.starts_with('@')
        && unit.chars().all(|c| c.is_ascii_alphabetic())
        && !is_keyword(unit)
    {
        amount = format!("{amount} {}", unit.to_ascii_uppercase());
        options = more;
    }
    // As on `crbot order`'s command line: MARKET unless a limit price is given.
    let (mut market, mut price, mut stop, mut take) = (false, String::new(), String::new(), String::new());
    let mut i = 0;
    while i < options.len() {
        let word = options[i];
        let value = options.get(i + 1).map(|v| (*v).to_string());
        let mut take_value = |slot: &mut String| -> Result<(), String> {
            *slot = value.clone().ok_or_else(|| format!("`{word}` needs a price"))?;
            i += 1;
            Ok(())
        };
        match word.to_ascii_lowercase().as_str() {
            "--market" | "market" => market = true,
            "--limit" | "limit" => take_value(&mut price)?,
            "--stop-loss" | "sl" => take_value(&mut stop)?,
            "--take-profit" | "tp" => take_value(&mut take)?,
            w if w.starts_with('@') && w.len() > 1 => price = w[1..].to_string(),
            other => return Err(format!("`{other}` is not understood: {}", usage())),
        }
        i += 1;
    }
    if market && !price.is_empty() {
        return Err("a MARKET order has no limit price: give --limit or --market, not both".into());
    }
    let kind = if price.is_empty() { "MARKET" } else { "LIMIT" };
    Ok(Typed::Ticket([
        symbol.to_ascii_uppercase(),
        side.to_string(),
        kind.to_string(),
        amount,
        price,
        stop,
        take,
    ]))
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "market" | "limit" | "sl" | "tp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(line: &str) -> [String; 7] {
        match parse(line) {
            Ok(Typed::Ticket(f)) => f,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn an_order_fills_the_ticket_fields_in_the_cli_and_the_short_forms() {
        assert_eq!(
            ticket("buy btcusdt 0.01 --limit 97000 --stop-loss 95000 --take-profit 99000"),
            ["BTCUSDT", "BUY", "LIMIT", "0.01", "97000", "95000", "99000"].map(String::from)
        );
        assert_eq!(
            ticket("sell ETHUSDT 0.5 @3100 sl 3200 tp 2900"),
            ["ETHUSDT", "SELL", "LIMIT", "0.5", "3100", "3200", "2900"].map(String::from)
        );
        assert_eq!(
            ticket("buy SOLUSDT 100 usdt market sl 170"),
            ["SOLUSDT", "BUY", "MARKET", "100 USDT", "", "170", ""].map(String::from)
        );
        // No limit price: a MARKET order, as `crbot order` reads the same words.
        assert_eq!(
            ticket("buy BTCUSDT 0.001 --stop-loss 95000 --take-profit 100000"),
            ["BTCUSDT", "BUY", "MARKET", "0.001", "", "95000", "100000"].map(String::from)
        );
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Err(e) => e,
            Ok(t) => panic!("{line} parsed as {t:?}"),
        }
    }

    #[test]
    fn every_mistake_says_what_is_wrong() {
        assert!(err("buy BTCUSDT").starts_with("buy SYMBOL QTY"));
        assert!(err("buy BTCUSDT 1 --limit").contains("`--limit` needs a price"));
        assert!(err("buy BTCUSDT 1 --limit 5 --market").contains("not both"));
        assert!(err("buy BTCUSDT 1 --fast").contains("`--fast` is not understood"));
        assert!(err("launch").contains("unknown command `launch`"));
        assert!(err("kill now").contains("takes no arguments"));
        assert!(err("limit daily -1").contains("not a positive number"));
        assert!(err("limit speed 4").contains("no limit `speed`"));
        assert!(parse("   ").is_err());
    }

    #[test]
    fn protect_takes_a_symbol_and_optionally_both_prices() {
        assert_eq!(
            parse("protect btcusdt"),
            Ok(Typed::Protect("BTCUSDT".into(), None))
        );
        let price = |t: &str| t.parse::<Price>().expect("a price");
        assert_eq!(
            parse("protect BTCUSDT 95000 100000.5"),
            Ok(Typed::Protect(
                "BTCUSDT".into(),
                Some((price("95000"), price("100000.5")))
            ))
        );
        assert!(err("protect").starts_with("protect SYMBOL"));
        assert!(err("protect BTCUSDT 95000").starts_with("protect SYMBOL"));
        assert!(err("protect BTCUSDT 0 100000").contains("`0` is not a positive price"));
        assert!(err("protect BTCUSDT 95000 lots").contains("`lots` is not a positive price"));
    }

    #[test]
    fn the_other_commands() {
        assert_eq!(parse("kill"), Ok(Typed::Kill));
        assert_eq!(
            parse("limit daily 4"),
            Ok(Typed::Limit(LimitName::DailyLoss, Decimal::new(4, 0)))
        );
        assert_eq!(
            parse("limit rr 1.5"),
            Ok(Typed::Limit(LimitName::MinRiskReward, Decimal::new(15, 1)))
        );
        assert_eq!(parse("add adausdt"), Ok(Typed::Add("ADAUSDT".into())));
        assert_eq!(parse("rm ADAUSDT"), Ok(Typed::Remove("ADAUSDT".into())));
        assert_eq!(parse("flatten"), Ok(Typed::Flatten));
        assert_eq!(parse("q"), Ok(Typed::Quit));
        assert_eq!(
            parse("alert btcusdt above 100000"),
            Ok(Typed::Alert(
                "BTCUSDT".into(),
                Crossing::Above,
                Decimal::new(100_000, 0)
            ))
        );
        assert_eq!(
            parse("alert ETHUSDT below 2999.5"),
            Ok(Typed::Alert(
                "ETHUSDT".into(),
                Crossing::Below,
                Decimal::new(29_995, 1)
            ))
        );
        assert_eq!(parse("alert clear"), Ok(Typed::ClearAlerts(None)));
        assert_eq!(
            parse("alert clear ethusdt"),
            Ok(Typed::ClearAlerts(Some("ETHUSDT".into())))
        );
        assert_eq!(parse("theme Light"), Ok(Typed::Theme("light".into())));
        assert!(err("alert BTCUSDT over 1").contains("not above or below"));
        assert!(err("alert BTCUSDT above -1").contains("not a positive price"));
        assert!(err("alert BTCUSDT").starts_with("alert SYMBOL above|below PRICE"));
        assert_eq!(parse("alerts"), Ok(Typed::ListAlerts));
        assert_eq!(parse("alert"), Ok(Typed::ListAlerts));
    }
}
