//! The credential vault (DESIGN.md §4): being built.

/// `crbot vault …` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum VaultCommand {
    /// Create a new, empty vault (asks the passphrase twice).
    Init,
    /// Store API keys for a mode (demo, testnet, live).
    SetKeys {
        /// Private key file for an Ed25519 API key (instead of a secret).
        #[arg(long)]
        ed25519_key_file: Option<std::path::PathBuf>,
    },
    /// Change the passphrase and re-encrypt.
    Rotate,
    /// Show what the vault holds, without any secret.
    Status,
}
