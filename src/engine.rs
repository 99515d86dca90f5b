//! engine: see DESIGN.md §2 (being built).

pub mod core;
pub mod kill;
pub mod session;
pub mod snapshot;
pub mod state;
pub mod ticket;
pub mod runtime;
pub mod console;
