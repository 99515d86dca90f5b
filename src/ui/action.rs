//! What a key (or a new snapshot) means to the screen: the [`Action`] vocabulary shared by the
//! keymap, which produces actions, and `update`, which consumes them.
//!
//! Owns: the action enum only. Must not: import the keymap or the app state; both depend on
//! this module, so keeping it a leaf is what keeps the dependency between them one-way
//! (`app` → `keymap` → `action`).

use ratatui_textarea::Input;

/// What a key (or a new snapshot) means to the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Kill,
    RequestQuit,
    ToggleHelp,
    SelectTab(u8),
    FocusNext,
    FocusPrev,
    Up,
    Down,
    /// A page up or down in the focused list (`PgUp`/`PgDn`).
    PageUp,
    PageDown,
    /// The first or last row of the focused list (`g`/`Home`, `G`/`End`).
    Top,
    Bottom,
    OpenTicket,
    CancelOrder,
    ClosePosition,
    /// Offer a protective OCO again on the selected position (its lost stop-loss and
    /// take-profit), asked first.
    Protect,
    AddSymbol,
    /// A price alert on the selected watchlist symbol (the command line, prefilled).
    PriceAlert,
    /// `:` opens the command line.
    CommandLine,
    /// `/` filters the focused list.
    Filter,
    RemoveSymbol,
    ChangeLimit,
    CycleEquityWindow,
    /// The chart's next or previous timeframe (1m, 5m, 1h, 1d).
    NextTimeframe,
    PrevTimeframe,
    Flatten,
    Rearm,
    /// Hide the kill-switch panel.
    Dismiss,
    NextField,
    PrevField,
    SubmitTicket,
    CloseTicket,
    Confirm,
    Cancel,
    ChoosePrev,
    ChooseNext,
    ChoosePercent(u8),
    /// Tab in a prompt: complete the symbol typed so far from the exchange's symbols.
    Complete,
    /// A key for the focused text field (ticket or prompt).
    Edit(Input),
    /// A key bound to nothing where it was pressed (its label): the footer says so briefly.
    Unbound(String),
    /// A new snapshot arrived: ring for new fills/rejections, open a pending limit dialog.
    SnapshotArrived,
}
