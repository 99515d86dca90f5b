//! The screen's own state and its pure `update`: focus, tabs, selections, the ticket's text
//! fields, dialogs, the help overlay, and which alerts have already rung.
//!
//! Owns: [`App`], the [`Action`]s that change it, and the [`Effect`]s it asks the run loop to
//! carry out. Must not: read a clock, do I/O or hold trading state: what is true about the
//! account comes from the engine's [`Snapshot`], and every request goes out as a [`Command`].
//!
//! The kill switch is optimistic on screen: after the kill key the header shows HALTED at once
//! (with "kill sent") until a snapshot confirms it, so the trader never sees ACTIVE after
//! pressing the key. If the engine never confirms, the screen stays HALTED: the safe side.

use std::collections::HashSet;

use ratatui::style::Style;
use ratatui_textarea::{CursorMove, Input, Key, TextArea};
use rust_decimal::Decimal;

use super::UiConfig;
use super::action::Action;
use super::keymap::{Context, KeyPress};
use crate::domain::{ClientOrderId, LocalOrderState, OrderPurpose, OrderStatus, Price, Qty, Symbol, plain};
use crate::engine::snapshot::{
    ChartInterval, Command, EquityWindow, LimitChangePending, LimitName, LogKind, OutgoingOrder, Snapshot,
    TicketDraft, TicketField, TicketOutcome, TicketResult,
};
use crate::secret::SecretString;

/// What `update` asks the run loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(Command),
    Bell,
    Quit,
}

/// The narrow layout's tabs (the wide layout shows every panel at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Market,
    Positions,
    Risk,
    Log,
    Ticket,
    /// The selected symbol's order book and recent trades.
    Book,
    History,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Market,
        Tab::Positions,
        Tab::Risk,
        Tab::Log,
        Tab::Ticket,
        Tab::Book,
        Tab::History,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Market => "Market",
            Tab::Positions => "Positions",
            Tab::Risk => "Risk",
            Tab::Log => "Log",
            Tab::Ticket => "Ticket",
            Tab::Book => "Book",
            Tab::History => "History",
        }
    }

    /// The title where the full ones do not fit on one row.
    pub fn short_title(self) -> &'static str {
        match self {
            Tab::Market => "Mkt",
            Tab::Positions => "Pos",
            Tab::Risk => "Risk",
            Tab::Log => "Log",
            Tab::Ticket => "Tkt",
            Tab::Book => "Book",
            Tab::History => "Hist",
        }
    }
}

/// The panel that has the keys: Tab and Shift-Tab go round every one of them, at every size
/// (in the tabbed layout, to the tab that shows it). Up/Down move in its list (the log and
/// the history scroll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Watchlist,
    Positions,
    Orders,
    Depth,
    Trades,
    Candles,
    History,
    Log,
}

impl Focus {
    /// Every panel, in the order Tab visits them.
    pub const ALL: [Focus; 8] = [
        Focus::Watchlist,
        Focus::Positions,
        Focus::Orders,
        Focus::Depth,
        Focus::Trades,
        Focus::Candles,
        Focus::History,
        Focus::Log,
    ];

    /// The panel's slot in [`App::filters`].
    pub fn index(self) -> usize {
        Focus::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// The symbol of each row of this list, in the snapshot's order (none for a panel that is
    /// not a list of symbols).
    fn symbols(self, snap: &Snapshot) -> Vec<&Symbol> {
        match self {
            Focus::Watchlist => snap.watchlist.iter().map(|r| &r.symbol).collect(),
            Focus::Positions => snap.positions.iter().map(|r| &r.symbol).collect(),
            Focus::Orders => snap.orders.iter().map(|r| &r.symbol).collect(),
            Focus::History => super::history::history_rows(snap)
                .into_iter()
                .map(|r| r.symbol())
                .collect(),
            Focus::Depth | Focus::Trades | Focus::Candles | Focus::Log => vec![],
        }
    }

    /// Whether `/` filters this panel's rows by symbol.
    pub fn filterable(self) -> bool {
        matches!(
            self,
            Focus::Watchlist | Focus::Positions | Focus::Orders | Focus::History
        )
    }

    /// The tab that shows this panel in the tabbed layout.
    pub fn tab(self) -> Tab {
        match self {
            Focus::Watchlist | Focus::Candles => Tab::Market,
            Focus::Positions | Focus::Orders => Tab::Positions,
            Focus::Depth | Focus::Trades => Tab::Book,
            Focus::History => Tab::History,
            Focus::Log => Tab::Log,
        }
    }
}

pub const PERCENTS: [u8; 4] = [25, 50, 75, 100];

/// A modal dialog; at most one is open.
#[derive(Debug, Clone)]
pub enum Dialog {
    /// Lists exactly the orders that will leave.
    ConfirmSubmit {
        draft: TicketDraft,
        orders: Vec<OutgoingOrder>,
    },
    ConfirmQuit {
        open_orders: usize,
    },
    /// `x` on a stop-loss or take-profit leg: the exchange cancels the whole OCO, so the
    /// position is left without protection there. Asked, never done on one key.
    CancelProtection {
        order: ClientOrderId,
        symbol: Symbol,
        purpose: OrderPurpose,
    },
    /// `x` on an entry or exit order: which order, as one line ("BUY LIMIT 0.15 ETHUSDT @ 3120.50").
    CancelOrder {
        order: ClientOrderId,
        line: String,
    },
    ClosePosition {
        symbol: Symbol,
        percent: u8,
        external: bool,
    },
    Flatten {
        percent: u8,
    },
    /// Re-place a protective OCO on crbot's position in `symbol`: popped once when the
    /// engine reports the position's protection lost (`cause`: the leg and its status), and
    /// offered again by `p` or `:protect`. The quantity shown is the engine's
    /// (`Snapshot::protect_qty`); `y` sends [`Command::Reprotect`] through the risk gate.
    Reprotect {
        symbol: Symbol,
        stop_loss: Price,
        take_profit: Price,
        cause: Option<(OrderPurpose, OrderStatus)>,
    },
    /// `passphrase` is `Some` (what was typed so far) when the mode has keys: re-arming then
    /// needs the vault passphrase, which is never drawn.
    Rearm {
        passphrase: Option<SecretString>,
        error: Option<String>,
    },
    AddSymbol {
        input: TextArea<'static>,
        error: Option<String>,
    },
    /// `/` — the focused list's filter (a part of a symbol; empty shows every row).
    Filter {
        focus: Focus,
        input: TextArea<'static>,
        error: Option<String>,
    },
    /// `:` — a command typed as a line (`buy BTCUSDT 0.01 --limit 97000`, `kill`, `limit daily 4`).
    CommandLine {
        input: TextArea<'static>,
        error: Option<String>,
    },
    /// Pick a limit (Up/Down) and type its new value.
    Limit {
        choice: usize,
        input: TextArea<'static>,
        error: Option<String>,
    },
    /// A loosening waits for its phrase to be typed back.
    ConfirmLimit {
        pending: LimitChangePending,
        input: TextArea<'static>,
        error: Option<String>,
    },
}

impl Dialog {
    /// The text field of a prompt dialog, with its error line.
    fn text_field(&mut self) -> Option<(&mut TextArea<'static>, &mut Option<String>)> {
        match self {
            Dialog::AddSymbol { input, error }
            | Dialog::CommandLine { input, error }
            | Dialog::Filter { input, error, .. }
            | Dialog::Limit { input, error, .. }
            | Dialog::ConfirmLimit { input, error, .. } => Some((input, error)),
            _ => None,
        }
    }

