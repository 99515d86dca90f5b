//! Stage one of the kill switch over the `Broker` trait, against a scripted broker (no
//! network): a symbol whose cancel-all answers a 5xx (outcome unknown) is verified by the
//! exchange's list of open orders, its straggler cancelled again and the outcome reported per
//! symbol; a straggler that never goes is reported as still open, never as cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crbot::domain::broker::{
    Account, BookQuote, BrokerError, Cancelled, ListReport, OcoRequest, OrderOutcome, OrderReport, Placed,
};
use crbot::domain::{Fill, Notional, OrderRequest, OrderStatus, OrderType, Side, Symbol, TimeInForce};
use crbot::engine::kill::{KillEvent, SweepConfig, sweep};
use crbot::engine::snapshot::{KillLine, KillStage};
use crbot::risk::{Broker, RiskApproved};
use tokio::sync::mpsc;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn open_order(symbol: &str, order_id: u64) -> OrderReport {
    OrderReport {
        symbol: sym(symbol),
        order_id,
        order_list_id: None,
        client_order_id: format!("cr-{order_id}"),
        orig_client_order_id: None,
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        status: OrderStatus::New,
        price: Some("100".parse().unwrap()),
        stop_price: None,
        orig_qty: "1".parse().unwrap(),
        executed_qty: "0".parse().unwrap(),
        cumulative_quote_qty: Notional::ZERO,
        time_ms: 0,
        update_ms: 0,
    }
}

fn cancelled(symbol: &str, order_id: u64) -> OrderOutcome<Vec<Cancelled>> {
    let mut o = open_order(symbol, order_id);
    o.status = OrderStatus::Canceled;
    OrderOutcome::Done(vec![Cancelled::Order(o)])
}

/// What a 503 on a cancel-all becomes: the exchange may or may not have acted.
fn server_error() -> OrderOutcome<Vec<Cancelled>> {
    OrderOutcome::from_result(Err(BrokerError::Server5xx {
        status: 503,
        msg: "Service unavailable".into(),
    }))
}

/// Answers in the order given; once a symbol's cancel-all script is used up it answers
/// "nothing open" (`-2011`), and an empty open-orders script answers "none open".
#[derive(Default)]
struct Script {
    cancel_all: BTreeMap<Symbol, VecDeque<OrderOutcome<Vec<Cancelled>>>>,
    open_orders: VecDeque<Vec<OrderReport>>,
    /// Every cancel-all sent, in order.
    cancels_sent: Vec<Symbol>,
    open_orders_reads: usize,
}

#[derive(Clone, Default)]
struct ScriptedBroker(Arc<Mutex<Script>>);

impl ScriptedBroker {
    fn cancel_all_answers(&self, symbol: &str, answers: Vec<OrderOutcome<Vec<Cancelled>>>) {
        self.0
            .lock()
            .unwrap()
            .cancel_all
            .insert(sym(symbol), answers.into());
    }

    fn open_orders_answers(&self, answers: Vec<Vec<OrderReport>>) {
        self.0.lock().unwrap().open_orders = answers.into();
    }

    fn cancels_sent(&self, symbol: &str) -> usize {
        let s = sym(symbol);
        self.0
            .lock()
            .unwrap()
            .cancels_sent
            .iter()
            .filter(|c| **c == s)
            .count()
    }
}

fn not_scripted<T>() -> Result<T, BrokerError> {
    Err(BrokerError::Connect(
        "not part of the kill switch's script".into(),
    ))
}

impl Broker for ScriptedBroker {
    async fn place_order(&self, _: &RiskApproved<OrderRequest>) -> OrderOutcome<Placed> {
        panic!("stage one never places an order")
    }

    async fn place_oco(&self, _: &RiskApproved<OcoRequest>) -> OrderOutcome<ListReport> {
        panic!("stage one never places an order")
    }

    async fn cancel_order(&self, _: &Symbol, _: &str) -> OrderOutcome<OrderReport> {
        OrderOutcome::Rejected(BrokerError::Connect("the sweep cancels per symbol".into()))
    }

    async fn cancel_all(&self, symbol: &Symbol) -> OrderOutcome<Vec<Cancelled>> {
        let mut s = self.0.lock().unwrap();
        s.cancels_sent.push(symbol.clone());
        s.cancel_all
            .get_mut(symbol)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| {
                OrderOutcome::Rejected(BrokerError::Api {
                    http_status: 400,
                    code: -2011,
                    msg: "Unknown order sent.".into(),
                })
            })
    }

    async fn query_order(&self, _: &Symbol, _: &str) -> Result<OrderReport, BrokerError> {
        not_scripted()
    }

    async fn open_orders(&self, symbol: Option<&Symbol>) -> Result<Vec<OrderReport>, BrokerError> {
        assert!(symbol.is_none(), "the sweep verifies every symbol at once");
        let mut s = self.0.lock().unwrap();
        s.open_orders_reads += 1;
        Ok(s.open_orders.pop_front().unwrap_or_default())
    }

    async fn open_order_lists(&self) -> Result<Vec<ListReport>, BrokerError> {
        not_scripted()
    }

    async fn account(&self) -> Result<Account, BrokerError> {
        not_scripted()
    }

    async fn my_trades(&self, _: &Symbol, _: Option<u64>) -> Result<Vec<Fill>, BrokerError> {
        not_scripted()
    }

    async fn my_trades_of_order(&self, _: &Symbol, _: u64, _: Option<u64>) -> Result<Vec<Fill>, BrokerError> {
        not_scripted()
    }

    async fn book_quote(&self, _: &Symbol) -> Result<BookQuote, BrokerError> {
        not_scripted()
    }

    fn cancel_hold_until_ms(&self) -> Option<i64> {
        None
    }
}

