//! Keys as data: which key means which [`Action`] in which [`Context`], and the help screen
//! generated from the same table.
//!
//! Owns: the key table, the kill key (configurable, default Ctrl-K), key parsing for the
//! configuration, and key labels. Must not: act on a key; `update` sees actions only. The kill
//! binding is looked up before any context, so it works in every dialog and while typing.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, normalised so that `Shift` is folded into the character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPress {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

/// Why a configured key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key `{0}` is not understood: use e.g. ctrl-k, alt-x, f12")]
    Unknown(String),
    #[error(
        "kill key `{0}` would fire while typing in a field: use a key with ctrl or alt, or a function key"
    )]
    TypableKillKey(String),
}

impl KeyPress {
    pub const fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        KeyPress { code, modifiers }
    }

    pub const fn plain(code: KeyCode) -> Self {
        KeyPress {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    pub const fn ch(c: char) -> Self {
        KeyPress::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Self {
        KeyPress {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// Folds what terminals report differently into one form: `Shift` on a character or on
    /// BackTab is already in the code, and Ctrl+letter is matched case-insensitively.
    pub fn from_event(event: &KeyEvent) -> Self {
        let mut modifiers =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let mut code = event.code;
        if matches!(code, KeyCode::Char(_) | KeyCode::BackTab) {
            modifiers.remove(KeyModifiers::SHIFT);
        }
        if let KeyCode::Char(c) = code
            && modifiers.contains(KeyModifiers::CONTROL)
        {
            code = KeyCode::Char(c.to_ascii_lowercase());
        }
        KeyPress { code, modifiers }
    }

    /// Parses `ctrl-k`, `alt-x`, `f12`, `ctrl-f5`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let unknown = || KeyError::Unknown(text.to_string());
        let lower = text.trim().to_ascii_lowercase();
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").or_else(|| rest.strip_prefix("c-")) {
                modifiers |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").or_else(|| rest.strip_prefix("m-")) {
                modifiers |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "esc" => KeyCode::Esc,
            "enter" => KeyCode::Enter,
            "tab" => KeyCode::Tab,
            "space" => KeyCode::Char(' '),
            f if f.starts_with('f') && f.len() > 1 => KeyCode::F(
                f[1..]
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=24).contains(n))
                    .ok_or_else(unknown)?,
            ),
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().ok_or_else(unknown)?),
            _ => return Err(unknown()),
        };
        Ok(KeyPress { code, modifiers })
    }

    /// Parses a kill key and refuses one that a field would also take as typing.
    pub fn parse_kill_key(text: &str) -> Result<Self, KeyError> {
        let key = KeyPress::parse(text)?;
        let has_modifier = key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if !has_modifier && !matches!(key.code, KeyCode::F(_)) {
            return Err(KeyError::TypableKillKey(text.to_string()));
        }
        Ok(key)
    }

    /// `Ctrl-K`, `q`, `Enter`, `↑` (or `Up` in ASCII).
    pub fn label(&self, ascii: bool) -> String {
        let code = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Up => if ascii { "Up" } else { "↑" }.into(),
            KeyCode::Down => if ascii { "Down" } else { "↓" }.into(),
            KeyCode::Left => if ascii { "Left" } else { "←" }.into(),
            KeyCode::Right => if ascii { "Right" } else { "→" }.into(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            other => format!("{other:?}"),
        };
        let mut out = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            out.push_str("Ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            out.push_str("Alt-");
        }
        out.push_str(&code);
        out
    }
}

/// Where a key is looked up. `Global` is always tried first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Every screen, every dialog, while typing: the kill switch.
    Global,
    /// The panels, no dialog open, not typing in the ticket.
    Normal,
    /// Typing in the order ticket; unbound keys edit the focused field.
    Ticket,
    /// A yes/no dialog, with a percentage choice where one applies.
    Dialog,
    /// A dialog with a text field; unbound keys edit the field.
    Prompt,
    /// The help overlay.
    Help,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Normal => "Panels",
            Context::Ticket => "Order ticket",
            Context::Dialog => "Confirmations",
            Context::Prompt => "Text prompts",
            Context::Help => "Help",
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub context: Context,
    pub key: KeyPress,
    pub action: Action,
    /// What the help screen says; bindings with the same context and text share one line.
    pub help: &'static str,
    /// The footer's short hint, for the keys worth a reminder.
    pub hint: Option<&'static str>,
}

