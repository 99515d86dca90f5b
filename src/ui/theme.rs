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
    /// `--ascii` or a plain terminal: borders, gauges, charts and marks from plain ASCII.
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

/// Whether the terminal cannot be trusted with box-drawing and braille characters: a console
/// or serial terminal type (`linux`, `vt100`…, `dumb`), or a locale that is set and is not
/// UTF-8 (`LANG=C`, `en_US.ISO-8859-1`). `locale` is `LC_ALL`, `LC_CTYPE`, `LANG` in that
/// order: the first one set and not empty decides, as in C's `setlocale`. With none set the
/// locale is unknown, not plain: most SSH sessions pass none and draw UTF-8 fine.
pub fn plain_terminal(term: Option<&str>, locale: &[Option<String>]) -> bool {
    let term = term.unwrap_or("").trim().to_ascii_lowercase();
    let plain_term = matches!(term.as_str(), "linux" | "dumb" | "ansi" | "cons25" | "vt52")
        || term.starts_with("vt1")
        || term.starts_with("vt2")
        || term.starts_with("vt3")
        || term.starts_with("vt4");
    let locale = locale.iter().flatten().map(|v| v.trim()).find(|v| !v.is_empty());
    let plain_locale = locale.is_some_and(|l| {
        let l = l.to_ascii_lowercase();
        !(l.contains("utf-8") || l.contains("utf8"))
    });
    plain_term || plain_locale
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
    /// `NO_COLOR` (present and not empty, per no-color.org) turns colour off; `--ascii`, or a
    /// terminal or locale that cannot draw box and braille characters ([`plain_terminal`]),
    /// turns the character set to ASCII.
    pub fn from_env(ascii: bool) -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let var = |name: &str| std::env::var(name).ok();
        Theme {
            color: !no_color,
            ascii: ascii
                || plain_terminal(
                    var("TERM").as_deref(),
                    &[var("LC_ALL"), var("LC_CTYPE"), var("LANG")],
                ),
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

#[cfg(test)]
mod tests {
    use super::plain_terminal;

    fn locale(all: &str, ctype: &str, lang: &str) -> [Option<String>; 3] {
        let v = |s: &str| (!s.is_empty()).then(|| s.to_string());
        [v(all), v(ctype), v(lang)]
    }

    #[test]
    fn console_and_serial_terminals_get_ascii() {
        for term in ["linux", "vt100", "vt220", "dumb", "VT102"] {
            assert!(plain_terminal(Some(term), &locale("", "", "C.UTF-8")), "{term}");
        }
        for term in ["xterm-256color", "tmux-256color", "screen", "alacritty"] {
            assert!(
                !plain_terminal(Some(term), &locale("", "", "en_US.UTF-8")),
                "{term}"
            );
        }
    }

    #[test]
    fn a_locale_that_is_set_and_not_utf8_gets_ascii_and_the_first_set_one_decides() {
        assert!(plain_terminal(Some("xterm"), &locale("", "", "C")));
        assert!(plain_terminal(Some("xterm"), &locale("", "", "en_US.ISO-8859-1")));
        assert!(plain_terminal(Some("xterm"), &locale("POSIX", "", "en_US.UTF-8")));
        assert!(!plain_terminal(Some("xterm"), &locale("", "de_DE.utf8", "C")));
        // Nothing set: unknown, not plain.
        assert!(!plain_terminal(Some("xterm"), &locale("", "", "")));
        assert!(!plain_terminal(None, &locale("", "", "")));
    }
}
