//! What the latency benches share: the byte-level relay that timestamps the kill switch's cancels
//! on their way to the local exchange, resting orders that never fill, and the figures' helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crbot::domain::Mode;
use crbot::domain::broker::OrderOutcome;
use crbot::domain::{
    ClientOrderId, OrderPurpose, OrderRequest, OrderType, Price, Qty, Side, Symbol, TimeInForce,
};
use crbot::engine::core::Core;
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, SimConfig, SimHandle};
use crbot::journal::{Journal, TicketSource};
use crbot::risk::Limits;
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const SYMBOLS: [&str; 5] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];
pub const ORDERS_PER_SYMBOL: usize = 4;
pub const CANCEL_ALL: &[u8] = b"DELETE /api/v3/openOrders";

/// Times at which the relay saw each `DELETE /api/v3/openOrders` request line.
#[derive(Clone, Default)]
pub struct WireLog(Arc<Mutex<Vec<Instant>>>);

impl WireLog {
    /// The earliest cancel-all seen, if any.
    pub fn first(&self) -> Option<Instant> {
        self.0.lock().unwrap().iter().min().copied()
    }

    pub fn take(&self) -> Vec<Instant> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Relays `listener`'s connections to `upstream` byte for byte, timestamping cancel-all
/// request lines on the way in.
pub async fn relay(listener: TcpListener, upstream: SocketAddr, log: WireLog) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let log = log.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut ri, mut wi) = inbound.split();
            let (mut ro, mut wo) = outbound.split();
            let up = async {
                let mut buf = vec![0u8; 16 * 1024];
                // The tail of the previous read, so a request line split across reads is seen.
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match ri.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let now = Instant::now();
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&buf[..n]);
                    let hits = window
                        .windows(CANCEL_ALL.len())
                        .filter(|w| *w == CANCEL_ALL)
                        .count();
                    if hits > 0 {
                        let mut l = log.0.lock().unwrap();
                        l.extend(std::iter::repeat_n(now, hits));
                    }
                    let keep = window.len().min(CANCEL_ALL.len() - 1);
                    tail = window[window.len() - keep..].to_vec();
                    if wo.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = wo.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut ro, &mut wi).await;
                let _ = wi.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

pub fn rest_via(endpoints: Endpoints, h: &SimHandle) -> BinanceRest {
    BinanceRest::without_ban_store(
        endpoints,
        Some(Credentials::hmac(&h.api_key(), h.api_secret().expose())),
        RestConfig::default(),
    )
    .unwrap()
}

/// Resting BUY limits 3 % under the market: they never fill while the market stands still.
pub async fn place_resting(rest: &BinanceRest, h: &SimHandle, journal: &Journal) {
    let mids: Vec<(String, Decimal)> = h.mids();
    let info = rest.exchange_info(&[]).await.unwrap();
    for name in SYMBOLS {
        let symbol = Symbol::new(name).unwrap();
        let rules = info.symbols.iter().find(|r| r.symbol == symbol).unwrap();
        let mid = mids.iter().find(|(s, _)| s == name).unwrap().1;
        for i in 0..ORDERS_PER_SYMBOL {
            let raw = mid * Decimal::new(97 - i as i64, 2);
            let price = rules.round_price(Side::Buy, raw.parse_price());
            let notional = Decimal::from(20);
            let qty = rules.round_qty(OrderType::Limit, (notional / raw).parse_qty());
            let cid = ClientOrderId::generate(now_ms(), rand::random::<u64>());
            let req = OrderRequest {
                symbol: symbol.clone(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                time_in_force: Some(TimeInForce::Gtc),
                qty,
                price: Some(price),
                stop_price: None,
                client_order_id: cid,
            };
            match rest.place_order_unchecked(&req).await {
                OrderOutcome::Done(placed) => journal
                    .insert_order(&placed.order.to_order(OrderPurpose::Entry))
                    .unwrap(),
                other => panic!("placing {name} {qty} @ {price}: {other:?}"),
            }
        }
    }
}

pub trait ParseNum {
    fn parse_price(&self) -> Price;
    fn parse_qty(&self) -> Qty;
}

impl ParseNum for Decimal {
    fn parse_price(&self) -> Price {
        self.round_dp(8).normalize().to_string().parse().unwrap()
    }
    fn parse_qty(&self) -> Qty {
        self.round_dp(8).normalize().to_string().parse().unwrap()
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A relay on a free loopback port in front of `upstream`, and the log it writes.
pub async fn start_relay(upstream: SocketAddr) -> (SocketAddr, WireLog, tokio::task::JoinHandle<()>) {
    let log = WireLog::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(relay(listener, upstream, log.clone()));
    (addr, log, task)
}

/// The local exchange's endpoints with REST through the relay at `relay_addr`.
pub fn endpoints_via(h: &SimHandle, relay_addr: SocketAddr) -> Endpoints {
    let mut endpoints = Endpoints::local(h.addr()).unwrap();
    endpoints.rest = format!("http://{relay_addr}").parse().unwrap();
    endpoints
}

/// `cargo bench` passes `--bench`; anything else (`cargo test --all-targets`) is a smoke run.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A round's exchange and journal: the local exchange on a market that stands still, its REST
/// port behind the relay, 20 resting BUY limits on 5 symbols journaled as the console would
/// have, and the engine's core restored from that journal.
pub struct StillMarket {
    pub sim: SimHandle,
    pub log: WireLog,
    pub relay: tokio::task::JoinHandle<()>,
    pub rest: BinanceRest,
    pub core: Core,
    /// The journal's folder, removed when dropped.
    pub dir: tempfile::TempDir,
}

pub async fn still_market(source: TicketSource) -> StillMarket {
    still_market_at(source, None).await
}

/// [`still_market`] with the journal at `journal` (`None`: a file in a fresh folder).
pub async fn still_market_at(source: TicketSource, journal: Option<crbot::journal::Location>) -> StillMarket {
    let config = SimConfig {
        step_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    };
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let (relay_addr, log, relay) = start_relay(sim.addr()).await;
    let rest = rest_via(endpoints_via(&sim, relay_addr), &sim);
    let dir = tempfile::tempdir().unwrap();
    let journal = match journal {
        Some(location) => Journal::open_at(&location, Mode::Sim).unwrap(),
        None => Journal::open(&dir.path().join("journal.db"), Mode::Sim).unwrap(),
    };
    place_resting(&rest, &sim, &journal).await;
    let core = Core::restore(journal, Mode::Sim, Limits::default(), source, now_ms()).unwrap();
    assert_eq!(core.state.symbols_with_open_orders().len(), SYMBOLS.len());
    StillMarket {
        sim,
        log,
        relay,
        rest,
        core,
        dir,
    }
}