    fn context(&self) -> Context {
        match self {
            Dialog::AddSymbol { .. }
            | Dialog::CommandLine { .. }
            | Dialog::Filter { .. }
            | Dialog::Limit { .. }
            | Dialog::ConfirmLimit { .. } => Context::Prompt,
            Dialog::Rearm {
                passphrase: Some(_), ..
            } => Context::Prompt,
            _ => Context::Dialog,
        }
    }
}

/// The order ticket's fields.
#[derive(Debug, Clone)]
pub struct TicketForm {
    pub fields: Vec<TextArea<'static>>,
    pub focused: usize,
    /// The draft last sent for preview, so an unchanged draft is not sent again.
    pub last_previewed: Option<TicketDraft>,
    /// The draft last submitted, so the result shown is the one for this ticket.
    pub submitted: Option<TicketDraft>,
}

impl TicketForm {
    fn new(values: [String; 7]) -> Self {
        let fields = values.into_iter().map(single_line).collect();
        TicketForm {
            fields,
            focused: 3,
            last_previewed: None,
            submitted: None,
        }
    }

    pub fn text(&self, field: TicketField) -> String {
        let i = TicketField::ALL.iter().position(|f| *f == field).unwrap_or(0);
        self.fields.get(i).map(field_text).unwrap_or_default()
    }

    pub fn draft(&self) -> TicketDraft {
        TicketDraft {
            symbol: self.text(TicketField::Symbol),
            side: self.text(TicketField::Side),
            order_type: self.text(TicketField::OrderType),
            amount: self.text(TicketField::Amount),
            price: self.text(TicketField::Price),
            stop_loss: self.text(TicketField::StopLoss),
            take_profit: self.text(TicketField::TakeProfit),
        }
    }

    pub fn focused_field(&self) -> TicketField {
        TicketField::ALL
            .get(self.focused)
            .copied()
            .unwrap_or(TicketField::Symbol)
    }

    /// Replaces a field's text (the cursor at its end).
    fn set(&mut self, field: TicketField, text: &str) {
        if let Some(i) = TicketField::ALL.iter().position(|f| *f == field)
            && let Some(slot) = self.fields.get_mut(i)
        {
            *slot = single_line(text.to_string());
        }
    }

