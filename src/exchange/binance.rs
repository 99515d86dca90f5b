//! The Binance spot client (being built).
