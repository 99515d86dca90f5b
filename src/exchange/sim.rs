//! The local Binance-compatible exchange (DESIGN.md §9): being built.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `crbot sim` options (the command-line contract of issue 3).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to bind (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Seed of the synthetic market: the same seed gives the same prices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Time multiplier for the synthetic market (1 = real time).
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// File holding the account (balances, orders, trades) across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Start over: discard the saved account in --state.
    #[arg(long)]
    pub reset: bool,
    /// Fault switches, e.g. `drop_ws_every=30,order_503=1` (see README).
    #[arg(long)]
    pub faults: Option<String>,
    /// Price source: `synthetic` (default) or `binance[=WS_URL]` (paper mode).
    #[arg(long)]
    pub prices: Option<String>,
}

/// Runs `crbot sim` until SIGINT/SIGTERM.
pub fn run_cli(_args: &SimArgs) -> anyhow::Result<()> {
    anyhow::bail!("`crbot sim` is not built yet")
}
