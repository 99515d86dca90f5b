//! The market-stream and user-data tasks against the local exchange (`exchange::sim`), with
//! its fault switches: dropped connections (reconnect, resubscribe, resync by REST, no lost
//! fill), malformed frames (counted, not fatal), an order answered late (resolved by the
//! user-data stream, not resent).

use std::sync::Arc;
use std::time::Duration;

use crbot::domain::broker::OrderOutcome;
use crbot::domain::{ClientOrderId, OrderRequest, OrderStatus, OrderType, Qty, Side, Symbol};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::events::{MarketEvent, StreamStatus, UserEvent};
use crbot::exchange::binance::limits::NoBanStore;
use crbot::exchange::binance::market::{MarketStreamConfig, spawn_market_stream};
use crbot::exchange::binance::market_queue::{self, MarketReceiver};
use crbot::exchange::binance::reconcile::{FillDedup, ResyncRequest, resync};
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::{Credentials, KeyMaterial};
use crbot::exchange::binance::user::{UserStreamConfig, spawn_user_stream};
use crbot::exchange::sim::{self, Faults, SimConfig, SimHandle};
use crbot::secret::SecretString;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(faults: Faults) -> Result<SimHandle, Box<dyn std::error::Error>> {
    Ok(sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            faults,
            ..SimConfig::default()
        },
    )
    .await?)
}

fn rest(sim: &SimHandle, order_timeout: Duration) -> Result<BinanceRest, Box<dyn std::error::Error>> {
    Ok(BinanceRest::new(
        Endpoints::local(sim.addr())?,
        Some(Credentials {
            api_key: SecretString::from(sim.api_key()),
            key: KeyMaterial::hmac(sim.api_secret()),
        }),
        RestConfig {
            order_timeout,
            query_timeout: Duration::from_secs(2),
            ..RestConfig::default()
        },
        Arc::new(NoBanStore),
    )?)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("valid symbol")
}

fn market_config() -> MarketStreamConfig {
    MarketStreamConfig {
        reconnect_base: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        ..MarketStreamConfig::default()
    }
}

/// Where a stream task's events are read: the user-data stream's channel, the market queue.
trait Events<T> {
    async fn next(&mut self) -> Option<T>;
}