    /// Moves the focus one field on or back; a MARKET ticket has no price to type, so its
    /// price field is passed over.
    fn step_focus(&mut self, forward: bool) {
        let len = self.fields.len();
        self.focused = cycle(len, self.focused, forward);
        if self.focused_field() == TicketField::Price && self.text(TicketField::OrderType) == "MARKET" {
            self.focused = cycle(len, self.focused, forward);
        }
    }
}

/// The two values of a toggle field of the ticket, each with the letter that picks it. Side and
/// type are never free text: a typo there can only be a wrong order.
fn toggle_values(field: TicketField) -> Option<[(&'static str, char); 2]> {
    match field {
        TicketField::Side => Some([("BUY", 'b'), ("SELL", 's')]),
        TicketField::OrderType => Some([("LIMIT", 'l'), ("MARKET", 'm')]),
        _ => None,
    }
}

/// A key on a toggle field: its letter picks a value; Left, Right and Space flip it; any other
/// key does nothing. The new value when it changed.
fn toggle(current: &str, values: [(&'static str, char); 2], input: &Input) -> Option<&'static str> {
    if input.ctrl || input.alt {
        return None;
    }
    let flipped = if current == values[0].0 {
        values[1].0
    } else {
        values[0].0
    };
    let next = match input.key {
        Key::Char(c) => match values.iter().find(|(_, k)| *k == c.to_ascii_lowercase()) {
            Some((v, _)) => *v,
            None if c == ' ' => flipped,
            None => return None,
        },
        Key::Left | Key::Right => flipped,
        _ => return None,
    };
    (next != current).then_some(next)
}

/// Where a new limit price starts for `symbol`: a buy at the ask, a sell at the bid (the last
/// trade when the book side is missing). `None` when the screen has no quote for it.
fn start_price(snap: &Snapshot, symbol: &str, side: &str) -> Option<String> {
    let row = snap.watchlist.iter().find(|w| w.symbol.as_str() == symbol)?;
    let p = if side == "SELL" { row.bid } else { row.ask };
    p.or(row.last).map(|p| p.to_string())
}

/// A one-line text field with the cursor at the end and no cursor-line underline.
pub fn single_line(text: String) -> TextArea<'static> {
    let mut t = TextArea::new(vec![text]);
    t.set_cursor_line_style(Style::default());
    t.move_cursor(CursorMove::End);
    t
}

pub fn field_text(t: &TextArea<'_>) -> String {
    t.lines().concat()
}

/// Applies one key to a one-line field: characters, Backspace, Delete and cursor moves only.
/// Enter and Tab never reach here (the keymap takes them), and no editor shortcut runs, so
/// a key can never do something the help screen does not list. Returns true on a change.
fn edit(t: &mut TextArea<'static>, input: Input) -> bool {
    match input.key {
        Key::Left => {
            t.move_cursor(CursorMove::Back);
            false
        }
        Key::Right => {
            t.move_cursor(CursorMove::Forward);
            false
        }
        Key::Home => {
            t.move_cursor(CursorMove::Head);
            false
        }
        Key::End => {
            t.move_cursor(CursorMove::End);
            false
        }
        // As in a shell: Ctrl-U deletes to the start, Ctrl-W the word before the cursor,
        // Ctrl-A / Ctrl-E go to the start / end, Alt-B / Alt-F move a word.
        Key::Char('u') if input.ctrl => t.delete_line_by_head(),
        Key::Char('w') if input.ctrl => t.delete_word(),
        Key::Char('h') if input.ctrl => t.delete_char(),
        Key::Char('a') if input.ctrl => {
            t.move_cursor(CursorMove::Head);
            false
        }
        Key::Char('e') if input.ctrl => {
            t.move_cursor(CursorMove::End);
            false
        }
        Key::Char('b') if input.alt => {
            t.move_cursor(CursorMove::WordBack);
            false
        }
        Key::Char('f') if input.alt => {
            t.move_cursor(CursorMove::WordForward);
            false
        }
        Key::Char(_) | Key::Backspace | Key::Delete if !input.ctrl && !input.alt => {
            t.input_without_shortcuts(input)
        }
        _ => false,
    }
}

/// Applies one key to a passphrase: characters and Backspace only (no cursor, since the text
/// is never shown). The new value is built in a buffer of its final size, so no reallocation
/// leaves an unwiped copy behind. Returns true on a change.
fn edit_secret(p: &mut SecretString, input: Input) -> bool {
    if input.ctrl || input.alt {
        return false;
    }
    let old = p.expose();
    let next = match input.key {
        Key::Char(c) => {
            let mut next = String::with_capacity(old.len() + c.len_utf8());
            next.push_str(old);
            next.push(c);
            next
        }
        Key::Backspace if !old.is_empty() => {
            let mut chars = old.chars();
            chars.next_back();
            let mut next = String::with_capacity(chars.as_str().len());
            next.push_str(chars.as_str());
            next
        }
        _ => return false,
    };
    *p = SecretString::new(next);
    true
}

/// Where a list was drawn in the last frame, for the mouse: its panel, the screen row of its
/// first data row, and how many rows the table scrolled past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRegion {
    pub focus: Focus,
    pub area: ratatui::layout::Rect,
    pub first_row: u16,
    pub offset: usize,
}

/// The screen's state. Owned by the run loop; changed only by [`update`].
#[derive(Debug, Clone)]
pub struct App {
    pub config: UiConfig,
    pub tab: Tab,
    pub focus: Focus,
    pub watch_sel: usize,
    pub position_sel: usize,
    pub order_sel: usize,
    /// Each list's `/` filter (upper case; empty shows every row): rows whose symbol contains
    /// it. One slot per [`Focus`] (`Focus::index`).
    pub filters: [String; 8],
    /// The selected row of the history (an index into `history::history_rows`).
    pub history_sel: usize,
    /// The history's rows, sorted, filtered and formatted: a memo of the snapshot and the
    /// history's filter, brought up to date by [`App::history_table`] when either changed.
    history: std::cell::RefCell<super::history::HistoryTable>,
    /// The log scrolled back: the `seq` of the newest line shown (`None`: following the
    /// newest line). New lines never move a scrolled log.
    pub log_anchor: Option<u64>,
    /// The chart's timeframe last asked for.
    pub chart_interval: ChartInterval,
    /// The lists as the last frame drew them (the view records them; the mouse reads them).
    pub regions: std::cell::RefCell<Vec<ListRegion>>,
    pub equity_window: EquityWindow,
    pub ticket: Option<TicketForm>,
    pub dialog: Option<Dialog>,
    pub help: bool,
    /// The help overlay's first row when it does not fit (the view clamps it).
    pub help_scroll: usize,
    /// The kill key was pressed and no snapshot has shown HALTED yet.
    pub kill_sent: bool,
    /// The kill-switch panel of the kill that started at this time was dismissed.
    pub kill_dismissed: Option<i64>,
    /// The ticket closed with Esc before it was sent: `t` on its symbol opens it again.
    kept_ticket: Option<TicketForm>,
    /// One line of feedback in the footer ("no order selected").
    pub status: Option<String>,
    /// A ticket was confirmed and its verdict has not been flashed yet: the ticket result the
    /// snapshot showed before it, so that only a new result is taken for its verdict.
    awaiting_verdict: Option<Option<TicketResult>>,
    /// A pending loosening the trader answered (confirmed or cancelled): not asked again
    /// while the engine still shows it.
    limit_answered: Option<LimitChangePending>,
    last_log_seq: u64,
    /// The newest price alert firing already rung for (ms).
    alerts_seen_ms: i64,
    /// Lost protections already offered (symbol, when the engine saw the loss): each pops its
    /// dialog once.
    lost_offered: HashSet<(Symbol, i64)>,
    /// A re-protection was confirmed: its symbol and the newest log line then, so that the
    /// engine's verdict on it is shown on the status line.
    awaiting_reprotect: Option<(Symbol, u64)>,
    limits_rung: HashSet<LimitName>,
    /// The account as of the last snapshot, to check an open ticket again when it changes.
    account: AccountMark,
}

/// What a ticket's verdict depends on besides its own fields and the quotes: the trading
/// state, the positions held and the orders open. The preview is only requested when the draft
/// changes, so without this a ticket left open after its entry filled kept saying "APPROVED"
/// (DUPLICATE_POSITION passed) and, after the kill key, kept approving under HALTED.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountMark {
    trading: crate::engine::snapshot::TradingState,
    positions: Vec<(Symbol, Qty)>,
    orders: Vec<(String, LocalOrderState)>,
}

impl AccountMark {
    fn of(snap: &Snapshot) -> AccountMark {
        AccountMark {
            trading: snap.header.trading.clone(),
            positions: snap.positions.iter().map(|p| (p.symbol.clone(), p.qty)).collect(),
            orders: snap
                .orders
                .iter()
                .map(|o| (o.client_order_id.to_string(), o.state))
                .collect(),
        }
    }
}

/// The ratio at which a limit rings the bell.
fn alert_ratio() -> Decimal {
    Decimal::new(8, 1)
}

impl App {
    /// A fresh screen. Lines and limits already in `snapshot` are taken as seen: the bell
    /// rings only for what happens after start-up.
    pub fn new(config: UiConfig, snapshot: &Snapshot) -> App {
        let note = config.theme_note.clone();
        let watch_sel = snapshot
            .selected_symbol
            .as_ref()
            .and_then(|s| snapshot.watchlist.iter().position(|w| &w.symbol == s))
            .unwrap_or(0);
        App {
            config,
            tab: Tab::Market,
            focus: Focus::Watchlist,
            watch_sel,
            position_sel: 0,
            order_sel: 0,
            filters: Default::default(),
            history_sel: 0,
            history: Default::default(),
            log_anchor: None,
            chart_interval: snapshot.focus.interval,
            regions: Default::default(),
            equity_window: EquityWindow::Session,
            ticket: None,
            dialog: None,
            help: false,
            help_scroll: 0,
            kill_sent: false,
            kill_dismissed: None,
            kept_ticket: None,
            status: note,
            awaiting_verdict: None,
            limit_answered: None,
            last_log_seq: snapshot.log.iter().map(|l| l.seq).max().unwrap_or(0),
            alerts_seen_ms: super::watchlist::newest_firing(snapshot),
            lost_offered: HashSet::new(),
            awaiting_reprotect: None,
            limits_rung: snapshot
                .limits
                .usage()
                .iter()
                .filter(|(_, r)| *r >= alert_ratio())
                .map(|(n, _)| *n)
                .collect(),
            account: AccountMark::of(snapshot),
        }
    }

    /// Where keys are looked up now.
    pub fn context(&self) -> Context {
        if let Some(d) = &self.dialog {
            d.context()
        } else if self.help {
            Context::Help
        } else if self.ticket.is_some() {
            Context::Ticket
        } else {
            Context::Normal
        }
    }

    /// A key press, through the keymap. Unbound keys edit the focused text field, if any.
    pub fn action_for(&self, key: KeyPress) -> Option<Action> {
        let context = self.context();
        if let Some(action) = self.config.keymap.resolve(context, key) {
            return Some(action);
        }
        match context {
            Context::Ticket | Context::Prompt => Some(Action::Edit(to_input(key))),
            _ => Some(Action::Unbound(key.label(self.config.theme.ascii))),
        }
    }

    /// The history's rows for `snap`, sorted, formatted and filtered: kept from the last
    /// call unless the journal's lists, the day, a tick or the filter changed since.
    pub fn history_table(&self, snap: &Snapshot) -> std::cell::Ref<'_, super::history::HistoryTable> {
        // Only this method borrows the memo mutably, and never while a `Ref` it returned is
        // held by the same caller: the view and `update` take one, use it, drop it.
        if let Ok(mut table) = self.history.try_borrow_mut() {
            table.refresh(snap, &self.filters[Focus::History.index()]);
        }
        self.history.borrow()
    }

    /// The rows of `focus`'s list that its filter lets through (indices into the snapshot's list).
    pub fn visible(&self, focus: Focus, snap: &Snapshot) -> Vec<usize> {
        if focus == Focus::History {
            return self.history_table(snap).shown().to_vec();
        }
        let filter = &self.filters[focus.index()];
        focus
            .symbols(snap)
            .iter()
            .enumerate()
            .filter(|(_, s)| filter.is_empty() || s.as_str().contains(filter.as_str()))
            .map(|(i, _)| i)
            .collect()
    }

    fn sel(&self, focus: Focus) -> usize {
        match focus {
            Focus::Watchlist => self.watch_sel,
            Focus::Positions => self.position_sel,
            Focus::Orders => self.order_sel,
            Focus::History => self.history_sel,
            Focus::Depth | Focus::Trades | Focus::Candles | Focus::Log => 0,
        }
    }

    fn set_sel(&mut self, focus: Focus, i: usize) {
        match focus {
            Focus::Watchlist => self.watch_sel = i,
            Focus::Positions => self.position_sel = i,
            Focus::Orders => self.order_sel = i,
            Focus::History => self.history_sel = i,
            Focus::Depth | Focus::Trades | Focus::Candles | Focus::Log => {}
        }
    }

    /// The selected row of `focus`'s list when it is on screen (a row its filter hides is
    /// never acted on).
    pub fn selected(&self, focus: Focus, snap: &Snapshot) -> Option<usize> {
        let sel = self.sel(focus);
        self.visible(focus, snap).contains(&sel).then_some(sel)
    }

    /// Where the selection is drawn among the rows shown.
    pub fn shown_selection(&self, focus: Focus, snap: &Snapshot) -> Option<usize> {
        let sel = self.sel(focus);
        self.visible(focus, snap).iter().position(|i| *i == sel)
    }

    /// Whether the kill-switch panel is shown.
    pub fn kill_panel_visible(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .kill
            .as_ref()
            .is_some_and(|k| self.kill_dismissed != Some(k.started_ms))
    }
}

/// A keymap key as the text field's input.
fn to_input(key: KeyPress) -> Input {
    use crossterm::event::{KeyCode, KeyModifiers};
    let k = match key.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => Key::Null,
    };
    Input {
        key: k,
        ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
        alt: key.modifiers.contains(KeyModifiers::ALT),
        shift: false,
    }
}

