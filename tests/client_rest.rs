//! The Binance REST client against the local exchange (`exchange::sim`), with its fault
//! switches: place/query/cancel, an order answered late, a 503 after the order was accepted,
//! a 429, a 418 ban, and the exchange clock 2.5 s ahead and behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crbot::domain::broker::{BrokerError, OrderOutcome};
use crbot::domain::{
    ClientOrderId, OrderRequest, OrderStatus, OrderType, Price, Qty, Side, Symbol, SymbolRules,
};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::limits::BanStore;
use crbot::exchange::binance::reconcile::{Resolution, ResolveConfig, resolve_unknown};
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::{Credentials, KeyMaterial};
use crbot::exchange::sim::{self, Faults, RateLimits, SimConfig, SimHandle};
use crbot::secret::SecretString;
use rust_decimal::Decimal;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(faults: Faults) -> Result<SimHandle, Box<dyn std::error::Error>> {
    let config = SimConfig {
        faults,
        ..SimConfig::default()
    };
    Ok(sim::start("127.0.0.1:0".parse()?, config).await?)
}

fn config() -> RestConfig {
    RestConfig {
        order_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(2),
        retry_base: Duration::from_millis(50),
        ..RestConfig::default()
    }
}

fn creds(sim: &SimHandle) -> Credentials {
    Credentials {
        api_key: SecretString::from(sim.api_key()),
        key: KeyMaterial::hmac(sim.api_secret()),
    }
}

fn client(sim: &SimHandle, bans: Arc<dyn BanStore>) -> Result<BinanceRest, Box<dyn std::error::Error>> {
    Ok(BinanceRest::new(
        Endpoints::local(sim.addr())?,
        Some(creds(sim)),
        config(),
        bans,
    )?)
}

/// A client that never waits for a rate limit (reads give up on a 429 at once), to look at
/// the hold itself.
fn impatient_client(sim: &SimHandle) -> Result<BinanceRest, Box<dyn std::error::Error>> {
    Ok(BinanceRest::new(
        Endpoints::local(sim.addr())?,
        Some(creds(sim)),
        RestConfig {
            max_throttle_wait: Duration::ZERO,
            ..config()
        },
        Arc::new(MemoryBans::default()),
    )?)
}

#[derive(Debug, Default)]
struct MemoryBans(Mutex<Option<i64>>);

impl BanStore for MemoryBans {
    fn load(&self) -> Option<i64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn save(&self, until_ms: i64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(until_ms);
    }
}

async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn btc() -> Symbol {
    Symbol::new("BTCUSDT").expect("valid symbol")
}

async fn rules(rest: &BinanceRest) -> Result<SymbolRules, Box<dyn std::error::Error>> {
    let info = rest.exchange_info(&[btc()]).await?;
    Ok(info
        .symbols
        .into_iter()
        .find(|r| r.symbol == btc())
        .ok_or("BTCUSDT missing from exchangeInfo")?)
}

