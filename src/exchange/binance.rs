//! The Binance spot client: the only code in crbot that talks to an exchange, in every mode
//! (DESIGN.md §1–2, issue 4, binance-spot.md §0).
//!
//! Owns: signing, endpoints, the REST client with clock sync and rate limits, the market and
//! user-data streams, error classification, and order reconciliation helpers. Must not: hold
//! trading state (the engine owns it), decide risk, write the journal, log a secret or a signed
//! URL, or ever resend an order whose outcome is unknown.

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