/// The key table. Built once from the configuration; looked up on every key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::with_kill_key(KeyPress::ctrl('k'))
    }
}

impl Keymap {
    /// The default table with the given kill key.
    pub fn with_kill_key(kill: KeyPress) -> Keymap {
        use Action as A;
        use Context::*;
        use KeyCode as K;
        let p = KeyPress::plain;
        let c = KeyPress::ch;
        let mut rows: Vec<(Context, KeyPress, Action, &'static str, Option<&'static str>)> = vec![
            (Global, kill, A::Kill, "KILL: halt + cancel all", Some("KILL")),
            (
                Global,
                KeyPress::ctrl('c'),
                A::RequestQuit,
                "quit (asks first)",
                None,
            ),
            (Normal, c('?'), A::ToggleHelp, "help: every key", Some("help")),
            (
                Normal,
                c('q'),
                A::RequestQuit,
                "quit (asks; orders stay)",
                Some("quit"),
            ),
            (Normal, c('t'), A::OpenTicket, "new order ticket", Some("ticket")),
        ];
        // The tab keys 1-7, one per tab of the tabbed layout.
        rows.extend((1..=7u8).map(|n| {
            (
                Normal,
                c(char::from(b'0' + n)),
                A::SelectTab(n),
                "tabs: mkt pos risk log tkt book hist",
                None,
            )
        }));
        rows.extend([
            (Normal, p(K::Tab), A::FocusNext, "next panel", Some("panel")),
            (Normal, p(K::BackTab), A::FocusPrev, "previous panel", None),
            (Normal, p(K::Up), A::Up, "move selection", None),
            (Normal, c('k'), A::Up, "move selection", None),
            (Normal, p(K::Down), A::Down, "move selection", None),
            (Normal, c('j'), A::Down, "move selection", None),
            (Normal, p(K::PageUp), A::PageUp, "page up / down", None),
            (Normal, p(K::PageDown), A::PageDown, "page up / down", None),
            (Normal, c('g'), A::Top, "first row", None),
            (Normal, p(K::Home), A::Top, "first row", None),
            (Normal, c('G'), A::Bottom, "last row", None),
            (Normal, p(K::End), A::Bottom, "last row", None),
            (Normal, c('h'), A::FocusPrev, "previous panel", None),
            (Normal, p(K::Left), A::FocusPrev, "previous panel", None),
            (Normal, c('l'), A::FocusNext, "next panel", None),
            (Normal, p(K::Right), A::FocusNext, "next panel", None),
            (
                Normal,
                c('x'),
                A::CancelOrder,
                "cancel the selected order",
                Some("cancel order"),
            ),
            (
                Normal,
                c('c'),
                A::ClosePosition,
                "close position 25-100%",
                Some("close position"),
            ),
            (Normal, c('p'), A::Protect, "re-protect position (:protect)", None),
            (
                Normal,
                c(':'),
                A::CommandLine,
                "command line (:buy, :kill…)",
                None,
            ),
            (Normal, c('/'), A::Filter, "filter the list by symbol", None),
            (Normal, c('a'), A::AddSymbol, "add a watchlist symbol", None),
            (Normal, c('d'), A::RemoveSymbol, "remove watchlist symbol", None),
            (Normal, c('A'), A::PriceAlert, "price alert on the symbol", None),
            (Normal, c('L'), A::ChangeLimit, "change a risk limit", None),
            (Normal, c('w'), A::CycleEquityWindow, "cycle equity window", None),
            (
                Normal,
                c(']'),
                A::NextTimeframe,
                "chart timeframe 1m 5m 1h 1d",
                None,
            ),
            (
                Normal,
                c('['),
                A::PrevTimeframe,
                "chart timeframe 1m 5m 1h 1d",
                None,
            ),
            (Normal, c('F'), A::Flatten, "flatten (after kill, asks)", None),
            (Normal, c('R'), A::Rearm, "re-arm trading (asks)", None),
            (Normal, p(K::Esc), A::Dismiss, "hide the kill panel", None),
            (Ticket, p(K::Tab), A::NextField, "next field", Some("next field")),
            (Ticket, p(K::Down), A::NextField, "next field", None),
            (Ticket, p(K::BackTab), A::PrevField, "previous field", None),
            (Ticket, p(K::Up), A::PrevField, "previous field", None),
            (
                Ticket,
                p(K::Enter),
                A::SubmitTicket,
                "review, then send",
                Some("review & send"),
            ),
            (
                Ticket,
                p(K::Esc),
                A::CloseTicket,
                "close the ticket",
                Some("close"),
            ),
            (Dialog, c('y'), A::Confirm, "yes, do it", Some("yes")),
            (Dialog, p(K::Enter), A::Confirm, "yes, do it", None),
            (Dialog, c('n'), A::Cancel, "no, go back", Some("no")),
            (Dialog, p(K::Esc), A::Cancel, "no, go back", None),
            (Dialog, p(K::Left), A::ChoosePrev, "smaller / larger %", None),
            (Dialog, p(K::Right), A::ChooseNext, "smaller / larger %", None),
            (Dialog, c('1'), A::ChoosePercent(25), "choose 25/50/75/100%", None),
            (Dialog, c('2'), A::ChoosePercent(50), "choose 25/50/75/100%", None),
            (Dialog, c('3'), A::ChoosePercent(75), "choose 25/50/75/100%", None),
            (
                Dialog,
                c('4'),
                A::ChoosePercent(100),
                "choose 25/50/75/100%",
                None,
            ),
            (Prompt, p(K::Enter), A::Confirm, "submit", Some("ok")),
            (Prompt, p(K::Esc), A::Cancel, "cancel", Some("cancel")),
            (Prompt, p(K::Tab), A::Complete, "complete the symbol", None),
            (Prompt, p(K::Up), A::ChoosePrev, "choose", None),
            (Prompt, p(K::Down), A::ChooseNext, "choose", None),
            (Help, p(K::Esc), A::ToggleHelp, "close help", Some("close")),
            (Help, p(K::Up), A::Up, "scroll", None),
            (Help, c('k'), A::Up, "scroll", None),
            (Help, p(K::Down), A::Down, "scroll", None),
            (Help, c('j'), A::Down, "scroll", None),
            (Help, p(K::PageUp), A::PageUp, "scroll a page", None),
            (Help, p(K::PageDown), A::PageDown, "scroll a page", None),
            (Help, c('?'), A::ToggleHelp, "close help", None),
            (Help, c('q'), A::ToggleHelp, "close help", None),
        ]);
        // A kill key equal to a context key must still mean kill: drop the shadowed rows.
        rows.retain(|(ctx, key, _, _, _)| *ctx == Global || *key != kill);
        Keymap {
            bindings: rows
                .into_iter()
                .map(|(context, key, action, help, hint)| Binding {
                    context,
                    key,
                    action,
                    help,
                    hint,
                })
                .collect(),
        }
    }