fn quick() -> SweepConfig {
    SweepConfig {
        round_delay: Duration::ZERO,
        ..SweepConfig::default()
    }
}

/// The progress lines of one symbol, in order.
fn lines_of(events: &[KillEvent], symbol: &str) -> Vec<(Option<bool>, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            KillEvent::Line {
                symbol: s,
                ok,
                outcome,
            } if s.as_str() == symbol => Some((*ok, outcome.clone())),
            _ => None,
        })
        .collect()
}

fn drain(rx: &mut mpsc::UnboundedReceiver<KillEvent>) -> Vec<KillEvent> {
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

#[tokio::test]
async fn an_unknown_cancel_is_verified_and_its_straggler_cancelled_again_per_symbol() {
    let broker = ScriptedBroker::default();
    // BTCUSDT's cancel-all answers 503 on each of the round's attempts; the order is still
    // there when the exchange is asked, and the second cancel takes it.
    broker.cancel_all_answers(
        "BTCUSDT",
        vec![
            server_error(),
            server_error(),
            server_error(),
            cancelled("BTCUSDT", 7),
        ],
    );
    broker.cancel_all_answers("ETHUSDT", vec![cancelled("ETHUSDT", 8)]);
    broker.open_orders_answers(vec![vec![open_order("BTCUSDT", 7)], vec![]]);
    let known: BTreeSet<Symbol> = [sym("BTCUSDT"), sym("ETHUSDT")].into_iter().collect();
    let (tx, mut rx) = mpsc::unbounded_channel();

    let report = sweep(&broker, &known, &quick(), &tx).await;
    let events = drain(&mut rx);

    assert_eq!(
        broker.cancels_sent("BTCUSDT"),
        4,
        "three attempts in the first round, one for the straggler"
    );
    assert_eq!(broker.cancels_sent("ETHUSDT"), 1);
    assert_eq!(broker.0.lock().unwrap().open_orders_reads, 2);
    let btc = lines_of(&events, "BTCUSDT");
    let texts: Vec<&str> = btc.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts[0], "cancelling");
    assert!(
        texts[1].starts_with("outcome unknown (exchange server error (HTTP 503)")
            && texts[1].ends_with("; verifying"),
        "{texts:?}"
    );
    assert_eq!(
        texts[2..],
        ["1 still open; retrying", "cancelling", "1 order cancelled"]
    );
    assert_eq!(
        btc[1].0, None,
        "an unknown outcome is not a failure, nor a success"
    );
    assert_eq!(btc.last().map(|l| l.0), Some(Some(true)));
    assert_eq!(
        lines_of(&events, "ETHUSDT"),
        [
            (None, "cancelling".to_string()),
            (Some(true), "1 order cancelled".to_string())
        ]
    );
    let stages: Vec<KillStage> = events
        .iter()
        .filter_map(|e| match e {
            KillEvent::Stage(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [KillStage::Cancelling, KillStage::Verifying, KillStage::Cancelled]
    );
    assert!(report.ok);
    assert_eq!(report.cancelled, 2);
    assert!(report.still_open.is_empty());
    assert_eq!(
        report.summary,
        "2 orders cancelled on 2 symbols; the exchange shows nothing open"
    );
    assert_eq!(
        report.lines,
        [
            KillLine {
                symbol: sym("BTCUSDT"),
                ok: Some(true),
                outcome: "1 order cancelled".into()
            },
            KillLine {
                symbol: sym("ETHUSDT"),
                ok: Some(true),
                outcome: "1 order cancelled".into()
            }
        ]
    );
    assert!(matches!(events.last(), Some(KillEvent::Done { ok: true, .. })));
}

#[tokio::test]
async fn a_straggler_that_never_goes_is_reported_still_open_not_cancelled() {
    let broker = ScriptedBroker::default();
    broker.cancel_all_answers("BTCUSDT", vec![server_error(); 12]);
    let straggler = vec![open_order("BTCUSDT", 7)];
    broker.open_orders_answers(vec![straggler.clone(), straggler.clone(), straggler]);
    let known: BTreeSet<Symbol> = [sym("BTCUSDT")].into_iter().collect();
    let config = SweepConfig {
        max_rounds: 3,
        ..quick()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();

    let report = sweep(&broker, &known, &config, &tx).await;
    let events = drain(&mut rx);

    assert_eq!(
        broker.cancels_sent("BTCUSDT"),
        12,
        "three attempts per round, four rounds of cancels"
    );
    assert!(!report.ok);
    assert_eq!(report.still_open, [sym("BTCUSDT")]);
    assert_eq!(report.summary, "orders still open on BTCUSDT");
    assert_eq!(
        report.lines,
        [KillLine {
            symbol: sym("BTCUSDT"),
            ok: Some(false),
            outcome: "orders still open after every retry".into()
        }]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, KillEvent::Stage(KillStage::Cancelled))),
        "never 'all orders cancelled' without an empty book"
    );
    assert!(matches!(events.last(), Some(KillEvent::Done { ok: false, .. })));
}
