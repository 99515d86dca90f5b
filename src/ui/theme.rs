//! How the screen looks: colours (or none, for `NO_COLOR`) and the character set (Unicode or
//! `--ascii`) for borders, gauges, charts and marks.
//!
//! Owns: every style and glyph the view uses, so that colour and box drawing can be switched
//! off in one place. Must not: decide what is shown; the view asks for a role (`negative`,
//! `mode_badge`) and gets a style. With colour off, meaning is carried by text and modifiers
//! (bold, reversed), never by colour alone.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::symbols::border;

use crate::domain::Mode;

/// Colour and glyph choices for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// False when `NO_COLOR` is set: no foreground or background colour anywhere.
    pub color: bool,
    /// `--ascii`: borders, gauges, charts and marks from plain ASCII.
    pub ascii: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            color: true,
            ascii: false,
        }
    }
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

impl Theme {
    /// `NO_COLOR` (present and not empty, per no-color.org) turns colour off.
    pub fn from_env(ascii: bool) -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme {
            color: !no_color,
            ascii,
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn plain(&self) -> Style {
        Style::default()
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn positive(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn negative(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn warning(&self) -> Style {
        self.fg(Color::Yellow)
    }

    /// A signed number: red below zero, green above.
    pub fn signed(&self, negative: bool, zero: bool) -> Style {
        if zero {
            self.plain()
        } else if negative {
            self.negative()
        } else {
            self.positive()
        }
    }

    /// The mode badge. LIVE is white on red on every frame; without colour it is reversed.
    pub fn mode_badge(&self, mode: Mode) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if !self.color {
            return match mode {
                Mode::Live => bold.add_modifier(Modifier::REVERSED | Modifier::SLOW_BLINK),
                _ => bold.add_modifier(Modifier::REVERSED),
            };
        }
        let (fg, bg) = match mode {
            Mode::Live => (Color::White, Color::Red),
            Mode::Testnet => (Color::Black, Color::Yellow),
            Mode::Demo => (Color::Black, Color::Magenta),
            Mode::Paper => (Color::Black, Color::Cyan),
            Mode::Sim => (Color::Black, Color::Green),
        };
        bold.fg(fg).bg(bg)
    }

    /// HALTED: the loudest badge after LIVE.
    pub fn halted_badge(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            bold.fg(Color::White).bg(Color::Red)
        } else {
            bold.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn reducing_badge(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            bold.fg(Color::Black).bg(Color::Yellow)
        } else {
            bold.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn active_badge(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if self.color { bold.fg(Color::Green) } else { bold }
    }

    /// The selected row of the focused list.
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// The border of the focused panel.
    pub fn focused_border(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn border_set(&self) -> border::Set<'static> {
        if self.ascii { ASCII_BORDER } else { border::PLAIN }
    }

    pub fn chart_marker(&self) -> Marker {
        if self.ascii {
            Marker::Custom('*')
        } else {
            Marker::Braille
        }
    }

    /// Filled and empty cells of a text gauge.
    pub fn gauge_chars(&self) -> (char, char) {
        if self.ascii { ('#', '.') } else { ('█', '░') }
    }

    /// The pass and fail marks of a rule line.
    pub fn marks(&self) -> (&'static str, &'static str) {
        if self.ascii { ("ok", "NO") } else { ("✓", "✗") }
    }

    pub fn spinner(&self, now_ms: i64) -> &'static str {
        const UNICODE: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
        const ASCII: [&str; 4] = ["|", "/", "-", "\\"];
        let tick = now_ms.div_euclid(100);
        if self.ascii {
            ASCII[tick.rem_euclid(ASCII.len() as i64) as usize]
        } else {
            UNICODE[tick.rem_euclid(UNICODE.len() as i64) as usize]
        }
    }
}