    /// The action for a key: the global table first (the kill switch), then the context's.
    pub fn resolve(&self, context: Context, key: KeyPress) -> Option<Action> {
        let find = |ctx: Context| {
            self.bindings
                .iter()
                .find(|b| b.context == ctx && b.key == key)
                .map(|b| b.action.clone())
        };
        find(Context::Global).or_else(|| find(context))
    }

    /// The key bound to the kill switch.
    pub fn kill_key(&self) -> Option<KeyPress> {
        self.bindings
            .iter()
            .find(|b| b.action == Action::Kill)
            .map(|b| b.key)
    }

    /// Every key, grouped by context and by help text: `(context, "↑ k", "move selection")`.
    pub fn help_lines(&self, ascii: bool) -> Vec<(Context, String, &'static str)> {
        let mut out: Vec<(Context, String, &'static str)> = Vec::new();
        for b in &self.bindings {
            let label = b.key.label(ascii);
            match out
                .iter_mut()
                .find(|(ctx, _, help)| *ctx == b.context && *help == b.help)
            {
                Some(line) => {
                    line.1.push(' ');
                    line.1.push_str(&label);
                }
                None => out.push((b.context, label, b.help)),
            }
        }
        out
    }

    /// The footer's short hints for a context (the global ones included).
    pub fn hints(&self, context: Context, ascii: bool) -> Vec<(String, &'static str)> {
        self.bindings
            .iter()
            .filter(|b| b.context == context || b.context == Context::Global)
            .filter_map(|b| b.hint.map(|h| (b.key.label(ascii), h)))
            .collect()
    }
}
