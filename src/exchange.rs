//! Everything that speaks the Binance protocol: `binance` is the client crbot trades
//! through in every mode; `sim` is the local Binance-compatible exchange.
//! The two never share protocol code, so a mistake on one side cannot hide on the other.

pub mod binance;
pub mod sim;