fn cycle(len: usize, current: usize, forward: bool) -> usize {
    if len == 0 {
        0
    } else if forward {
        (current + 1) % len
    } else {
        (current + len - 1) % len
    }
}

fn step_percent(p: u8, forward: bool) -> u8 {
    let i = PERCENTS.iter().position(|x| *x == p).unwrap_or(3);
    let j = if forward {
        (i + 1).min(3)
    } else {
        i.saturating_sub(1)
    };
    PERCENTS[j]
}

/// The one place the screen's state changes. Pure: no clock, no I/O.
pub fn update(app: &mut App, action: Action, snap: &Snapshot) -> Vec<Effect> {
    let mut fx = Vec::new();
    // A status line answers the key just pressed and lasts until the next one: left standing,
    // it hid the footer's key hints for good ("ticket sent" over the ticket's keys) and kept
    // saying "KILL sent: halting..." long after the kill panel said done.
    if !matches!(action, Action::SnapshotArrived) {
        app.status = None;
        app.awaiting_verdict = None;
    }
    match action {
        Action::Kill => fx.extend(kill(app, snap)),
        Action::RequestQuit => {
            app.help = false;
            app.dialog = Some(Dialog::ConfirmQuit {
                open_orders: snap.orders.len(),
            });
        }
        Action::ToggleHelp => {
            app.help = !app.help;
            app.help_scroll = 0;
        }
        Action::Up | Action::Down | Action::PageUp | Action::PageDown if app.help => {
            let rows = app.config.keymap.bindings.len();
            app.help_scroll = move_sel(app.help_scroll, rows, &action);
        }
        Action::SelectTab(_)
        | Action::FocusNext
        | Action::FocusPrev
        | Action::NextTimeframe
        | Action::PrevTimeframe => fx.extend(navigate(app, snap, &action)),
        Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
            fx.extend(move_selection(app, snap, &action));
        }
        Action::Unbound(key) => {
            let hint = if app.dialog.is_some() {
                "y or n"
            } else {
                "? lists every key"
            };
            app.status = Some(format!("{key}: no action here ({hint})"));
        }
        Action::OpenTicket => fx.extend(open_ticket(app, snap)),
        Action::CancelOrder => fx.extend(cancel_order(app, snap)),
        Action::ClosePosition => match position_target(app, snap) {
            Ok(p) => {
                app.dialog = Some(Dialog::ClosePosition {
                    symbol: p.symbol.clone(),
                    percent: 100,
                    external: p.external,
                });
            }
            Err(why) => app.status = Some(why),
        },
        Action::Protect => match position_target(app, snap) {
            Ok(p) => {
                let symbol = p.symbol.clone();
                if let Err(why) = offer_protection(app, snap, &symbol, None) {
                    app.status = Some(why);
                }
            }
            Err(why) => app.status = Some(why),
        },
        Action::Filter | Action::CommandLine | Action::AddSymbol => open_prompt(app, &action),
        Action::PriceAlert => open_price_alert(app, snap),
        Action::RemoveSymbol => match app
            .selected(Focus::Watchlist, snap)
            .and_then(|i| snap.watchlist.get(i))
        {
            Some(row) => {
                fx.push(Effect::Send(Command::RemoveSymbol(row.symbol.clone())));
                app.status = Some(format!("removed {} from the watchlist", row.symbol));
                app.watch_sel = app.watch_sel.min(snap.watchlist.len().saturating_sub(2));
            }
            None => app.status = Some("the watchlist is empty".into()),
        },
        Action::ChangeLimit => {
            let value = plain(snap.limits.value_of(LimitName::ALL[0]));
            app.dialog = Some(Dialog::Limit {
                choice: 0,
                input: single_line(value),
                error: None,
            });
        }
        Action::CycleEquityWindow => app.equity_window = app.equity_window.next(),
        Action::Flatten => {
            if snap.header.trading.is_halted() || app.kill_sent {
                app.dialog = Some(Dialog::Flatten { percent: 100 });
            } else {
                app.status = Some("flatten is stage two of the kill switch: press the kill key first".into());
                fx.push(Effect::Bell);
            }
        }
        Action::Rearm => {
            if matches!(snap.header.trading, crate::engine::snapshot::TradingState::Active) && !app.kill_sent
            {
                app.status = Some("trading is already active".into());
            } else {
                // Keys from the vault re-arm only with its passphrase, as `crbot resume` does;
                // keys from a secrets service are fetched again by the engine instead.
                app.dialog = Some(Dialog::Rearm {
                    passphrase: snap.rearm_needs_passphrase.then(SecretString::default),
                    error: None,
                });
            }
        }
        Action::Dismiss => {
            if let Some(k) = &snap.kill {
                app.kill_dismissed = Some(k.started_ms);
            }
            app.status = None;
        }
        Action::NextField | Action::PrevField => {
            if let Some(t) = &mut app.ticket {
                t.step_focus(action == Action::NextField);
            }
        }
        Action::SubmitTicket => fx.extend(submit_ticket(app, snap)),
        Action::CloseTicket => {
            // Esc keeps an unsent draft for the next `t` (on the same symbol); a sent one is
            // done with.
            app.kept_ticket = app.ticket.take().filter(|t| t.submitted.is_none());
            if app.tab == Tab::Ticket {
                app.tab = Tab::Market;
            }
        }
        Action::Confirm => fx.extend(confirm(app, snap)),
        Action::Cancel => match app.dialog.take() {
            Some(Dialog::ConfirmLimit { pending, .. }) => {
                app.limit_answered = Some(pending);
                fx.push(Effect::Send(Command::CancelLimitChange));
            }
            Some(Dialog::Reprotect { symbol, .. }) => {
                app.status = Some(format!(
                    "{symbol} left UNPROTECTED (p on the position offers it again)"
                ));
            }
            _ => {}
        },
        Action::ChoosePrev | Action::ChooseNext | Action::ChoosePercent(_) => choose(app, snap, &action),
        Action::Edit(input) => fx.extend(edit_focused(app, snap, input)),
        Action::Complete => complete_symbol(app, snap),
        Action::SnapshotArrived => {
            flash_verdict(app, snap);
            fx.extend(observe(app, snap));
        }
    }
    fx
}

/// Tabs, the panel focus (Tab goes round every panel, to the tab that shows it) and the
/// chart's timeframe.
fn navigate(app: &mut App, snap: &Snapshot, action: &Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    match action {
        Action::SelectTab(n) => {
            let i = usize::from((*n).saturating_sub(1)).min(Tab::ALL.len() - 1);
            app.tab = Tab::ALL[i];
            match app.tab {
                Tab::Ticket if app.ticket.is_none() => fx.extend(open_ticket(app, snap)),
                Tab::Risk | Tab::Ticket => {}
                // The tab's first panel, unless the focus is on one of its panels already.
                tab if app.focus.tab() != tab => {
                    app.focus = Focus::ALL
                        .into_iter()
                        .find(|f| f.tab() == tab)
                        .unwrap_or(Focus::Watchlist);
                }
                _ => {}
            }
        }
        Action::FocusNext | Action::FocusPrev => {
            let i = app.focus.index();
            app.focus = Focus::ALL[cycle(Focus::ALL.len(), i, *action == Action::FocusNext)];
            app.tab = app.focus.tab();
        }
        Action::NextTimeframe | Action::PrevTimeframe => {
            app.chart_interval = app.chart_interval.step(*action == Action::NextTimeframe);
            fx.push(Effect::Send(Command::SetChartInterval(app.chart_interval)));
        }
        _ => {}
    }
    fx
}

