//! The dotenv format of `.env` and `crbot.env`: `NAME=VALUE` lines, read without touching the
//! process environment.
//!
//! Owns: the grammar and its errors. Must not: quote a value or a whole line in an error (the
//! line may hold an API secret); errors name the line number and, once it is known, the
//! variable.
//!
//! The grammar is the common one: blank lines and `#` comments; an optional `export `; spaces
//! around `=` allowed; a value is unquoted (trimmed, ending at ` #` for a trailing comment),
//! `'single quoted'` (literal) or `"double quoted"` (`\n`, `\t`, `\"`, `\\` escapes); a quoted
//! value may span lines. Two deliberate differences from shell-like readers:
//!
//! - `$` is literal. Substituting `$NAME` would silently change a secret or a password that
//!   happens to contain a `$`.
//! - A variable given twice in one file is an error naming both lines. With a first-wins or
//!   last-wins rule, a trader who appends `ENV=production` to a file that already says
//!   `ENV=development` gets one of them without being told which.

use std::collections::BTreeMap;

/// One variable read from a file, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

/// Parses dotenv text into its variables.
pub fn parse(text: &str) -> Result<BTreeMap<String, Entry>, String> {
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim_start_matches('\u{feff}').trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((name, raw)) = line.split_once('=') else {
            return Err(format!("line {number} is not NAME=VALUE"));
        };
        let name = name.trim_end();
        if !is_name(name) {
            return Err(format!(
                "line {number}: the variable name is not valid (letters, digits and _ only)"
            ));
        }
        let raw = raw.trim_start();
        let value = match raw.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let (value, used) = quoted(quote, &raw[1..], &lines[i..])
                    .map_err(|why| format!("line {number}: {name}: {why}"))?;
                i += used;
                value
            }
            _ => unquoted(raw),
        };
        if let Some(first) = out.get(name) {
            return Err(format!(
                "{name} is set twice (lines {} and {number}); keep one",
                first.line
            ));
        }
        out.insert(name.to_string(), Entry { value, line: number });
    }
    Ok(out)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// An unquoted value ends at a `#` that follows white space (a trailing comment).
fn unquoted(raw: &str) -> String {
    let mut end = raw.len();
    let mut prev_space = true;
    for (at, c) in raw.char_indices() {
        if c == '#' && prev_space {
            end = at;
            break;
        }
        prev_space = c.is_whitespace();
    }
    raw[..end].trim().to_string()
}

/// A quoted value starting after its opening quote, possibly continued on `more` lines.
/// Returns the value and how many of `more` it used.
fn quoted(quote: char, first: &str, more: &[&str]) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut used = 0;
    let mut current = first;
    loop {
        let mut chars = current.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == quote {
                let after = current[at + c.len_utf8()..].trim();
                if !(after.is_empty() || after.starts_with('#')) {
                    return Err("unexpected text after the closing quote".into());
                }
                return Ok((value, used));
            }
            if c == '\\' && quote == '"' {
                match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some(e @ ('"' | '\\' | '$' | '\'')) => value.push(e),
                    Some(e) => {
                        value.push('\\');
                        value.push(e);
                    }
                    None => value.push('\\'),
                }
                continue;
            }
            value.push(c);
        }
        let Some(next) = more.get(used) else {
            return Err("the quote is never closed".into());
        };
        value.push('\n');
        used += 1;
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> BTreeMap<String, String> {
        parse(text)
            .expect("parses")
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect()
    }

    #[test]
    fn reads_the_common_forms() {
        let m = values(
            "# c\n\nexport A=1\nB = two words # comment\nC='lit $X \\n'\nD=\"q \\\"x\\\" \\n\"\n\
             E=a#b\nF=\nG=\"multi\nline\"\n",
        );
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "lit $X \\n");
        assert_eq!(m["D"], "q \"x\" \n");
        assert_eq!(m["E"], "a#b");
        assert_eq!(m["F"], "");
        assert_eq!(m["G"], "multi\nline");
    }

    #[test]
    fn a_dollar_sign_is_kept_as_written() {
        assert_eq!(values("S=ab$HOME${X}")["S"], "ab$HOME${X}");
    }

    #[test]
    fn a_repeated_name_is_refused_with_both_line_numbers() {
        let err = parse("ENV=development\n# x\nDEBUG=false\n\nENV=production\n").expect_err("twice");
        assert_eq!(err, "ENV is set twice (lines 1 and 5); keep one");
    }

    #[test]
    fn errors_give_the_line_and_never_the_value() {
        for (text, want) in [
            ("A=1\nNhqPtmdSJYdKjVHj\n", "line 2 is not NAME=VALUE"),
            (
                "A=1\nS=\"NhqPtmdSJYdKjVHj\n",
                "line 2: S: the quote is never closed",
            ),
            (
                "S='NhqPtmdSJYdKjVHj' tail\n",
                "line 1: S: unexpected text after the closing quote",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err, want);
            assert!(!err.contains("NhqPtmd"));
        }
    }
}
