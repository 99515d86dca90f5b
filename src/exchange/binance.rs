//! The Binance spot client: the only code in crbot that talks to an exchange, in every mode
//! (the parts and modes of README "Modes").
//!
//! Owns: signing (`sign`), endpoints per mode (`endpoints`), the REST client with clock sync and
//! rate limits (`rest`, `clock`, `limits`), the client as a `risk::Broker` (`broker`), answer
//! and event parsing into the domain's report types (`wire`, `events`), the
//! market and user-data stream tasks (`market`, `user`) over one WebSocket session driver
//! (`ws_session`), the market queue that hands market events to the engine, conflating
//! superseded quotes (`market_queue`), and order reconciliation (`reconcile`). Rounding a ticket to the exchange's filters is the risk check's job
//! (`risk::check` over `domain::SymbolRules`), not the client's. Must not: hold trading state (the engine
//! owns it), decide risk, write the journal, log a secret or a signed URL, or ever resend an
//! order whose outcome is unknown.
//!
//! How the owner uses it:
//! - `BinanceRest::new(Endpoints::for_mode(..), creds, RestConfig::default(), ban_store)`;
//!   `sync_clock()` at start and every few minutes; `exchange_info()` at start and periodically.
//! - `spawn_market_stream(..)` (on a `market_queue::channel`) and `spawn_user_stream(..)` (on
//!   an `mpsc` channel) feed owned events; on
//!   every `UserEvent::Subscribed`, run `reconcile::resync` and apply its fills, deduplicated by
//!   (symbol, trade id, order id) (the journal does; `FillDedup` for callers without one).
//! - Orders: journal the client order id, then `Broker::place_order` with the risk-approved
//!   request; `OrderOutcome::Unknown` →
//!   keep the order UNKNOWN, watch the user stream, then `reconcile::resolve_unknown`.
//! - After an entry is terminal with fills: `reconcile::protective_oco`, approved by
//!   `risk::approve_protection` → `Broker::place_oco`.
//! - Kill switch: `cancel_all(symbol)` per symbol; cancels bypass the client-side throttle.

pub mod backoff;
pub mod book;
pub mod broker;
pub mod clock;
pub mod endpoints;
pub mod events;
pub mod limits;
pub mod market;
pub mod market_queue;
pub mod reconcile;
pub mod rest;
pub mod sign;
pub mod user;
pub mod wire;
pub mod ws_session;

pub use endpoints::Endpoints;
pub use events::{MarketEvent, StreamStatus, UserEvent};
pub use rest::{BinanceRest, RestConfig};
pub use sign::{Credentials, KeyMaterial};