/// A mouse event: a click focuses the list under it and selects the row clicked; the wheel
/// moves the selection of the list under it (or scrolls the help). Nothing else: a click never
/// confirms, sends or closes anything, and the mouse does nothing while a dialog is open.
pub fn mouse(app: &mut App, event: crossterm::event::MouseEvent, snap: &Snapshot) -> Vec<Effect> {
    use crossterm::event::{MouseButton, MouseEventKind};
    if app.dialog.is_some() {
        return vec![];
    }
    let step = match event.kind {
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::Down(MouseButton::Left) => None,
        _ => return vec![],
    };
    if app.help {
        return step.map_or_else(Vec::new, |a| update(app, a, snap));
    }
    let at = ratatui::layout::Position::new(event.column, event.row);
    let Some(region) = app.regions.borrow().iter().copied().find(|r| r.area.contains(at)) else {
        return vec![];
    };
    app.focus = region.focus;
    if let Some(step) = step {
        return update(app, step, snap);
    }
    app.status = None;
    if event.row < region.first_row {
        return vec![];
    }
    let shown = usize::from(event.row - region.first_row) + region.offset;
    match app.visible(region.focus, snap).get(shown) {
        Some(i) => {
            app.set_sel(region.focus, *i);
            select_watched_symbol(app, snap)
        }
        None => vec![],
    }
}

/// `/`, `:` and `a`: a dialog with an empty text field (the filter's holds the list's current one).
fn open_prompt(app: &mut App, action: &Action) {
    if *action == Action::Filter && !app.focus.filterable() {
        app.status = Some("this panel has no rows to filter: Tab to a list".into());
        return;
    }
    let dialog = match action {
        Action::Filter => Dialog::Filter {
            focus: app.focus,
            input: single_line(app.filters[app.focus.index()].clone()),
            error: None,
        },
        Action::CommandLine => Dialog::CommandLine {
            input: single_line(String::new()),
            error: None,
        },
        _ => Dialog::AddSymbol {
            input: single_line(String::new()),
            error: None,
        },
    };
    app.dialog = Some(dialog);
}

/// The kill key: the command goes at once, whatever is open.
fn kill(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    // Stage one has no dialog. A submit or close awaiting "yes" must not go out after
    // a kill, so those dialogs close; typed text in the ticket stays as it was.
    if !snap.header.trading.is_halted() {
        app.kill_sent = true;
    }
    if matches!(
        app.dialog,
        Some(
            Dialog::ConfirmSubmit { .. }
                | Dialog::ClosePosition { .. }
                | Dialog::CancelOrder { .. }
                | Dialog::Rearm { .. }
                | Dialog::Reprotect { .. }
        )
    ) {
        app.dialog = None;
    }
    app.kill_dismissed = None;
    app.status = Some("KILL sent: halting and cancelling every open order".into());
    vec![Effect::Send(Command::Kill)]
}

/// Enter on the command line. An order fills the ticket (the verdict, the review and the `y`
/// that sends it are the ticket's); the rest runs as its key would. A line that does not parse
/// stays in the field with the reason.
fn run_command_line(app: &mut App, snap: &Snapshot, input: TextArea<'static>) -> Vec<Effect> {
    use super::command::{Typed, parse};
    let typed = match parse(&field_text(&input)) {
        Ok(t) => t,
        Err(e) => return refuse_line(app, input, e),
    };
    let action = match typed {
        Typed::Ticket(fields) => {
            let mut form = TicketForm::new(fields);
            let fx = preview(&mut form);
            app.ticket = Some(form);
            app.tab = Tab::Ticket;
            app.status = Some("ticket filled: check the verdict, Enter to review, y to send".into());
            return fx;
        }
        Typed::Limit(name, value) => {
            app.status = Some(format!("{} → {}: proposed", name.label(), plain(value)));
            return vec![Effect::Send(Command::ProposeLimit { name, value })];
        }
        Typed::Add(text) => {
            return match super::watchlist::check(snap, &text) {
                Ok(symbol) => add_symbol(app, snap, symbol),
                Err(e) => refuse_line(app, input, e),
            };
        }
        Typed::Alert(text, crossing, price) => {
            return match super::watchlist::alert_command(snap, &text, crossing, price) {
                Ok((command, line)) => {
                    app.status = Some(line);
                    vec![Effect::Send(command)]
                }
                Err(e) => refuse_line(app, input, e),
            };
        }
        Typed::ListAlerts => {
            app.status = Some(super::watchlist::alerts_line(snap));
            return vec![];
        }
        Typed::ClearAlerts(text) => {
            // A symbol that is not one is refused: read as none it would clear every fired alert.
            let symbol = match text.map(|t| Symbol::new(&t)).transpose() {
                Ok(symbol) => symbol,
                Err(e) => return refuse_line(app, input, e.to_string()),
            };
            app.status = Some(match &symbol {
                Some(s) => format!("clearing the alerts on {s}"),
                None => "clearing the alerts that fired".into(),
            });
            return vec![Effect::Send(Command::ClearPriceAlerts(symbol))];
        }
        Typed::Theme(name) => {
            return match super::theme::switch(&app.config.theme, app.config.custom_palette.as_ref(), &name) {
                Ok(theme) => {
                    app.config.theme = theme;
                    app.status = Some(format!("theme {name}"));
                    vec![]
                }
                Err(e) => refuse_line(app, input, e),
            };
        }
        Typed::Remove(text) => {
            return match Symbol::new(&text) {
                Ok(symbol) => {
                    app.status = Some(format!("removed {symbol} from the watchlist"));
                    vec![Effect::Send(Command::RemoveSymbol(symbol))]
                }
                Err(e) => refuse_line(app, input, e.to_string()),
            };
        }
        Typed::Protect(text, prices) => {
            let symbol = match Symbol::new(&text) {
                Ok(symbol) => symbol,
                Err(e) => return refuse_line(app, input, e.to_string()),
            };
            return match offer_protection(app, snap, &symbol, prices) {
                Ok(()) => vec![],
                Err(e) => refuse_line(app, input, e),
            };
        }
        Typed::Kill => Action::Kill,
        Typed::Flatten => Action::Flatten,
        Typed::Rearm => Action::Rearm,
        Typed::Quit => Action::RequestQuit,
        Typed::Help => Action::ToggleHelp,
    };
    update(app, action, snap)
}

/// The command line stays open with what was typed and why it cannot run; the bell rings.
fn refuse_line(app: &mut App, input: TextArea<'static>, error: String) -> Vec<Effect> {
    app.dialog = Some(Dialog::CommandLine {
        input,
        error: Some(error),
    });
    vec![Effect::Bell]
}

/// Up/Down, a page, the first or last row in the focused list, over the rows its filter
/// shows. Moving in the watchlist also asks for the new symbol's candles.
fn move_selection(app: &mut App, snap: &Snapshot, step: &Action) -> Vec<Effect> {
    let focus = app.focus;
    if focus == Focus::Log {
        scroll_log(app, snap, step);
        return vec![];
    }
    let visible = app.visible(focus, snap);
    if visible.is_empty() {
        return vec![];
    }
    let at = visible.iter().position(|i| *i == app.sel(focus)).unwrap_or(0);
    let moved = if visible.contains(&app.sel(focus)) {
        move_sel(at, visible.len(), step)
    } else {
        0
    };
    app.set_sel(focus, visible[moved]);
    select_watched_symbol(app, snap)
}

