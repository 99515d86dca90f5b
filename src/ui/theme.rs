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
    /// False when `NO_COLOR` is set (or the `mono` theme is chosen): no foreground or
    /// background colour anywhere.
    pub color: bool,
    /// `--ascii` or a plain terminal: borders, gauges, charts and marks from plain ASCII.
    pub ascii: bool,
    /// The colour of each role the views ask for.
    pub palette: Palette,
}

impl Theme {
    /// Dark, in colour, Unicode.
    pub const DEFAULT: Theme = Theme {
        color: true,
        ascii: false,
        palette: Palette::DARK,
    };
}

impl Default for Theme {
    fn default() -> Self {
        Theme::DEFAULT
    }
}

/// The colour of each role the views use. The mode badges are not here on purpose: LIVE is
/// white on red in every theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Secondary text: stale rows, hints.
    pub dim: Color,
    /// Gains, passes, ACTIVE.
    pub positive: Color,
    /// Losses, refusals.
    pub negative: Color,
    /// Warnings, a fired alert.
    pub warning: Color,
    /// Status line, highlights.
    pub accent: Color,
    /// The focused panel's border.
    pub focus: Color,
    /// The HALTED badge.
    pub halted_fg: Color,
    pub halted_bg: Color,
    /// The REDUCING badge.
    pub reducing_fg: Color,
    pub reducing_bg: Color,
}

impl Palette {
    /// For a dark terminal background (the default).
    pub const DARK: Palette = Palette {
        dim: Color::DarkGray,
        positive: Color::Green,
        negative: Color::Red,
        warning: Color::Yellow,
        accent: Color::Cyan,
        focus: Color::Cyan,
        halted_fg: Color::White,
        halted_bg: Color::Red,
        reducing_fg: Color::Black,
        reducing_bg: Color::Yellow,
    };

    /// For a light terminal background: darker greens, reds and yellows that read on white.
    pub const LIGHT: Palette = Palette {
        dim: Color::Gray,
        positive: Color::Rgb(0, 120, 0),
        negative: Color::Rgb(180, 0, 0),
        warning: Color::Rgb(150, 90, 0),
        accent: Color::Blue,
        focus: Color::Blue,
        halted_fg: Color::White,
        halted_bg: Color::Rgb(180, 0, 0),
        reducing_fg: Color::Black,
        reducing_bg: Color::Rgb(230, 180, 0),
    };

    /// The brightest colours, no dim grey.
    pub const HIGH_CONTRAST: Palette = Palette {
        dim: Color::White,
        positive: Color::LightGreen,
        negative: Color::LightRed,
        warning: Color::LightYellow,
        accent: Color::LightCyan,
        focus: Color::LightYellow,
        halted_fg: Color::White,
        halted_bg: Color::Red,
        reducing_fg: Color::Black,
        reducing_bg: Color::LightYellow,
    };

