//! The kill-switch key as configured (`KILL_KEY`), independent of any terminal library.
//!
//! Owns: parsing and printing key names such as `ctrl-k` or `f12`. Must not: accept a key that
//! typing in a ticket could produce (a bare letter) or one the terminal itself takes over
//! (Ctrl-C, Ctrl-Z, Ctrl-S/Ctrl-Q flow control, and the Ctrl aliases of Enter, Tab, Backspace).

use std::fmt;
use std::str::FromStr;

/// The key itself, without modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyName {
    /// A lower-case ASCII letter.
    Char(char),
    /// A function key, 1 to 12.
    F(u8),
}

/// A key chord: `ctrl-k`, `alt-x`, `ctrl-alt-k`, `f12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KillKey {
    pub ctrl: bool,
    pub alt: bool,
    pub key: KeyName,
}

impl KillKey {
    /// What `KILL_KEY` accepts, for error messages and `.env.example`.
    pub const ALLOWED: &'static str =
        "ctrl-<letter> (not c, h, i, j, m, q, s, z), alt-<letter>, ctrl-alt-<letter>, or f1..f12";

    /// The default, Ctrl-K.
    pub const DEFAULT: KillKey = KillKey {
        ctrl: true,
        alt: false,
        key: KeyName::Char('k'),
    };
}

impl Default for KillKey {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Ctrl chords the terminal or the line discipline already owns.
const RESERVED_CTRL: &[char] = &['c', 'h', 'i', 'j', 'm', 'q', 's', 'z'];

impl FromStr for KillKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let mut parts: Vec<&str> = lower.split(['-', '+']).collect();
        let last = parts.pop().ok_or(())?;
        let (mut ctrl, mut alt) = (false, false);
        for p in parts {
            match p {
                "ctrl" | "control" | "c" if !ctrl => ctrl = true,
                "alt" | "meta" | "a" if !alt => alt = true,
                _ => return Err(()),
            }
        }
        let key = if let Some(n) = last.strip_prefix('f').filter(|n| !n.is_empty()) {
            let n: u8 = n.parse().map_err(|_| ())?;
            if !(1..=12).contains(&n) {
                return Err(());
            }
            KeyName::F(n)
        } else {
            let mut chars = last.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_lowercase() => KeyName::Char(c),
                _ => return Err(()),
            }
        };
        if let KeyName::Char(c) = key {
            if !ctrl && !alt {
                // A bare letter would fire while typing a symbol into a ticket.
                return Err(());
            }
            if ctrl && !alt && RESERVED_CTRL.contains(&c) {
                return Err(());
            }
        }
        Ok(KillKey { ctrl, alt, key })
    }
}

impl fmt::Display for KillKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.key {
            KeyName::Char(c) => write!(f, "{c}"),
            KeyName::F(n) => write!(f, "f{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_chords() {
        for (text, printed) in [
            ("ctrl-k", "ctrl-k"),
            ("Ctrl+K", "ctrl-k"),
            ("alt-x", "alt-x"),
            ("ctrl-alt-q", "ctrl-alt-q"),
            ("F12", "f12"),
            ("ctrl-f1", "ctrl-f1"),
        ] {
            let k: KillKey = text.parse().unwrap_or_else(|()| panic!("{text} should parse"));
            assert_eq!(k.to_string(), printed);
        }
    }

    #[test]
    fn refuses_bare_letters_reserved_ctrl_chords_and_nonsense() {
        for text in [
            "k", "ctrl-c", "ctrl-s", "ctrl-z", "ctrl-m", "f13", "f0", "ctrl-", "shift-k", "ctrl-kk", "",
        ] {
            assert!(text.parse::<KillKey>().is_err(), "{text} should be refused");
        }
    }
}
