//! crbot: a terminal trading console for Binance spot.
//!
//! The library holds everything; `main.rs` only parses the command line and calls in here.
//! The parts: `domain` (values), `portfolio` and `risk` (pure), `vault`,
//! `exchange` (the Binance client and the local exchange), `journal`, `engine` (the one owner
//! of mutable state), `ui` (the screen), `cli` (the commands), `api` (the engine's control API
//! over HTTP), and above everything else `console` (the screen and the engine wired together),
//! `serve` (the engine, headless, with the API on TCP) and `attach` (the screen of an engine
//! that runs in another process).
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used)]
#![warn(missing_debug_implementations)]

pub mod alerts;
pub mod api;
pub mod attach;
pub mod cli;
pub mod config;
pub mod console;
pub mod doctor;
pub mod domain;
pub mod engine;
pub mod exchange;
pub mod failpoint;
/// Entry points of the fuzz targets (`fuzz/`) and of the corpus test; not part of the product.
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod logging;
pub mod portfolio;
pub mod risk;
pub mod secret;
pub mod secrets;
pub mod serve;
pub mod ui;
pub mod vault;