    /// The roles a theme file names, with their colour in this palette.
    fn roles_mut(&mut self) -> [(&'static str, &mut Color); 10] {
        [
            ("dim", &mut self.dim),
            ("positive", &mut self.positive),
            ("negative", &mut self.negative),
            ("warning", &mut self.warning),
            ("accent", &mut self.accent),
            ("focus", &mut self.focus),
            ("halted_fg", &mut self.halted_fg),
            ("halted_bg", &mut self.halted_bg),
            ("reducing_fg", &mut self.reducing_fg),
            ("reducing_bg", &mut self.reducing_bg),
        ]
    }
}

/// The names `CRBOT_THEME` and `:theme` take.
pub const THEME_NAMES: &str = "dark, light, high-contrast, mono, custom (theme.toml)";

/// The theme file in the config folder.
pub const THEME_FILE: &str = "theme.toml";

/// A built-in palette by name, and whether it is in colour (`mono` is not).
fn builtin(name: &str) -> Option<(Palette, bool)> {
    match name {
        "dark" | "default" => Some((Palette::DARK, true)),
        "light" => Some((Palette::LIGHT, true)),
        "high-contrast" | "high_contrast" | "contrast" => Some((Palette::HIGH_CONTRAST, true)),
        "mono" | "monochrome" | "no-color" => Some((Palette::DARK, false)),
        _ => None,
    }
}

/// `:theme NAME`: `current` with the named palette (`custom` is the theme file's, read at
/// start). `NO_COLOR` stays honoured: without colour, only the glyphs could change.
pub fn switch(current: &Theme, custom: Option<&Palette>, name: &str) -> Result<Theme, String> {
    let name = name.trim().to_ascii_lowercase();
    let (palette, color) = match name.as_str() {
        "custom" | "file" => match custom {
            Some(p) => (*p, true),
            None => return Err(format!("no usable {THEME_FILE} in the config folder")),
        },
        other => builtin(other).ok_or_else(|| format!("no theme `{other}`: {THEME_NAMES}"))?,
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Ok(Theme {
        color: color && !no_color,
        ascii: current.ascii,
        palette,
    })
}

/// Reads a theme file: one `role = "colour"` per line (TOML's `key = "string"`), `#`
/// comments, and an optional `base = "light"` (a built-in palette to start from; dark
/// otherwise). Colours are names (`red`, `lightblue`, `darkgray`…), `#rrggbb` or an index
/// 0–255. Any mistake is an error naming the line.
pub fn parse_theme_file(text: &str) -> Result<Palette, String> {
    let mut base = Palette::DARK;
    let mut set: Vec<(String, Color, usize)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        // A `#rrggbb` value holds a `#`: a comment starts at the first `#` outside quotes.
        let line = strip_comment(raw).trim();
        if line.is_empty() || line.starts_with('[') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {line_no}: expected role = \"colour\""));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().trim_matches('"').trim();
        if key == "base" {
            base = builtin(&value.to_ascii_lowercase())
                .map(|(p, _)| p)
                .ok_or_else(|| {
                    format!("line {line_no}: no built-in theme `{value}` (dark, light, high-contrast)")
                })?;
            continue;
        }
        let color: Color = value
            .parse()
            .map_err(|_| format!("line {line_no}: `{value}` is not a colour (a name, #rrggbb or 0-255)"))?;
        set.push((key, color, line_no));
    }
    let mut palette = base;
    for (key, color, line_no) in set {
        let mut roles = palette.roles_mut();
        let Some((_, slot)) = roles.iter_mut().find(|(name, _)| *name == key) else {
            let names: Vec<&str> = roles.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "line {line_no}: no role `{key}` (roles: {})",
                names.join(", ")
            ));
        };
        **slot = color;
    }
    Ok(palette)
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The theme chosen by `CRBOT_THEME` (`name`; dark when unset), with the theme file read from
/// `config_dir` when it exists. Returns the theme, the file's palette (for `:theme custom`)
/// and a note for the screen when the file or the name could not be used: the default theme
/// is used then, never a half-read one.
pub fn configured(
    base: Theme,
    name: Option<&str>,
    config_dir: &std::path::Path,
) -> (Theme, Option<Palette>, Option<String>) {
    let path = config_dir.join(THEME_FILE);
    let mut note = None;
    let custom = match std::fs::read_to_string(&path) {
        Ok(text) => match parse_theme_file(&text) {
            Ok(p) => Some(p),
            Err(e) => {
                note = Some(format!("{}: {e}; using the default theme", path.display()));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            note = Some(format!(
                "{} cannot be read ({e}); using the default theme",
                path.display()
            ));
            None
        }
    };
    let name = name
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty());
    let theme = match name.as_deref() {
        // A theme file alone is used without being named.
        None if custom.is_some() => switch(&base, custom.as_ref(), "custom"),
        None => Ok(base),
        Some(n) => switch(&base, custom.as_ref(), n),
    };
    match theme {
        Ok(t) => (
            Theme {
                color: t.color && base.color,
                ..t
            },
            custom,
            note,
        ),
        Err(e) => {
            let note = note.unwrap_or_else(|| format!("CRBOT_THEME: {e}; using the default theme"));
            (base, custom, Some(note))
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
            palette: Palette::DARK,
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
        self.fg(self.palette.dim)
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn positive(&self) -> Style {
        self.fg(self.palette.positive)
    }

    pub fn negative(&self) -> Style {
        self.fg(self.palette.negative)
    }

    pub fn warning(&self) -> Style {
        self.fg(self.palette.warning)
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
            bold.fg(self.palette.halted_fg).bg(self.palette.halted_bg)
        } else {
            bold.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn reducing_badge(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            bold.fg(self.palette.reducing_fg).bg(self.palette.reducing_bg)
        } else {
            bold.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn active_badge(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            bold.fg(self.palette.positive)
        } else {
            bold
        }
    }

    /// The selected row of the focused list.
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// The border of the focused panel.
    pub fn focused_border(&self) -> Style {
        if self.color {
            Style::default()
                .fg(self.palette.focus)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn accent(&self) -> Style {
        self.fg(self.palette.accent)
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
    use super::*;

    #[test]
    fn a_theme_file_sets_the_roles_it_names_on_its_base() {
        let p = parse_theme_file(
            "# my colours\nbase = \"light\"\n[colors]\nnegative = \"#ff0000\"  # bright\npositive = \"lightgreen\"\nfocus = \"33\"\n",
        )
        .expect("valid");
        assert_eq!(p.negative, Color::Rgb(255, 0, 0));
        assert_eq!(p.positive, Color::LightGreen);
        assert_eq!(p.focus, Color::Indexed(33));
        assert_eq!(
            p.warning,
            Palette::LIGHT.warning,
            "a role not named keeps the base's"
        );
        assert_eq!(parse_theme_file("").expect("empty is the default"), Palette::DARK);
    }

    #[test]
    fn a_mistake_in_a_theme_file_names_its_line() {
        let e = parse_theme_file("positive = \"green\"\nloss = \"red\"\n").expect_err("refused");
        assert!(
            e.starts_with("line 2: no role `loss`") && e.contains("negative"),
            "{e}"
        );
        let e = parse_theme_file("negative = \"blood\"").expect_err("refused");
        assert!(e.contains("line 1: `blood` is not a colour"), "{e}");
        let e = parse_theme_file("negative red").expect_err("refused");
        assert!(e.contains("line 1: expected"), "{e}");
        let e = parse_theme_file("base = \"neon\"").expect_err("refused");
        assert!(e.contains("no built-in theme `neon`"), "{e}");
    }

    #[test]
    fn the_configured_theme_falls_back_to_the_default_with_a_note() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (t, custom, note) = configured(Theme::DEFAULT, Some("light"), dir.path());
        assert_eq!((t.palette, custom, note), (Palette::LIGHT, None, None));
        let (t, _, note) = configured(Theme::DEFAULT, Some("neon"), dir.path());
        assert_eq!(t, Theme::DEFAULT);
        assert!(note.is_some_and(|n| n.contains("CRBOT_THEME: no theme `neon`")));
        let (t, _, _) = configured(Theme::DEFAULT, Some("mono"), dir.path());
        assert!(!t.color);

        std::fs::write(dir.path().join(THEME_FILE), "negative = \"blue\"\n").expect("write");
        let (t, custom, note) = configured(Theme::DEFAULT, None, dir.path());
        assert_eq!(t.palette.negative, Color::Blue, "the file alone is used");
        assert!(custom.is_some() && note.is_none());

        std::fs::write(dir.path().join(THEME_FILE), "negative = \"nope\"\n").expect("write");
        let (t, custom, note) = configured(Theme::DEFAULT, None, dir.path());
        assert_eq!(t, Theme::DEFAULT);
        assert!(custom.is_none());
        let note = note.expect("a note");
        assert!(
            note.contains("theme.toml: line 1") && note.contains("using the default theme"),
            "{note}"
        );
    }

    #[test]
    fn without_colour_a_palette_changes_nothing() {
        let mono = Theme {
            color: false,
            palette: Palette::HIGH_CONTRAST,
            ..Theme::DEFAULT
        };
        assert_eq!(mono.negative(), Style::default());
        assert_eq!(mono.dim(), Style::default());
    }

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