/// A resting LIMIT BUY at 80 % of the bid, worth about 20 USDT, rounded by the symbol's rules.
async fn resting_buy(rest: &BinanceRest, cid: &str) -> Result<OrderRequest, Box<dyn std::error::Error>> {
    let r = rules(rest).await?;
    let bid = rest.book_ticker(&btc()).await?.bid;
    let price = r.round_price(Side::Buy, Price::try_new(bid.value() * Decimal::new(8, 1))?);
    let qty = r.round_qty(OrderType::Limit, Qty::try_new(Decimal::from(20) / price.value())?);
    let order = OrderRequest {
        symbol: btc(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: None,
        qty,
        price: Some(price),
        stop_price: None,
        client_order_id: ClientOrderId::new(cid)?,
    };
    assert_eq!(
        r.check(&order, Some(bid)),
        vec![],
        "test order must pass every filter"
    );
    Ok(order)
}

async fn open_with_cid(rest: &BinanceRest, cid: &str) -> Result<usize, BrokerError> {
    Ok(rest
        .open_orders(Some(&btc()))
        .await?
        .iter()
        .filter(|o| o.client_order_id == cid)
        .count())
}

#[tokio::test]
async fn places_queries_and_cancels_a_limit_order() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let order = resting_buy(&rest, "it-place-1").await?;
    let placed = match rest.place_order_unchecked(&order).await {
        OrderOutcome::Done(p) => p,
        other => return Err(format!("expected Done, got {other:?}").into()),
    };
    assert_eq!(placed.order.status, OrderStatus::New);
    assert_eq!(placed.order.client_order_id, "it-place-1");
    assert!(placed.fills.is_empty());
    let q = rest.query_order(&btc(), "it-place-1").await?;
    assert_eq!((q.order_id, q.status), (placed.order.order_id, OrderStatus::New));
    assert_eq!(open_with_cid(&rest, "it-place-1").await?, 1);
    let cancelled = rest
        .cancel_order(&btc(), "it-place-1")
        .await
        .done()
        .ok_or("cancel not done")?;
    assert_eq!(cancelled.status, OrderStatus::Canceled);
    assert_eq!(cancelled.order_client_id(), "it-place-1");
    assert_eq!(
        rest.query_order(&btc(), "it-place-1").await?.status,
        OrderStatus::Canceled
    );
    // Cancelling again: the exchange refuses (-2011), a definite answer, not unknown.
    match rest.cancel_order(&btc(), "it-place-1").await {
        OrderOutcome::Rejected(e) => assert_eq!(e.code(), Some(-2011)),
        other => return Err(format!("expected -2011, got {other:?}").into()),
    }
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn market_buy_reports_fills_that_my_trades_confirms() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let r = rules(&rest).await?;
    let ask = rest.book_ticker(&btc()).await?.ask;
    let qty = r.round_qty(OrderType::Market, Qty::try_new(Decimal::from(50) / ask.value())?);
    let order = OrderRequest {
        symbol: btc(),
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: None,
        qty,
        price: None,
        stop_price: None,
        client_order_id: ClientOrderId::new("it-mkt-1")?,
    };
    let placed = rest
        .place_order_unchecked(&order)
        .await
        .done()
        .ok_or("market order not done")?;
    assert_eq!(placed.order.status, OrderStatus::Filled);
    assert!(!placed.fills.is_empty());
    let filled: Decimal = placed.fills.iter().map(|f| f.qty.value()).sum();
    assert_eq!(filled, qty.value());
    let trades = rest.my_trades(&btc(), None).await?;
    for f in &placed.fills {
        assert!(
            trades.iter().any(|t| t.trade_id == f.trade_id && t.qty == f.qty),
            "trade {}",
            f.trade_id
        );
    }
    let account = rest.account().await?;
    assert!(
        account
            .balances
            .iter()
            .any(|b| b.asset.as_str() == "BTC" && !b.free.is_zero())
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_order_answered_late_is_unknown_then_resolved_without_resending() -> TestResult {
    let sim = start(Faults {
        order_delay_ms: Some(4000),
        ..Faults::default()
    })
    .await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let order = resting_buy(&rest, "it-late-1").await?;
    let outcome = rest.place_order_unchecked(&order).await;
    assert!(
        outcome.is_unknown(),
        "a client timeout must be UNKNOWN, got {outcome:?}"
    );
    let resolution = resolve_unknown(&rest, &btc(), "it-late-1", &ResolveConfig::default()).await;
    let Resolution::Found(found) = resolution else {
        return Err(format!("expected Found, got {resolution:?}").into());
    };
    assert_eq!(found.status, OrderStatus::New);
    // Exactly one order with that id exists: the client never sent it again.
    assert_eq!(open_with_cid(&rest, "it-late-1").await?, 1);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_503_after_the_order_was_accepted_is_unknown_and_resolves_to_the_order() -> TestResult {
    let sim = start(Faults {
        order_503: 1,
        ..Faults::default()
    })
    .await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let order = resting_buy(&rest, "it-503-1").await?;
    match rest.place_order_unchecked(&order).await {
        OrderOutcome::Unknown { reason } => {
            assert!(reason.contains("503") || reason.contains("-1007"), "{reason}")
        }
        other => return Err(format!("expected Unknown, got {other:?}").into()),
    }
    let Resolution::Found(found) =
        resolve_unknown(&rest, &btc(), "it-503-1", &ResolveConfig::default()).await
    else {
        return Err("the accepted order was not found".into());
    };
    assert_eq!(found.client_order_id, "it-503-1");
    assert_eq!(open_with_cid(&rest, "it-503-1").await?, 1);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_order_that_never_reached_the_exchange_resolves_to_not_found() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let cfg = ResolveConfig {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        ..ResolveConfig::default()
    };
    assert_eq!(
        resolve_unknown(&rest, &btc(), "it-never-sent", &cfg).await,
        Resolution::NotFound
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_read_answered_429_waits_for_retry_after_says_so_and_succeeds() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let told: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = told.clone();
    rest.set_wait_notice(Arc::new(move |t: &str| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(t.to_string())
    }));
    rest.book_ticker(&btc()).await?;
    let mut f = sim.faults().get();
    f.next_429 = 1;
    sim.faults().set(f);
    rest.account().await?;
    let told = told.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("rate limited") && told[0].contains("1 s"),
        "{told:?}"
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn after_a_429_orders_wait_for_retry_after_and_are_not_sent() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = impatient_client(&sim)?;
    let order = resting_buy(&rest, "it-429-1").await?;
    let mut f = sim.faults().get();
    f.next_429 = 1;
    sim.faults().set(f);
    let err = rest.account().await.err().ok_or("expected a 429")?;
    assert!(matches!(err, BrokerError::RateLimited { .. }), "{err:?}");
    assert!(rest.usage().hold_until_ms.is_some(), "the hold is visible");
    // During the hold the order is refused locally: definite, not unknown, nothing sent.
    match rest.place_order_unchecked(&order).await {
        OrderOutcome::Rejected(BrokerError::RateLimited { .. }) => {}
        other => return Err(format!("expected a local RateLimited rejection, got {other:?}").into()),
    }
    assert!(
        wait_until(Duration::from_secs(70), || async {
            rest.usage().hold_until_ms.is_none()
        })
        .await,
        "hold never ended"
    );
    assert!(matches!(
        rest.query_order(&btc(), "it-429-1").await,
        Err(BrokerError::Api { code: -2013, .. })
    ));
    assert!(matches!(
        rest.place_order_unchecked(&order).await,
        OrderOutcome::Done(_)
    ));
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn during_a_429_hold_a_cancel_still_goes_out() -> TestResult {
    let sim = start(Faults::default()).await?;
    let rest = impatient_client(&sim)?;
    let order = resting_buy(&rest, "it-429-cancel").await?;
    assert!(matches!(
        rest.place_order_unchecked(&order).await,
        OrderOutcome::Done(_)
    ));
    let mut f = sim.faults().get();
    f.next_429 = 1;
    sim.faults().set(f);
    assert!(matches!(
        rest.account().await,
        Err(BrokerError::RateLimited { .. })
    ));
    assert!(matches!(
        rest.open_orders(Some(&btc())).await,
        Err(BrokerError::RateLimited { .. })
    ));
    // The clock was never synced (the sync hit the 429), yet the cancel goes out. Binance bans
    // only "repeated" requests during a back-off; this exchange answers the first one with
    // another 429 (it bans the second), so the cancel reaching it shows up as the cancel done
    // (the hold was over) or as that 429.
    let cancelled = rest.cancel_order(&btc(), "it-429-cancel").await;
    match cancelled {
        OrderOutcome::Done(o) => assert_eq!(o.status, OrderStatus::Canceled),
        OrderOutcome::Rejected(BrokerError::RateLimited { .. }) => {}
        other => {
            return Err(format!("the cancel must reach the exchange during the hold, got {other:?}").into());
        }
    }
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_418_ban_stops_all_traffic_and_survives_a_restart() -> TestResult {
    // A small weight budget the client does not know about (it has not read exchangeInfo), so
    // the exchange's own limiter answers 429 and starts a back-off.
    let sim = sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            rate_limits: RateLimits {
                weight_per_minute: 50,
                ..RateLimits::default()
            },
            ..SimConfig::default()
        },
    )
    .await?;
    let bans = Arc::new(MemoryBans::default());
    let rest = client(&sim, bans.clone())?;
    let mut got_429 = false;
    for _ in 0..5 {
        if let Err(BrokerError::RateLimited { .. }) = rest.account().await {
            got_429 = true;
            break;
        }
    }
    assert!(got_429, "the exchange never answered 429");
    // Nothing but cancels leaves during the hold; a cancel does (cancels first). This exchange
    // treats any request during its back-off as a reason to ban, as Binance may.
    assert!(matches!(
        rest.account().await,
        Err(BrokerError::RateLimited { .. })
    ));
    // The exchange tolerates one request during its back-off (answered 429 again); the
    // next one is banned.
    let first = rest.cancel_order(&btc(), "nothing-to-cancel").await;
    assert!(
        matches!(first, OrderOutcome::Rejected(BrokerError::RateLimited { .. })),
        "{first:?}"
    );
    let cancel = rest.cancel_order(&btc(), "nothing-to-cancel").await;
    let OrderOutcome::Rejected(BrokerError::Banned { until_ms }) = cancel else {
        return Err(format!("expected the exchange's 418, got {cancel:?}").into());
    };
    assert_eq!(bans.load(), Some(until_ms), "ban-until persisted");
    // Everything stops, cancels included, without touching the network.
    assert!(matches!(rest.ping().await, Err(BrokerError::Banned { .. })));
    assert!(matches!(
        rest.cancel_all(&btc()).await,
        OrderOutcome::Rejected(BrokerError::Banned { .. })
    ));
    // A new client (a restart) reads the ban; a stored ban may be wrong, so one request
    // checks it, the exchange bans again, and from then on nothing leaves.
    let restarted = client(&sim, bans.clone())?;
    assert_eq!(restarted.usage().banned_until_ms, Some(until_ms));
    assert!(matches!(restarted.ping().await, Err(BrokerError::Banned { .. })));
    let again = restarted.usage().banned_until_ms.ok_or("the ban holds")?;
    assert!((again - until_ms).abs() <= 1_000, "{again} vs {until_ms}");
    assert!(matches!(
        restarted.cancel_all(&btc()).await,
        OrderOutcome::Rejected(BrokerError::Banned { .. })
    ));
    sim.shutdown().await;
    Ok(())
}

/// An exchange clock so far from ours that nothing about it can be trusted: the client says so,
/// with the number, instead of signing with it or calling it a ban.
async fn an_extreme_clock_offset_is_reported_as_such(offset_ms: i64) -> TestResult {
    let sim = start(Faults {
        clock_offset_ms: offset_ms,
        ..Faults::default()
    })
    .await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    for err in [
        rest.sync_clock().await.err().ok_or("the clock sync must fail")?,
        rest.account().await.err().ok_or("a signed request must fail")?,
    ] {
        let BrokerError::ClockOffset { offset_ms: seen } = err else {
            return Err(format!("expected a clock offset error, got {err:?}").into());
        };
        assert!((seen - offset_ms).abs() < 60_000, "{seen} vs {offset_ms}");
        let text = err.to_string();
        assert!(
            text.contains("clock offset too large") && text.contains(&seen.unsigned_abs().to_string()),
            "{text}"
        );
        assert!(text.contains("system clock"), "says what to do: {text}");
    }
    assert_eq!(rest.usage().banned_until_ms, None, "not called a ban");
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_exchange_clock_centuries_ahead_is_reported_as_a_clock_offset() -> TestResult {
    an_extreme_clock_offset_is_reported_as_such(10_000_000_000_000).await
}

#[tokio::test]
async fn an_exchange_clock_before_the_epoch_is_reported_as_a_clock_offset_not_a_ban() -> TestResult {
    an_extreme_clock_offset_is_reported_as_such(-2_000_000_000_000).await
}

async fn skew_is_measured_and_signed_requests_work(offset_ms: i64) -> TestResult {
    let sim = start(Faults {
        clock_offset_ms: offset_ms,
        ..Faults::default()
    })
    .await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    // The first signed request syncs the clock by itself.
    rest.account().await?;
    let measured = rest.clock().offset_ms();
    assert!(
        (measured - offset_ms).abs() < 300,
        "offset {measured} vs {offset_ms}"
    );
    // The exchange's clock jumps 6 s back: our timestamps are now ahead of it, the next signed
    // request gets -1021, the clock is marked stale, and the one after resyncs and succeeds.
    let jumped = offset_ms - 6000;
    let mut f = sim.faults().get();
    f.clock_offset_ms = jumped;
    sim.faults().set(f);
    let err = rest
        .account()
        .await
        .err()
        .ok_or("expected -1021 after the jump")?;
    assert_eq!(err.code(), Some(-1021), "{err}");
    assert!(rest.clock().is_stale());
    rest.account().await?;
    assert!((rest.clock().offset_ms() - jumped).abs() < 300);
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn exchange_clock_2_5_s_ahead_is_corrected_by_the_offset() -> TestResult {
    skew_is_measured_and_signed_requests_work(2500).await
}

#[tokio::test]
async fn exchange_clock_2_5_s_behind_is_corrected_by_the_offset() -> TestResult {
    skew_is_measured_and_signed_requests_work(-2500).await
}

#[tokio::test]
async fn protective_oco_is_placed_for_the_filled_entry_and_cancel_all_clears_everything() -> TestResult {
    use crbot::domain::broker::Cancelled;
    use crbot::exchange::binance::reconcile::{EntryFills, OcoPlan, protective_oco};

    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let r = rules(&rest).await?;
    let ask = rest.book_ticker(&btc()).await?.ask;
    let qty = r.round_qty(OrderType::Market, Qty::try_new(Decimal::from(100) / ask.value())?);
    let entry = OrderRequest {
        symbol: btc(),
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: None,
        qty,
        price: None,
        stop_price: None,
        client_order_id: ClientOrderId::new("it-entry-1")?,
    };
    let placed = rest
        .place_order_unchecked(&entry)
        .await
        .done()
        .ok_or("entry not done")?;
    let sl = Price::try_new(ask.value() * Decimal::new(95, 2))?;
    let tp = Price::try_new(ask.value() * Decimal::new(110, 2))?;
    let ids = ["it-oco-l", "it-oco-tp", "it-oco-sl"].map(|s| ClientOrderId::new(s).expect("valid id"));
    let plan = protective_oco(
        &EntryFills {
            symbol: &btc(),
            side: Side::Buy,
            status: placed.order.status,
            fills: &placed.fills,
            // A fresh account: the position is the fill less its base-asset commission.
            position: placed.fills.iter().fold(Qty::ZERO, |acc, f| {
                let received = f.qty.saturating_sub(f.commission);
                acc.checked_add(received).unwrap_or(acc)
            }),
        },
        &r,
        sl,
        tp,
        ids,
    );
    let OcoPlan::Place(oco) = plan else {
        return Err(format!("expected an OCO, got {plan:?}").into());
    };
    let list = match rest.place_oco_unchecked(&oco).await {
        OrderOutcome::Done(l) => l,
        other => return Err(format!("OCO not placed: {other:?}").into()),
    };
    assert_eq!(list.list_client_order_id, "it-oco-l");
    assert_eq!(list.legs.len(), 2);
    let lists = rest.open_order_lists().await?;
    assert!(lists.iter().any(|l| l.list_client_order_id == "it-oco-l"));
    let legs = rest.open_orders(Some(&btc())).await?;
    let sl_leg = legs
        .iter()
        .find(|o| o.client_order_id == "it-oco-sl")
        .ok_or("stop leg missing")?;
    assert_eq!(
        (sl_leg.order_type, sl_leg.side),
        (OrderType::StopLoss, Side::Sell)
    );
    assert_eq!(sl_leg.orig_qty, oco.qty);
    let tp_leg = legs
        .iter()
        .find(|o| o.client_order_id == "it-oco-tp")
        .ok_or("take-profit leg missing")?;
    assert_eq!(tp_leg.order_type, OrderType::LimitMaker);
    // A plain resting order too, then the kill switch's cancel-all takes both.
    let resting = resting_buy(&rest, "it-rest-2").await?;
    assert!(matches!(
        rest.place_order_unchecked(&resting).await,
        OrderOutcome::Done(_)
    ));
    let items = rest
        .cancel_all(&btc())
        .await
        .done()
        .ok_or("cancel_all not done")?;
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Cancelled::List(l) if l.list_client_order_id == "it-oco-l"))
    );
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Cancelled::Order(o) if o.order_client_id() == "it-rest-2"))
    );
    assert!(rest.open_orders(Some(&btc())).await?.is_empty());
    assert!(rest.open_order_lists().await?.is_empty());
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn startup_resync_reports_open_orders_unfinished_orders_and_fills_since_the_last_trade() -> TestResult {
    use crbot::exchange::binance::reconcile::{ResyncRequest, resync};
    use std::collections::HashMap;

    let sim = start(Faults::default()).await?;
    let rest = client(&sim, Arc::new(MemoryBans::default()))?;
    let order = resting_buy(&rest, "it-sync-open").await?;
    assert!(matches!(
        rest.place_order_unchecked(&order).await,
        OrderOutcome::Done(_)
    ));
    let r = rules(&rest).await?;
    let ask = rest.book_ticker(&btc()).await?.ask;
    let qty = r.round_qty(OrderType::Market, Qty::try_new(Decimal::from(30) / ask.value())?);
    let buy = |cid: &str| OrderRequest {
        symbol: btc(),
        side: Side::Buy,
        order_type: OrderType::Market,
        time_in_force: None,
        qty,
        price: None,
        stop_price: None,
        client_order_id: ClientOrderId::new(cid).expect("valid id"),
    };
    let first = rest
        .place_order_unchecked(&buy("it-sync-1"))
        .await
        .done()
        .ok_or("first")?;
    let second = rest
        .place_order_unchecked(&buy("it-sync-2"))
        .await
        .done()
        .ok_or("second")?;
    let last_known = first.fills.iter().map(|f| f.trade_id).max().ok_or("no fill")?;
    let report = resync(
        &rest,
        &ResyncRequest {
            symbols: vec![btc()],
            unfinished: vec![(btc(), "it-sync-open".into()), (btc(), "it-sync-never".into())],
            last_trade_ids: HashMap::from([(btc(), last_known)]),
            ..Default::default()
        },
    )
    .await?;
    assert!(
        report
            .open_orders
            .iter()
            .any(|o| o.client_order_id == "it-sync-open")
    );
    assert!(
        matches!(&report.orders[0], (c, Resolution::Found(o)) if c == "it-sync-open" && o.status == OrderStatus::New)
    );
    assert_eq!(
        report.orders[1],
        ("it-sync-never".to_string(), Resolution::NotFound)
    );
    // Only fills after the last known trade: exactly the second order's.
    let mut got: Vec<u64> = report.fills.iter().map(|f| f.trade_id).collect();
    let mut want: Vec<u64> = second.fills.iter().map(|f| f.trade_id).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    sim.shutdown().await;
    Ok(())
}