/// Up/Down/PgUp/PgDn/g/G in the log: scroll back through it, anchored on a line so that new
/// lines do not move the view; down past the newest line (or `G`) follows the log again.
fn scroll_log(app: &mut App, snap: &Snapshot, step: &Action) {
    let (Some(first), Some(last)) = (snap.log.first(), snap.log.last()) else {
        return;
    };
    let (first, last) = (first.seq, last.seq);
    let at = app.log_anchor.unwrap_or(last).clamp(first, last);
    let page = PAGE as u64;
    let next = match step {
        Action::Up => at.saturating_sub(1).max(first),
        Action::PageUp => at.saturating_sub(page).max(first),
        Action::Down => at + 1,
        Action::PageDown => at + page,
        Action::Top => first,
        _ => last,
    };
    app.log_anchor = (next < last).then_some(next);
}

/// After the watchlist's selection moved: the candles follow the highlighted symbol.
fn select_watched_symbol(app: &App, snap: &Snapshot) -> Vec<Effect> {
    match app
        .selected(Focus::Watchlist, snap)
        .and_then(|i| snap.watchlist.get(i))
    {
        Some(row) if app.focus == Focus::Watchlist && snap.selected_symbol.as_ref() != Some(&row.symbol) => {
            vec![Effect::Send(Command::SelectSymbol(row.symbol.clone()))]
        }
        _ => vec![],
    }
}

/// Enter in the `/` dialog: the focused list shows only the rows whose symbol contains the
/// text (empty: every row), and the selection moves onto a shown row. The dialog is opened on
/// a list only (`open_prompt`).
fn apply_filter(app: &mut App, snap: &Snapshot, focus: Focus, text: &str) -> Vec<Effect> {
    app.filters[focus.index()] = text.trim().to_ascii_uppercase();
    let visible = app.visible(focus, snap);
    if !visible.contains(&app.sel(focus))
        && let Some(first) = visible.first()
    {
        app.set_sel(focus, *first);
    }
    let total = focus.symbols(snap).len();
    app.status = Some(if app.filters[focus.index()].is_empty() {
        "filter cleared".to_string()
    } else {
        format!(
            "/{}: {} of {total} rows",
            app.filters[focus.index()],
            visible.len()
        )
    });
    select_watched_symbol(app, snap)
}

/// A choice inside the open dialog: the percentage to close or flatten, or which limit to
/// change (its current value is put in the field).
fn choose(app: &mut App, snap: &Snapshot, action: &Action) {
    let forward = *action == Action::ChooseNext;
    match &mut app.dialog {
        Some(Dialog::ClosePosition { percent, .. } | Dialog::Flatten { percent }) => {
            *percent = match action {
                Action::ChoosePercent(p) => *p,
                _ => step_percent(*percent, forward),
            };
        }
        Some(Dialog::Limit { choice, input, error }) => {
            *choice = cycle(LimitName::ALL.len(), *choice, forward);
            *input = single_line(plain(snap.limits.value_of(LimitName::ALL[*choice])));
            *error = None;
        }
        _ => {}
    }
}

/// A key typed into the focused text field: the open dialog's, else the ticket's (whose every
/// change asks for a new risk preview). An edit clears the field's error.
fn edit_focused(app: &mut App, snap: &Snapshot, input: Input) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let Some(dialog) = &mut app.dialog {
        if let Dialog::Rearm {
            passphrase: Some(p),
            error,
        } = dialog
        {
            if edit_secret(p, input) {
                *error = None;
            }
        } else if let Some((t, error)) = dialog.text_field()
            && edit(t, input)
        {
            *error = None;
        }
    } else if let Some(t) = &mut app.ticket {
        fx.extend(edit_ticket(t, snap, input));
    }
    fx
}

/// A key in the ticket: toggles for side and type, text for the rest. The price follows the
/// type (a MARKET ticket has none; back to LIMIT it starts at the market) and the symbol (a
/// new known symbol starts at its own market, never at the last symbol's price).
fn edit_ticket(form: &mut TicketForm, snap: &Snapshot, input: Input) -> Vec<Effect> {
    let field = form.focused_field();
    let before = form.draft();
    let changed = match toggle_values(field) {
        Some(values) => match toggle(&form.text(field), values, &input) {
            Some(v) => {
                form.set(field, v);
                true
            }
            None => false,
        },
        None => form.fields.get_mut(form.focused).is_some_and(|f| edit(f, input)),
    };
    if !changed {
        return vec![];
    }
    let after = form.draft();
    if after.order_type == "MARKET" {
        form.set(TicketField::Price, "");
    } else if (before.order_type == "MARKET" || after.symbol != before.symbol)
        && let Some(p) = start_price(snap, &after.symbol, &after.side)
    {
        form.set(TicketField::Price, &p);
    }
    preview(form)
}

/// Rows a page moves: the lists are short and the panel's height is the view's business.
const PAGE: usize = 10;

fn move_sel(sel: usize, len: usize, step: &Action) -> usize {
    if len == 0 {
        return 0;
    }
    let last = len - 1;
    match step {
        Action::Down => (sel + 1).min(last),
        Action::PageDown => sel.saturating_add(PAGE).min(last),
        Action::PageUp => sel.saturating_sub(PAGE).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => sel.saturating_sub(1).min(last),
    }
}

/// Opens (or focuses) the ticket, prefilled with the selected symbol as a BUY LIMIT at its ask
/// (the last price when there is no ask yet).
fn open_ticket(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    app.tab = Tab::Ticket;
    app.help = false;
    if app.ticket.is_some() {
        return vec![];
    }
    let row = app
        .selected(Focus::Watchlist, snap)
        .and_then(|i| snap.watchlist.get(i));
    let symbol = row
        .map(|r| r.symbol.to_string())
        .or_else(|| snap.selected_symbol.as_ref().map(|s| s.to_string()))
        .unwrap_or_default();
    if let Some(mut kept) = app.kept_ticket.take()
        && kept.text(TicketField::Symbol) == symbol
    {
        kept.last_previewed = None;
        let fx = preview(&mut kept);
        app.ticket = Some(kept);
        return fx;
    }
    // A buy at the ask is marketable as it stands: prefilled at the last trade, which is often
    // below the ask, the entry would rest on the book instead of filling.
    let price = row
        .and_then(|r| r.ask.or(r.last))
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut form = TicketForm::new([
        symbol,
        "BUY".into(),
        "LIMIT".into(),
        String::new(),
        price,
        String::new(),
        String::new(),
    ]);
    let fx = preview(&mut form);
    app.ticket = Some(form);
    fx
}

/// Sends the current draft for a verdict, unless that exact draft was the last one sent.
/// The engine's check is pure and cheap, so every change is sent; bursts are coalesced by the
/// engine publishing at most ~30 snapshots a second.
fn preview(form: &mut TicketForm) -> Vec<Effect> {
    let draft = form.draft();
    if form.last_previewed.as_ref() == Some(&draft) {
        return vec![];
    }
    form.last_previewed = Some(draft.clone());
    vec![Effect::Send(Command::PreviewTicket(draft))]
}

