//! The Binance spot client: the only code in crbot that talks to an exchange, in every mode
//! (DESIGN.md §1–2, issue 4, binance-spot.md §0).
//!
//! Owns: signing (`sign`), endpoints per mode (`endpoints`), the REST client with clock sync and
//! rate limits (`rest`, `clock`, `limits`), answer and event parsing (`wire`, `events`), the
//! market and user-data stream tasks (`market`, `user`), exchange rules and ticket preparation
//! (`rules`), and order reconciliation (`reconcile`). Must not: hold trading state (the engine
//! owns it), decide risk, write the journal, log a secret or a signed URL, or ever resend an
//! order whose outcome is unknown.
//!
//! How the owner uses it:
//! - `BinanceRest::new(Endpoints::for_mode(..), creds, RestConfig::default(), ban_store)`;
//!   `sync_clock()` at start and every few minutes; `exchange_info()` into a `RulesCache`.
//! - `spawn_market_stream(..)` and `spawn_user_stream(..)` feed owned events on channels; on
//!   every `UserEvent::Subscribed`, run `reconcile::resync` and apply its fills through a
//!   `FillDedup`.
//! - Orders: journal the client order id, then `place_order`; `OrderOutcome::Unknown` →
//!   keep the order UNKNOWN, watch the user stream, then `reconcile::resolve_unknown`.
//! - After an entry is terminal with fills: `reconcile::protective_oco` → `place_oco`.
//! - Kill switch: `cancel_all(symbol)` per symbol; cancels bypass the client-side throttle.

pub mod backoff;
pub mod clock;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod limits;
pub mod market;
pub mod reconcile;
pub mod rest;
pub mod rules;
pub mod sign;
pub mod user;
pub mod wire;

pub use endpoints::Endpoints;
pub use error::{ClientError, OrderOutcome};
pub use events::{MarketEvent, StreamStatus, UserEvent};
pub use rest::{BinanceRest, OcoRequest, RestConfig};
pub use sign::{Credentials, KeyMaterial};
