//! engine: see DESIGN.md §2 (being built).

pub mod snapshot;