/// The flash of a confirmed ticket follows what the engine says of it: the risk verdict, then
/// the exchange's answer. It stops following once the answer is final (or a key is pressed).
fn flash_verdict(app: &mut App, snap: &Snapshot) {
    let Some(before) = &app.awaiting_verdict else {
        return;
    };
    let Some(result) = &snap.ticket_result else {
        return;
    };
    let submitted = app.ticket.as_ref().and_then(|f| f.submitted.as_ref());
    if before.as_ref() == Some(result) || submitted.is_some_and(|d| *d != result.draft) {
        return;
    }
    let (text, last) = match &result.outcome {
        TicketOutcome::Sent { .. } => (
            "ticket approved and sent: waiting for the exchange".to_string(),
            false,
        ),
        TicketOutcome::Unknown { .. } => (
            "no answer from the exchange: reconciling by client order id".to_string(),
            false,
        ),
        TicketOutcome::Accepted { client_order_id, .. } => {
            (format!("order {client_order_id} accepted by the exchange"), true)
        }
        TicketOutcome::Rejected { message, .. } => (format!("ticket not placed: {message}"), true),
        TicketOutcome::RiskRejected { reasons } => (
            format!(
                "ticket REFUSED by the risk check: {}",
                reasons
                    .iter()
                    .map(|r| r.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            true,
        ),
    };
    app.status = Some(text);
    app.awaiting_verdict = if last { None } else { Some(Some(result.clone())) };
}

/// Enter in the ticket: the confirm dialog lists the orders of a current, approved preview.
fn submit_ticket(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    let Some(form) = &app.ticket else { return vec![] };
    let draft = form.draft();
    match &snap.ticket_preview {
        Some(p) if p.draft == draft && p.approved && !p.orders.is_empty() => {
            app.dialog = Some(Dialog::ConfirmSubmit {
                draft,
                orders: p.orders.clone(),
            });
            vec![]
        }
        Some(p) if p.draft == draft => {
            app.status = Some("the risk check refuses this ticket: fix the lines marked failed".into());
            vec![Effect::Bell]
        }
        _ => {
            app.status = Some("waiting for the risk check of this ticket".into());
            vec![Effect::Bell]
        }
    }
}

/// `x`: cancel the selected order; a protective leg (the whole OCO goes) is asked first.
/// `x`: the order selected in the orders panel, and only there (a key acts on what the screen
/// shows). Every cancel asks first; a protective leg's dialog says the position is left bare.
fn cancel_order(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    if app.focus != Focus::Orders {
        app.status = Some("select an order first: Tab to the orders panel".into());
        return vec![];
    }
    match app.selected(Focus::Orders, snap).and_then(|i| snap.orders.get(i)) {
        Some(order) if order.purpose.is_protective() => {
            app.dialog = Some(Dialog::CancelProtection {
                order: order.client_order_id.clone(),
                symbol: order.symbol.clone(),
                purpose: order.purpose,
            });
        }
        Some(order) => {
            let mut line = format!(
                "{} {} {} {}",
                order.side, order.order_type, order.qty, order.symbol
            );
            if let Some(p) = order.price {
                let shown = snap.tick(&order.symbol).map_or_else(
                    || p.to_string(),
                    |t| crate::domain::display_fixed(p.value(), crate::domain::decimals_of(t)),
                );
                line.push_str(&format!(" @ {shown}"));
            }
            app.dialog = Some(Dialog::CancelOrder {
                order: order.client_order_id.clone(),
                line,
            });
        }
        None => app.status = Some("no open order selected (Tab to the orders panel)".into()),
    };
    vec![]
}

/// `c`: the position of the row the screen highlights. In the positions panel, the selected
/// row; in the watchlist or the orders panel, the position in the highlighted symbol, if one
/// is held — never a row selected on another tab.
fn position_target<'a>(
    app: &App,
    snap: &'a Snapshot,
) -> Result<&'a crate::engine::snapshot::PositionRow, String> {
    let symbol = match app.focus {
        Focus::Positions => {
            return snap
                .positions
                .get(app.selected(Focus::Positions, snap).unwrap_or(usize::MAX))
                .ok_or_else(|| "no position selected (Tab to the positions panel)".to_string());
        }
        Focus::Watchlist => app
            .selected(Focus::Watchlist, snap)
            .and_then(|i| snap.watchlist.get(i))
            .map(|r| &r.symbol),
        Focus::Orders => app
            .selected(Focus::Orders, snap)
            .and_then(|i| snap.orders.get(i))
            .map(|o| &o.symbol),
        _ => snap.selected_symbol.as_ref(),
    };
    let Some(symbol) = symbol else {
        return Err("nothing selected: Tab to the positions panel".into());
    };
    snap.positions
        .iter()
        .find(|p| &p.symbol == symbol)
        .ok_or_else(|| format!("no {symbol} position to close"))
}

fn confirm(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    let Some(dialog) = app.dialog.take() else {
        return vec![];
    };
    match dialog {
        Dialog::ConfirmSubmit { draft, .. } => {
            if let Some(form) = &mut app.ticket {
                form.submitted = Some(draft.clone());
            }
            // Nothing is sent yet: the engine runs the risk check again, then the exchange
            // answers. The flash follows them (`flash_verdict`).
            app.status = Some("ticket submitted: waiting for the risk check".into());
            app.awaiting_verdict = Some(snap.ticket_result.clone());
            vec![Effect::Send(Command::SubmitTicket(draft))]
        }
        Dialog::ConfirmQuit { .. } => vec![Effect::Send(Command::Quit), Effect::Quit],
        Dialog::CancelProtection { order, symbol, .. } => {
            app.status = Some(format!("cancel requested: {order} (the {symbol} OCO, both legs)"));
            vec![Effect::Send(Command::CancelOrder(order))]
        }
        Dialog::CancelOrder { order, .. } => {
            app.status = Some(format!("cancel requested: {order}"));
            vec![Effect::Send(Command::CancelOrder(order))]
        }
        Dialog::ClosePosition { symbol, percent, .. } => {
            app.status = Some(format!("closing {percent}% of {symbol}"));
            vec![Effect::Send(Command::ClosePosition { symbol, percent })]
        }
        Dialog::Reprotect {
            symbol,
            stop_loss,
            take_profit,
            ..
        } => {
            app.status = Some(format!("re-protection of {symbol} sent to the risk check"));
            let newest = snap.log.iter().map(|l| l.seq).max().unwrap_or(0);
            app.awaiting_reprotect = Some((symbol.clone(), newest));
            vec![Effect::Send(Command::Reprotect {
                symbol,
                stop_loss,
                take_profit,
            })]
        }
        Dialog::Flatten { percent } => {
            app.status = Some(format!("flattening {percent}% of crbot's positions"));
            vec![Effect::Send(Command::Flatten { percent })]
        }
        Dialog::Rearm {
            passphrase: Some(p), ..
        } if p.is_empty() => {
            app.dialog = Some(Dialog::Rearm {
                passphrase: Some(p),
                error: Some("type the vault passphrase".into()),
            });
            vec![Effect::Bell]
        }
        Dialog::Rearm { passphrase, .. } => {
            app.kill_sent = false;
            app.status = Some("re-arm requested".into());
            vec![Effect::Send(Command::Rearm { passphrase })]
        }
        Dialog::AddSymbol { input, .. } => match super::watchlist::check(snap, &field_text(&input)) {
            Ok(symbol) => add_symbol(app, snap, symbol),
            Err(e) => {
                app.dialog = Some(Dialog::AddSymbol {
                    input,
                    error: Some(e),
                });
                vec![Effect::Bell]
            }
        },
        Dialog::CommandLine { input, .. } => run_command_line(app, snap, input),
        Dialog::Filter { focus, input, .. } => apply_filter(app, snap, focus, &field_text(&input)),
        Dialog::Limit { choice, input, .. } => {
            let name = LimitName::ALL[choice.min(LimitName::ALL.len() - 1)];
            let text = field_text(&input).trim().to_string();
            match Decimal::from_str_exact(&text) {
                Ok(value) if value > Decimal::ZERO => {
                    let current = snap.limits.value_of(name);
                    // A higher minimum reward/risk is tighter; for every other limit, lower is.
                    let looser = match name {
                        LimitName::MinRiskReward => value < current,
                        _ => value > current,
                    };
                    let what = if looser {
                        "looser: type the confirmation to apply it"
                    } else {
                        "tighter: in force at once"
                    };
                    app.status = Some(format!("{} → {}: {what}", name.label(), plain(value)));
                    vec![Effect::Send(Command::ProposeLimit { name, value })]
                }
                _ => {
                    let error = Some(format!("`{text}` is not a positive number"));
                    app.dialog = Some(Dialog::Limit { choice, input, error });
                    vec![Effect::Bell]
                }
            }
        }
        Dialog::ConfirmLimit { pending, input, .. } => {
            let typed = field_text(&input);
            if typed.trim() == pending.phrase {
                app.status = Some("limit change confirmed".into());
                app.limit_answered = Some(pending);
                vec![Effect::Send(Command::ConfirmLimit {
                    typed: typed.trim().to_string(),
                })]
            } else {
                let error = Some(format!("type exactly: {}", pending.phrase));
                app.dialog = Some(Dialog::ConfirmLimit {
                    pending,
                    input,
                    error,
                });
                vec![Effect::Bell]
            }
        }
    }
}

