//! Price alerts: "tell me when BTCUSDT goes above 100000". Set from the screen (`:alert`,
//! the watchlist's key) or any client of the engine, checked after every input against the
//! symbol's last price, and fired once, on the crossing: a log line (the screen rings its
//! bell and marks the symbol), and the webhook when alerts are on. A fired alert is not
//! re-armed: it stays listed as fired, with the price that crossed and when, until it is
//! cleared; to be told again, set it again.
//!
//! Owns: the alerts (in `EngineState::price_alerts`, saved in the journal's `meta` beside the
//! watchlist at every change). Must not: trade; an alert only tells.

use crate::alerts::{Alert, AlertKind, Severity};
use crate::domain::{Price, Symbol, display_price};
use crate::engine::snapshot::{Crossing, LogKind, LogLevel, PriceAlert};

use super::{Effect, Engine};

impl Engine {
    /// A new alert. Refused (a log line says why) for a symbol the exchange does not list, or
    /// a price the last price is already past: that alert could never cross. The symbol joins
    /// the watchlist, which is what brings its prices.
    pub(super) fn set_price_alert(&mut self, symbol: Symbol, crossing: Crossing, price: Price, now: i64) {
        if !self.core.state.rules.contains_key(&symbol) {
            let text = format!("alert on {symbol} not set: the exchange has no such symbol");
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
            return;
        }
        let tick = self.tick(&symbol);
        let shown = display_price(price.value(), tick);
        if let Some(last) = self.last_price(&symbol)
            && crossing.reached(last, price)
        {
            let text = format!(
                "alert on {symbol} not set: the last price {} is already {} {shown}",
                display_price(last.value(), tick),
                crossing.word()
            );
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
            return;
        }
        if !self.core.state.watchlist.contains(&symbol) {
            self.add_symbol(symbol.clone(), now);
        }
        let alerts = &mut self.core.state.price_alerts;
        alerts.retain(|a| !(a.symbol == symbol && a.crossing == crossing && a.price == price));
        alerts.push(PriceAlert {
            symbol: symbol.clone(),
            crossing,
            price,
            fired: None,
        });
        let text = format!("alert set: {symbol} {} {shown}", crossing.word());
        self.core.state.log(now, LogLevel::Info, LogKind::System, text);
        self.save_price_alerts(now);
    }

    /// Clears the alerts of `symbol` (armed or fired), or with `None` every fired one.
    pub(super) fn clear_price_alerts(&mut self, symbol: Option<Symbol>, now: i64) {
        let before = self.core.state.price_alerts.len();
        match &symbol {
            Some(s) => self.core.state.price_alerts.retain(|a| &a.symbol != s),
            None => self.core.state.price_alerts.retain(|a| a.fired.is_none()),
        }
        let cleared = before - self.core.state.price_alerts.len();
        let what = crate::domain::plural::count(cleared, "alert", "alerts");
        let text = match symbol {
            Some(s) => format!("{what} on {s} cleared"),
            None => format!("{what} that fired cleared"),
        };
        self.core.state.log(now, LogLevel::Info, LogKind::System, text);
        if cleared > 0 {
            self.save_price_alerts(now);
        }
    }

    /// After every input: each armed alert whose symbol's last price reached its price fires.
    /// Nothing is allocated unless an alert fires (this runs on every market message).
    pub(super) fn check_price_alerts(&mut self, now: i64) {
        let mut fired = Vec::new();
        for i in 0..self.core.state.price_alerts.len() {
            let a = &self.core.state.price_alerts[i];
            if a.fired.is_some() {
                continue;
            }
            let Some(last) = self.last_price(&a.symbol) else {
                continue;
            };
            if a.crossing.reached(last, a.price) {
                self.core.state.price_alerts[i].fired = Some((now, last));
                fired.push((self.core.state.price_alerts[i].clone(), last));
            }
        }
        if fired.is_empty() {
            return;
        }
        for (a, last) in fired {
            let tick = self.tick(&a.symbol);
            let text = format!(
                "ALERT {} {} {}: last {}",
                a.symbol,
                a.crossing.word(),
                display_price(a.price.value(), tick),
                display_price(last.value(), tick)
            );
            self.core
                .state
                .log(now, LogLevel::Warn, LogKind::System, text.clone());
            if self.alerts.is_some() {
                let mut alert = Alert::new(now, AlertKind::Price, Severity::Warning, text);
                alert.symbol = Some(a.symbol.to_string());
                self.emit(Effect::Alert(alert));
            }
        }
        self.save_price_alerts(now);
    }

    /// The symbol's price tick, when its rules are known (prices are shown at it).
    fn tick(&self, symbol: &Symbol) -> Option<rust_decimal::Decimal> {
        let rules = self.core.state.rules.get(symbol)?;
        rules.filters.price.as_ref().map(|f| f.tick_size)
    }

    /// The last trade price (the 24 h ticker's), else the quote's mid.
    fn last_price(&self, symbol: &Symbol) -> Option<Price> {
        let state = &self.core.state;
        state
            .tickers
            .get(symbol)
            .map(|t| t.last)
            .or_else(|| state.quotes.get(symbol).map(|q| q.mid()))
    }

    fn save_price_alerts(&mut self, now: i64) {
        if let Err(e) = self.core.save_price_alerts() {
            let text = format!("price alerts not saved ({e}); they will not survive a restart");
            self.core.state.log(now, LogLevel::Warn, LogKind::System, text);
        }
    }
}