fn ed25519_key(
    sim_keys: &mut Vec<sim::SimKey>,
    api_key: &str,
    seed: [u8; 32],
    can_withdraw: bool,
) -> Credentials {
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    sim_keys.push(sim::SimKey {
        api_key: api_key.to_string(),
        auth: sim::SimAuth::Ed25519(public),
        enable_withdrawals: can_withdraw,
        ip_restrict: false,
        enable_spot_trading: true,
    });
    Credentials {
        api_key: SecretString::from(api_key),
        key: KeyMaterial::ed25519(crbot::secret::SecretBytes::new(seed.to_vec())),
    }
}

#[tokio::test]
async fn ed25519_keys_sign_rest_requests_and_the_withdrawal_check_reads_key_permissions() -> TestResult {
    use crbot::exchange::binance::reconcile::check_key_permissions;

    let mut keys = Vec::new();
    let safe = ed25519_key(&mut keys, "ed-safe-key", [9u8; 32], false);
    let risky = ed25519_key(&mut keys, "ed-risky-key", [11u8; 32], true);
    let sim = sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            keys,
            ..SimConfig::default()
        },
    )
    .await?;
    let endpoints = Endpoints::local(sim.addr())?;
    let rest = BinanceRest::new(
        endpoints.clone(),
        Some(safe),
        config(),
        Arc::new(MemoryBans::default()),
    )?;
    // Signed GET and a signed POST: base64 signatures (with + / =) survive percent-encoding.
    rest.account().await?;
    let order = resting_buy(&rest, "it-ed-1").await?;
    assert!(matches!(
        rest.place_order_unchecked(&order).await,
        OrderOutcome::Done(_)
    ));
    assert!(check_key_permissions(&rest.api_restrictions().await?).is_ok());
    let risky = BinanceRest::new(endpoints, Some(risky), config(), Arc::new(MemoryBans::default()))?;
    let refusal = check_key_permissions(&risky.api_restrictions().await?);
    assert!(refusal.is_err_and(|m| m.contains("withdraw")));
    sim.shutdown().await;
    Ok(())
}