/// A new snapshot: ring once for new fills or rejections and for a limit crossing 80%, and
/// follow the engine on the kill switch and on a pending limit change.
fn observe(app: &mut App, snap: &Snapshot) -> Vec<Effect> {
    let mut ring = false;
    let newest = snap.log.iter().map(|l| l.seq).max().unwrap_or(0);
    if snap
        .log
        .iter()
        .any(|l| l.seq > app.last_log_seq && matches!(l.kind, LogKind::Fill | LogKind::Rejection))
    {
        ring = true;
    }
    app.last_log_seq = app.last_log_seq.max(newest);
    if let Some(line) = super::watchlist::fired_since(&mut app.alerts_seen_ms, snap) {
        ring = true;
        app.status = Some(line);
    }
    for (name, ratio) in snap.limits.usage() {
        if ratio >= alert_ratio() {
            ring |= app.limits_rung.insert(name);
        } else {
            app.limits_rung.remove(&name);
        }
    }
    if snap.header.trading.is_halted() {
        app.kill_sent = false;
    }
    if snap.limit_change_pending.is_none() {
        app.limit_answered = None;
    }
    ring |= offer_lost_protection(app, snap);
    follow_reprotect(app, snap);
    match (&snap.limit_change_pending, &app.dialog) {
        (Some(pending), None) if app.limit_answered.as_ref() != Some(pending) => {
            app.dialog = Some(Dialog::ConfirmLimit {
                pending: pending.clone(),
                input: single_line(String::new()),
                error: None,
            });
        }
        (None, Some(Dialog::ConfirmLimit { .. })) => app.dialog = None,
        _ => {}
    }
    // Clamp selections to the rows that still exist.
    app.watch_sel = app.watch_sel.min(snap.watchlist.len().saturating_sub(1));
    app.position_sel = app.position_sel.min(snap.positions.len().saturating_sub(1));
    app.order_sel = app.order_sel.min(snap.orders.len().saturating_sub(1));
    let history_len = snap.history.fills.len() + snap.history.orders.len();
    app.history_sel = app.history_sel.min(history_len.saturating_sub(1));
    if let (Some(anchor), Some(first)) = (app.log_anchor, snap.log.first())
        && anchor < first.seq
    {
        // The lines scrolled to have left the engine's ring: the oldest kept is shown.
        app.log_anchor = Some(first.seq);
    }
    let mut fx = if ring { vec![Effect::Bell] } else { vec![] };
    let account = AccountMark::of(snap);
    if account != app.account {
        app.account = account;
        if let Some(form) = &mut app.ticket {
            form.last_previewed = None;
            fx.extend(preview(form));
        }
    }
    fx
}

/// The watchlist's alert key: the command line, prefilled with the highlighted symbol.
fn open_price_alert(app: &mut App, snap: &Snapshot) {
    let symbol = app
        .selected(Focus::Watchlist, snap)
        .and_then(|i| snap.watchlist.get(i))
        .map(|w| w.symbol.to_string())
        .or_else(|| snap.selected_symbol.as_ref().map(|s| s.to_string()))
        .unwrap_or_default();
    app.dialog = Some(Dialog::CommandLine {
        input: single_line(format!("alert {symbol} above ")),
        error: Some("above or below a price; Enter sets it".into()),
    });
}

/// Adds a checked symbol (the engine checks it again against the exchange's rules).
fn add_symbol(app: &mut App, snap: &Snapshot, symbol: Symbol) -> Vec<Effect> {
    if snap.watchlist.iter().any(|w| w.symbol == symbol) {
        app.status = Some(format!("{symbol} is in the watchlist already"));
        return vec![];
    }
    app.status = Some(format!("added {symbol} to the watchlist"));
    vec![Effect::Send(Command::AddSymbol(symbol))]
}

/// Tab in a prompt: the add-symbol field completes its name from the exchange's symbols; the
/// command line completes a symbol typed as its second word (`add ADA`, `alert BTC`).
fn complete_symbol(app: &mut App, snap: &Snapshot) {
    let Some(dialog) = app.dialog.as_mut() else {
        return;
    };
    let (input, error, head, word) = match dialog {
        Dialog::AddSymbol { input, error } => {
            let word = field_text(input);
            (input, error, String::new(), word)
        }
        Dialog::CommandLine { input, error } => {
            let text = field_text(input);
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                [first, word] if !text.ends_with(' ') => {
                    let (head, word) = (format!("{first} "), (*word).to_string());
                    (input, error, head, word)
                }
                _ => return,
            }
        }
        _ => return,
    };
    let (done, hint) = super::watchlist::complete(snap, &word);
    *input = single_line(format!("{head}{done}"));
    *error = hint;
}

/// The re-protect dialog for crbot's position in `symbol`: at `prices`, else at the protection
/// the engine reports lost there. Why not, when it cannot be offered.
fn offer_protection(
    app: &mut App,
    snap: &Snapshot,
    symbol: &Symbol,
    prices: Option<(Price, Price)>,
) -> Result<(), String> {
    let held = snap
        .positions
        .iter()
        .any(|p| &p.symbol == symbol && !p.external && !p.dust);
    if !held {
        return Err(format!("no crbot position in {symbol} to protect"));
    }
    if !snap.unprotected().contains(&symbol) {
        return Err(format!("{symbol} already has a stop-loss on the exchange"));
    }
    let lost = snap.lost_protection.iter().find(|l| &l.symbol == symbol);
    let (stop_loss, take_profit) = match (prices, lost) {
        (Some(p), _) => p,
        (None, Some(l)) => (l.stop_loss, l.take_profit),
        (None, None) => {
            return Err(format!(
                "no lost protection known for {symbol}: give the prices, :protect {symbol} SL TP"
            ));
        }
    };
    app.help = false;
    app.dialog = Some(Dialog::Reprotect {
        symbol: symbol.clone(),
        stop_loss,
        take_profit,
        cause: lost.map(|l| (l.leg, l.status)),
    });
    Ok(())
}

/// A protection the engine reports lost pops its dialog once, when nothing else is open (a
/// dialog, the ticket being typed, the help): a `y` or Enter meant for them must never answer
/// it. Whether to ring.
fn offer_lost_protection(app: &mut App, snap: &Snapshot) -> bool {
    if app.dialog.is_some() || app.ticket.is_some() || app.help {
        return false;
    }
    let Some(lost) = snap
        .lost_protection
        .iter()
        .find(|l| !app.lost_offered.contains(&(l.symbol.clone(), l.since_ms)))
    else {
        return false;
    };
    app.lost_offered.insert((lost.symbol.clone(), lost.since_ms));
    let symbol = lost.symbol.clone();
    match offer_protection(app, snap, &symbol, None) {
        Ok(()) => true,
        Err(_) => false,
    }
}

/// After a confirmed re-protection: the engine's verdict (its log line) on the status line.
fn follow_reprotect(app: &mut App, snap: &Snapshot) {
    let Some((symbol, seen)) = &app.awaiting_reprotect else {
        return;
    };
    let placed = format!("protective OCO placed on {symbol}");
    let refused = format!("re-protection of {symbol}");
    let verdict = snap.log.iter().filter(|l| l.seq > *seen).find(|l| {
        l.text.starts_with(&placed)
            || (l.kind == LogKind::Rejection
                && (l.text.contains(&refused) || l.text.contains("protective OCO")))
            || (l.text.starts_with(symbol.as_str()) && l.level == crate::engine::snapshot::LogLevel::Error)
    });
    if let Some(line) = verdict {
        app.status = Some(line.text.clone());
        app.awaiting_reprotect = None;
    }
}