impl<T> Events<T> for mpsc::Receiver<T> {
    async fn next(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl Events<MarketEvent> for MarketReceiver {
    async fn next(&mut self) -> Option<MarketEvent> {
        self.recv().await
    }
}

/// Receives until `pred` matches or the timeout passes; returns the matching event.
async fn next_matching<T>(
    rx: &mut impl Events<T>,
    timeout: Duration,
    mut pred: impl FnMut(&T) -> bool,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.next()).await {
            Ok(Some(ev)) if pred(&ev) => return Some(ev),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

fn is_quote_for(ev: &MarketEvent, symbol: &str) -> bool {
    matches!(ev, MarketEvent::BookTicker { symbol: s, .. } if s.as_str() == symbol)
}

#[tokio::test]
async fn market_stream_delivers_quotes_and_follows_the_watchlist() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(1024);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        market_config(),
    );
    let t = Duration::from_secs(10);
    assert!(
        next_matching(&mut rx, t, |e| matches!(
            e,
            MarketEvent::Status(StreamStatus::Connected { .. })
        ))
        .await
        .is_some()
    );
    let q = next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
        .await
        .ok_or("no BTCUSDT quote")?;
    if let MarketEvent::BookTicker { bid, ask, .. } = q {
        assert!(bid < ask, "bid {bid} ask {ask}");
    }
    assert!(
        next_matching(&mut rx, t, |e| matches!(e, MarketEvent::Kline { .. }))
            .await
            .is_some(),
        "no kline"
    );
    // The selected symbol's book diffs, trades and chart interval, on the same connection.
    assert!(handle.set_focus(Some((sym("BTCUSDT"), "5m".to_string()))));
    assert!(
        next_matching(
            &mut rx,
            t,
            |e| matches!(e, MarketEvent::DepthDiff { symbol, diff, .. } if symbol.as_str() == "BTCUSDT" && diff.first_id <= diff.last_id)
        )
        .await
        .is_some(),
        "no depth diff"
    );
    assert!(
        next_matching(
            &mut rx,
            t,
            |e| matches!(e, MarketEvent::Trade { symbol, .. } if symbol.as_str() == "BTCUSDT")
        )
        .await
        .is_some(),
        "no trade"
    );
    assert!(
        next_matching(
            &mut rx,
            t,
            |e| matches!(e, MarketEvent::Kline { interval, .. } if interval == "5m")
        )
        .await
        .is_some(),
        "no 5m kline"
    );
    assert!(
        next_matching(&mut rx, t, |e| matches!(e, MarketEvent::MiniTicker { .. }))
            .await
            .is_some(),
        "no miniTicker"
    );
    assert!(handle.set_watchlist(vec![sym("BTCUSDT"), sym("ETHUSDT")]));
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "ETHUSDT"))
            .await
            .is_some(),
        "ETHUSDT not subscribed"
    );
    assert_eq!(
        handle.reconnect_count(),
        0,
        "a watchlist change must not reconnect"
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn malformed_frames_are_counted_and_the_stream_keeps_going() -> TestResult {
    let sim = start(Faults {
        malformed_ws_every: Some(3),
        ..Faults::default()
    })
    .await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(1024);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        market_config(),
    );
    let t = Duration::from_secs(10);
    assert!(
        next_matching(
            &mut rx,
            t,
            |e| matches!(e, MarketEvent::Status(StreamStatus::Malformed { total }) if *total >= 2)
        )
        .await
        .is_some(),
        "malformed frames not reported"
    );
    // Quotes still flow after the bad frames, on the same connection.
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    assert!(handle.malformed_count() >= 2);
    assert_eq!(
        handle.reconnect_count(),
        0,
        "a malformed frame is not a reason to reconnect"
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_dropped_market_stream_reconnects_and_quotes_resume() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(1024);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        market_config(),
    );
    let t = Duration::from_secs(10);
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    sim.faults().drop_ws_now();
    assert!(
        next_matching(&mut rx, t, |e| matches!(
            e,
            MarketEvent::Status(StreamStatus::Disconnected { .. })
        ))
        .await
        .is_some()
    );
    assert!(
        next_matching(&mut rx, t, |e| matches!(
            e,
            MarketEvent::Status(StreamStatus::Connected { .. })
        ))
        .await
        .is_some()
    );
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    assert_eq!(handle.reconnect_count(), 1);
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

fn market_buy(cid: &str, qty: Qty) -> OrderRequest {
    OrderRequest {
        symbol: sym("BTCUSDT"),
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: None,
        qty,
        price: None,
        stop_price: None,
        client_order_id: ClientOrderId::new(cid).expect("valid id"),
    }
}

async fn small_qty(client: &BinanceRest) -> Result<Qty, Box<dyn std::error::Error>> {
    let info = client.exchange_info(&[sym("BTCUSDT")]).await?;
    let rules = info.symbols.first().ok_or("no rules")?;
    let ask = client.book_ticker(&sym("BTCUSDT")).await?.ask;
    Ok(rules.round_qty(OrderType::Market, Qty::try_new(Decimal::from(30) / ask.value())?))
}

fn user_config() -> UserStreamConfig {
    UserStreamConfig {
        reconnect_base: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        ..UserStreamConfig::default()
    }
}

#[tokio::test]
async fn user_stream_survives_a_drop_and_resync_loses_no_fill() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let qty = small_qty(&client).await?;
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_user_stream(client.clone(), tx, cancel.clone(), user_config())?;
    let t = Duration::from_secs(10);
    assert!(
        next_matching(&mut rx, t, |e| matches!(e, UserEvent::Subscribed { .. }))
            .await
            .is_some()
    );

    let mut dedup = FillDedup::new();
    let a = client
        .place_order_unchecked(&market_buy("it-us-a", qty))
        .await
        .done()
        .ok_or("order A")?;
    // The stream reports A's fills (and its FILLED status).
    let filled = next_matching(&mut rx, t, |e| {
        matches!(e, UserEvent::Order(u) if u.order_client_id() == "it-us-a" && u.status == OrderStatus::Filled)
    })
    .await
    .ok_or("no FILLED executionReport for A")?;
    if let UserEvent::Order(u) = &filled
        && let Some(f) = &u.fill
    {
        dedup.insert(f);
    }
    // Drop every WebSocket and trade while the stream is (probably) down.
    sim.faults().drop_ws_now();
    let b = client
        .place_order_unchecked(&market_buy("it-us-b", qty))
        .await
        .done()
        .ok_or("order B")?;
    let mut saw_disconnect = false;
    let mut stream_fills = Vec::new();
    let resub = next_matching(&mut rx, t, |e| {
        match e {
            UserEvent::Disconnected { .. } => saw_disconnect = true,
            UserEvent::Order(u) => stream_fills.extend(u.fill.clone()),
            _ => {}
        }
        matches!(e, UserEvent::Subscribed { .. }) && saw_disconnect
    })
    .await;
    assert!(resub.is_some(), "no resubscription after the drop");
    assert_eq!(handle.subscription_count(), 2);
    for f in &stream_fills {
        dedup.insert(f);
    }
    // The Subscribed marker came after the subscription: now resync by REST.
    let report = resync(
        &client,
        &ResyncRequest {
            symbols: vec![sym("BTCUSDT")],
            unfinished: vec![],
            last_trade_ids: dedup.last_trade_ids(),
            ..Default::default()
        },
    )
    .await?;
    for f in report.fills {
        dedup.insert(&f);
    }
    // Replaying everything a second time adds nothing.
    let again = resync(
        &client,
        &ResyncRequest {
            symbols: vec![sym("BTCUSDT")],
            ..ResyncRequest::default()
        },
    )
    .await?;
    assert!(
        dedup.filter_new(again.fills).is_empty(),
        "a fill was counted twice"
    );
    for f in a.fills.iter().chain(b.fills.iter()) {
        assert!(!dedup.insert(f), "fill {} of {} was lost", f.trade_id, f.order_id);
    }
    assert!(
        report
            .account
            .balances
            .iter()
            .any(|bal| bal.asset.as_str() == "BTC")
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_order_answered_late_is_resolved_by_its_execution_report() -> TestResult {
    let sim = start(Faults {
        order_delay_ms: Some(3000),
        ..Faults::default()
    })
    .await?;
    let client = rest(&sim, Duration::from_millis(800))?;
    let qty = small_qty(&client).await?;
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let (_handle, join) = spawn_user_stream(client.clone(), tx, cancel.clone(), user_config())?;
    let t = Duration::from_secs(10);
    assert!(
        next_matching(&mut rx, t, |e| matches!(e, UserEvent::Subscribed { .. }))
            .await
            .is_some()
    );
    let outcome = client.place_order_unchecked(&market_buy("it-late-ws", qty)).await;
    assert!(matches!(outcome, OrderOutcome::Unknown { .. }), "{outcome:?}");
    let report = next_matching(
        &mut rx,
        t,
        |e| matches!(e, UserEvent::Order(u) if u.order_client_id() == "it-late-ws"),
    )
    .await
    .ok_or("no executionReport for the unknown order")?;
    assert!(
        matches!(report, UserEvent::Order(u) if u.status == OrderStatus::New || u.status == OrderStatus::Filled)
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pings_are_answered_so_the_exchange_keeps_the_connection() -> TestResult {
    // The exchange pings every 150 ms and drops a connection that has not answered in 600 ms.
    let sim = sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            ws_ping_interval: Duration::from_millis(150),
            ws_pong_timeout: Duration::from_millis(600),
            ..SimConfig::default()
        },
    )
    .await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(4096);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        market_config(),
    );
    let t = Duration::from_secs(10);
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    // Watch for 2.5 s (many pong deadlines): no disconnect may appear.
    let dropped = next_matching(&mut rx, Duration::from_millis(2500), |e| {
        matches!(e, MarketEvent::Status(StreamStatus::Disconnected { .. }))
    })
    .await;
    assert_eq!(dropped, None, "the exchange dropped us: pongs missing");
    assert_eq!(handle.reconnect_count(), 0);
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_connection_is_renewed_before_its_age_limit() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(4096);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        MarketStreamConfig {
            max_connection_age: Duration::from_millis(800),
            ..market_config()
        },
    );
    let t = Duration::from_secs(10);
    let renewed = next_matching(&mut rx, t, |e| {
        matches!(e, MarketEvent::Status(StreamStatus::Disconnected { reason }) if reason.contains("age limit"))
    })
    .await;
    assert!(renewed.is_some(), "no proactive renewal");
    assert!(
        next_matching(&mut rx, t, |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    assert!(handle.reconnect_count() >= 1);
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn user_stream_subscribes_with_an_ed25519_key() -> TestResult {
    let seed = [5u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let sim = sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            keys: vec![sim::SimKey {
                api_key: "ed-stream-key".into(),
                auth: sim::SimAuth::Ed25519(public),
                enable_withdrawals: false,
                ip_restrict: false,
                enable_spot_trading: true,
            }],
            ..SimConfig::default()
        },
    )
    .await?;
    let client = BinanceRest::new(
        Endpoints::local(sim.addr())?,
        Some(Credentials {
            api_key: SecretString::from("ed-stream-key"),
            key: KeyMaterial::ed25519(crbot::secret::SecretBytes::new(seed.to_vec())),
        }),
        RestConfig::default(),
        Arc::new(NoBanStore),
    )?;
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let (_handle, join) = spawn_user_stream(client.clone(), tx, cancel.clone(), user_config())?;
    let first = next_matching(&mut rx, Duration::from_secs(10), |e| {
        matches!(e, UserEvent::Subscribed { .. } | UserEvent::Disconnected { .. })
    })
    .await;
    assert!(matches!(first, Some(UserEvent::Subscribed { .. })), "{first:?}");
    let qty = small_qty(&client).await?;
    assert!(matches!(
        client.place_order_unchecked(&market_buy("it-ed-ws", qty)).await,
        OrderOutcome::Done(_)
    ));
    assert!(
        next_matching(&mut rx, Duration::from_secs(10), |e| {
            matches!(e, UserEvent::Order(u) if u.order_client_id() == "it-ed-ws")
        })
        .await
        .is_some()
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn silence_marks_a_symbol_stale_and_the_next_quote_makes_it_fresh() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(4096);
    let cancel = CancellationToken::new();
    // A threshold shorter than the gap between quotes: the symbol goes stale between them.
    let (_handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT")],
        tx,
        cancel.clone(),
        MarketStreamConfig {
            stale_after: Duration::from_millis(1),
            latency_every: Duration::from_millis(100),
            ..market_config()
        },
    );
    let t = Duration::from_secs(10);
    let stale = next_matching(
        &mut rx,
        t,
        |e| matches!(e, MarketEvent::Status(StreamStatus::Stale { symbol }) if symbol.as_str() == "BTCUSDT"),
    )
    .await;
    assert!(stale.is_some(), "never reported stale");
    let fresh = next_matching(
        &mut rx,
        t,
        |e| matches!(e, MarketEvent::Status(StreamStatus::Fresh { symbol }) if symbol.as_str() == "BTCUSDT"),
    )
    .await;
    assert!(fresh.is_some(), "never fresh again");
    assert!(
        next_matching(&mut rx, t, |e| matches!(
            e,
            MarketEvent::Status(StreamStatus::Latency { .. })
        ))
        .await
        .is_some(),
        "no latency report"
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_stalled_owner_finds_the_newest_quotes_not_a_backlog_and_the_socket_stays_up() -> TestResult {
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = market_queue::channel(16);
    let cancel = CancellationToken::new();
    let (handle, join) = spawn_market_stream(
        client.endpoints().clone(),
        client.clock().clone(),
        vec![sym("BTCUSDT"), sym("ETHUSDT")],
        tx,
        cancel.clone(),
        market_config(),
    );
    // Nobody reads: each newer quote replaces the one still queued for its symbol.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handle.superseded_count() < 10 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(handle.superseded_count() >= 10, "quotes were not conflated");
    let quotes = std::iter::from_fn(|| rx.try_recv())
        .filter(|e| is_quote_for(e, "BTCUSDT"))
        .count();
    assert_eq!(quotes, 1, "one BTCUSDT quote waited, the newest");
    // The owner comes back: quotes still flow on the same connection.
    assert!(
        next_matching(&mut rx, Duration::from_secs(10), |e| is_quote_for(e, "BTCUSDT"))
            .await
            .is_some()
    );
    assert_eq!(handle.reconnect_count(), 0);
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[derive(Debug)]
struct FixedBan(i64);

impl crbot::exchange::binance::limits::BanStore for FixedBan {
    fn load(&self) -> Option<i64> {
        Some(self.0)
    }
    fn save(&self, _until_ms: i64) {}
}

#[tokio::test]
async fn user_stream_does_not_connect_while_the_ip_is_banned() -> TestResult {
    let sim = start(Faults::default()).await?;
    let until = crbot::exchange::binance::clock::local_now_ms() + 1500;
    let client = BinanceRest::new(
        Endpoints::local(sim.addr())?,
        Some(Credentials {
            api_key: SecretString::from(sim.api_key()),
            key: KeyMaterial::hmac(sim.api_secret()),
        }),
        RestConfig::default(),
        Arc::new(FixedBan(until)),
    )?;
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let (_handle, join) = spawn_user_stream(client.clone(), tx, cancel.clone(), user_config())?;
    let subscribed = next_matching(&mut rx, Duration::from_secs(10), |e| {
        matches!(e, UserEvent::Subscribed { .. })
    })
    .await;
    assert!(subscribed.is_some(), "never subscribed after the ban");
    assert!(
        crbot::exchange::binance::clock::local_now_ms() >= until,
        "connected before the ban ended"
    );
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn user_stream_waits_out_a_rate_limit_hold_before_resubscribing_so_the_ip_is_not_banned() -> TestResult
{
    let sim = start(Faults::default()).await?;
    let client = rest(&sim, Duration::from_secs(2))?;
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let (_handle, join) = spawn_user_stream(client.clone(), tx, cancel.clone(), user_config())?;
    let t = Duration::from_secs(10);
    let subscribed = |e: &UserEvent| matches!(e, UserEvent::Subscribed { .. });
    assert!(next_matching(&mut rx, t, subscribed).await.is_some());

    // The resubscription after a drop is answered 429: the exchange holds the IP for a
    // second, and another request during the hold (REST or WebSocket API) gets it banned.
    sim.faults().set(Faults {
        next_429: 1,
        ..Faults::default()
    });
    let dropped = crbot::exchange::binance::clock::local_now_ms();
    sim.faults().drop_ws_now();
    assert!(
        next_matching(&mut rx, t, subscribed).await.is_some(),
        "never subscribed again"
    );
    assert!(
        crbot::exchange::binance::clock::local_now_ms() >= dropped + 1_000,
        "resubscribed during the hold"
    );
    assert_eq!(client.banned_until(), None, "the IP was banned");
    assert!(client.account().await.is_ok(), "the exchange refuses the IP");
    cancel.cancel();
    join.await?;
    sim.shutdown().await;
    Ok(())
}
