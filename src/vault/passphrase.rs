//! Where passphrases (and typed keys) come from, and which passphrases are too weak.
//!
//! Owns: the `PassphraseSource` seam (terminal without echo, lines of standard input, scripted
//! answers in tests) and the strength rule. Must not: echo, log or keep a copy of what it reads
//! outside a `SecretString`; a refusal reason never quotes the passphrase.

use std::io::BufRead;
use std::path::Path;

use super::VaultError;
use crate::secret::SecretString;

/// Minimum passphrase length, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Minimum number of different characters.
pub const MIN_DISTINCT_CHARS: usize = 5;

/// Something that answers secret questions: the vault passphrase, an API key, an API secret.
pub trait PassphraseSource {
    /// Asks for one secret. `Ok(None)` means there is no more input (end of file).
    fn ask(&mut self, prompt: &str) -> Result<Option<SecretString>, VaultError>;

    /// The vault passphrase.
    fn passphrase(&mut self, prompt: &str) -> Result<Option<SecretString>, VaultError> {
        self.ask(prompt)
    }

    /// Tells the user something (e.g. "Wrong passphrase."). Silent by default.
    fn notice(&mut self, _message: &str) {}
}

/// Asks on the terminal (`/dev/tty`) with no echo, prompts and notices on stderr. The terminal
/// is put in raw mode for the answer and each typed byte goes straight from the kernel into
/// one pre-sized wiped buffer (backspace and Ctrl-U edit it in place), so no copy is left in a
/// line buffer or a grown `String`. Ctrl-C cancels, Ctrl-D on an empty answer is end of input.
#[derive(Debug, Default)]
pub struct TerminalPrompt;

/// Puts the terminal in raw mode (no echo, no line editing by the kernel) until dropped.
struct RawMode;

impl RawMode {
    fn enter() -> std::io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

impl PassphraseSource for TerminalPrompt {
    fn ask(&mut self, prompt: &str) -> Result<Option<SecretString>, VaultError> {
        use std::io::Write as _;
        let cannot = |e: std::io::Error| VaultError::NoInput(format!("cannot read from the terminal ({e})"));
        let mut tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(cannot)?;
        eprint!("{prompt}");
        let raw = RawMode::enter().map_err(cannot)?;
        let answer = read_typed(&mut tty);
        drop(raw);
        let _ = tty.write_all(b"\n");
        answer
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// Reads what is typed on a raw terminal up to Enter, one byte per call, into one pre-sized
/// wiped buffer: backspace (DEL or BS) removes the last character (all its UTF-8 bytes),
/// Ctrl-U everything, Ctrl-C cancels, Ctrl-D on an empty answer (or the end of input) is `None`.
pub fn read_typed(reader: &mut dyn std::io::Read) -> Result<Option<SecretString>, VaultError> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; MAX_LINE + 1]);
    let mut len = 0;
    loop {
        match reader.read(&mut buf[len..=len]) {
            Ok(0) if len == 0 => return Ok(None),
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(VaultError::NoInput(format!(
                    "cannot read from the terminal ({e})"
                )));
            }
        }
        let byte = std::mem::take(&mut buf[len]);
        match byte {
            b'\r' | b'\n' => break,
            0x03 => return Err(VaultError::NoInput("cancelled at the terminal".into())),
            0x04 if len == 0 => return Ok(None),
            0x04 => {}
            0x7f | 0x08 => {
                // Remove UTF-8 continuation bytes, then the character's first byte.
                while len > 0 {
                    len -= 1;
                    let b = std::mem::take(&mut buf[len]);
                    if b & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => {
                buf[..len].iter_mut().for_each(|b| *b = 0);
                len = 0;
            }
            b => {
                buf[len] = b;
                len += 1;
                if len == MAX_LINE {
                    return Err(VaultError::NoInput(format!(
                        "an answer at the terminal is longer than {MAX_LINE} bytes"
                    )));
                }
            }
        }
    }
    into_secret(buf, len, "the terminal's input").map(Some)
}

/// The first `len` bytes of `buf` as the secret, moved (not copied) into a `SecretString`.
fn into_secret(
    mut buf: zeroize::Zeroizing<Vec<u8>>,
    len: usize,
    what: &str,
) -> Result<SecretString, VaultError> {
    buf.truncate(len);
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Ok(SecretString::new(text)),
        Err(e) => {
            zeroize::Zeroizing::new(e.into_bytes());
            Err(VaultError::NoInput(format!("{what} is not UTF-8 text")))
        }
    }
}

/// One answer per line of a reader (standard input with `--passphrase-stdin`). The line ending
/// (`\n` or `\r\n`) is not part of the answer. Prompts are not shown.
#[derive(Debug)]
pub struct LinesSource<R> {
    reader: R,
}

impl<R: BufRead> LinesSource<R> {
    pub fn new(reader: R) -> Self {
        Self { reader }
    }
}

impl<R: BufRead> PassphraseSource for LinesSource<R> {
    fn ask(&mut self, _prompt: &str) -> Result<Option<SecretString>, VaultError> {
        // Read straight into the String that becomes the secret (no copy to wipe).
        let mut line = String::with_capacity(256);
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| VaultError::NoInput(format!("cannot read standard input ({})", e.kind())));
        let secret = SecretString::new(line);
        match n? {
            0 => Ok(None),
            _ => {
                let trimmed = secret.expose().trim_end_matches(['\n', '\r']);
                // A trimmed copy is itself a SecretString; the untrimmed one is wiped on drop.
                Ok(Some(SecretString::from(trimmed)))
            }
        }
    }
}

/// The longest answer read from standard input.
pub const MAX_LINE: usize = 4096;

/// One answer per line of standard input (`--passphrase-stdin`), read without a buffer: each
/// byte goes from the kernel straight into the wiped allocation that becomes the secret, so no
/// copy is left behind in the standard library's 8 KiB input buffer (never wiped) or in the
/// freed blocks of a growing `String`. Reads a duplicate of descriptor 0 (same offset), one
/// byte per call, so nothing after the line is consumed.
#[derive(Debug)]
pub struct StdinLines {
    file: std::fs::File,
}

impl StdinLines {
    pub fn new() -> Result<Self, VaultError> {
        use std::os::fd::AsFd as _;
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| VaultError::NoInput(format!("cannot read standard input ({})", e.kind())))?;
        Ok(Self {
            file: std::fs::File::from(fd),
        })
    }
}

impl PassphraseSource for StdinLines {
    fn ask(&mut self, _prompt: &str) -> Result<Option<SecretString>, VaultError> {
        read_line_unbuffered(&mut self.file)
    }
}

/// Reads one line (without its `\n` or `\r\n`) from `reader` one byte per call into one
/// pre-sized wiped buffer. `None` at end of input before any byte.
pub fn read_line_unbuffered(reader: &mut dyn std::io::Read) -> Result<Option<SecretString>, VaultError> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; MAX_LINE + 1]);
    let mut len = 0;
    let mut ended = false;
    loop {
        match reader.read(&mut buf[len..=len]) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(_) if buf[len] == b'\n' => {
                buf[len] = 0;
                break;
            }
            Ok(_) => len += 1,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(VaultError::NoInput(format!(
                    "cannot read standard input ({})",
                    e.kind()
                )));
            }
        }
        if len > MAX_LINE - 1 {
            return Err(VaultError::NoInput(format!(
                "a line of standard input is longer than {MAX_LINE} bytes"
            )));
        }
    }
    if ended && len == 0 {
        return Ok(None);
    }
    if len > 0 && buf[len - 1] == b'\r' {
        len -= 1;
    }
    into_secret(buf, len, "standard input").map(Some)
}

/// Answers from a list, for tests and for callers that already hold the secrets.
#[derive(Debug, Default)]
pub struct ScriptedSource {
    answers: std::collections::VecDeque<SecretString>,
    /// Every prompt asked, in order (prompts are not secret).
    pub prompts: Vec<String>,
    /// Every notice shown, in order.
    pub notices: Vec<String>,
}

impl ScriptedSource {
    pub fn new<I: IntoIterator<Item = S>, S: Into<SecretString>>(answers: I) -> Self {
        Self {
            answers: answers.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

impl PassphraseSource for ScriptedSource {
    fn ask(&mut self, prompt: &str) -> Result<Option<SecretString>, VaultError> {
        self.prompts.push(prompt.to_string());
        Ok(self.answers.pop_front())
    }

    fn notice(&mut self, message: &str) {
        self.notices.push(message.to_string());
    }
}

/// The largest passphrase file read (a passphrase is one line; anything bigger is a mistake).
pub const MAX_PASSPHRASE_FILE: u64 = 4096;

/// Reads the vault passphrase from a file for an unattended start (`CRBOT_PASSPHRASE_FILE`).
/// Accepted only when it is a regular file of mode 0600 or 0400 owned by the user crbot runs
/// as (checked on the opened file, so it cannot be swapped between the check and the read),
/// one line (a final `\n` or `\r\n` is not part of the passphrase), not empty. Read straight
/// into one wiped buffer that becomes the secret: no other copy is made. Errors name the file,
/// never its content.
pub fn read_passphrase_file(path: &Path) -> Result<SecretString, VaultError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |problem: String| VaultError::PassphraseFile {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| refuse(format!("cannot be read ({})", e.kind())))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot be read ({})", e.kind())))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o600 && mode != 0o400 {
        return Err(refuse(format!(
            "has mode {mode:04o}; only 0600 or 0400 are accepted: chmod 600 it"
        )));
    }
    let uid = super::effective_uid();
    if meta.uid() != uid {
        return Err(refuse(format!(
            "is owned by user id {}, not by the user crbot runs as ({uid}): chown it",
            meta.uid()
        )));
    }
    if meta.len() > MAX_PASSPHRASE_FILE {
        return Err(refuse(format!("is larger than {MAX_PASSPHRASE_FILE} bytes")));
    }
    // One allocation, sized before reading, so no reallocation leaves a copy behind.
    let mut buf = zeroize::Zeroizing::new(vec![0u8; MAX_PASSPHRASE_FILE as usize + 1]);
    let mut len = 0;
    loop {
        match std::io::Read::read(&mut file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(refuse(format!("cannot be read ({})", e.kind()))),
        }
        if len == buf.len() {
            return Err(refuse(format!("is larger than {MAX_PASSPHRASE_FILE} bytes")));
        }
    }
    if buf[..len].ends_with(b"\n") {
        len -= 1;
    }
    if buf[..len].ends_with(b"\r") {
        len -= 1;
    }
    if len == 0 {
        return Err(refuse("is empty".into()));
    }
    buf.truncate(len);
    // The buffer moves into the String (no copy); the truncated tail is wiped here.
    let bytes = std::mem::take(&mut *buf);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SecretString::new(text)),
        Err(e) => {
            zeroize::Zeroizing::new(e.into_bytes());
            Err(refuse("is not UTF-8 text".into()))
        }
    }
}

/// Refuses a weak passphrase, with the reason: fewer than 12 characters, fewer than 5 different
/// characters, one short pattern repeated, or a plain run like `abcdefghijkl` / `123456789012`.
pub fn check_strength(passphrase: &SecretString) -> Result<(), VaultError> {
    let chars: Vec<char> = passphrase.expose().chars().collect();
    let weak = |why: &str| Err(VaultError::WeakPassphrase(why.to_string()));
    if chars.len() < MIN_PASSPHRASE_CHARS {
        return weak(&format!(
            "it has {} characters, at least {MIN_PASSPHRASE_CHARS} are needed",
            chars.len()
        ));
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return weak(&format!(
            "it uses fewer than {MIN_DISTINCT_CHARS} different characters"
        ));
    }
    let n = chars.len();
    if (1..=n / 2).any(|unit| n.is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit])) {
        return weak("it repeats a short pattern");
    }
    let steps: Vec<i64> = chars.windows(2).map(|w| w[1] as i64 - w[0] as i64).collect();
    if steps.iter().all(|s| *s == steps[0]) && steps[0].abs() <= 1 {
        return weak("it is a simple sequence of characters");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strength(s: &str) -> Result<(), String> {
        check_strength(&SecretString::from(s)).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_long_varied_passphrase() {
        assert_eq!(strength("correct horse battery staple"), Ok(()));
    }

    #[test]
    fn refuses_weak_passphrases_with_a_reason_that_does_not_quote_them() {
        for (p, why) in [
            ("short1!", "at least 12"),
            ("aaaaaaaaaaaaaaaa", "different characters"),
            ("abcdeabcdeabcde", "repeats a short pattern"),
            ("abcdefghijklmnop", "simple sequence"),
            ("zyxwvutsrqponm", "simple sequence"),
        ] {
            let err = strength(p).unwrap_err();
            assert!(err.contains(why), "{p}: {err}");
            assert!(!err.contains(p), "{err}");
        }
    }

    #[test]
    fn unbuffered_lines_strip_line_endings_consume_only_their_line_and_report_the_end() {
        let mut input = &b"first pass\r\nsecond\nlast without newline"[..];
        assert_eq!(
            read_line_unbuffered(&mut input).unwrap().unwrap().expose(),
            "first pass"
        );
        assert_eq!(input, b"second\nlast without newline");
        assert_eq!(
            read_line_unbuffered(&mut input).unwrap().unwrap().expose(),
            "second"
        );
        assert_eq!(
            read_line_unbuffered(&mut input).unwrap().unwrap().expose(),
            "last without newline"
        );
        assert!(read_line_unbuffered(&mut input).unwrap().is_none());
        let mut empty_line = &b"\n"[..];
        assert_eq!(
            read_line_unbuffered(&mut empty_line).unwrap().unwrap().expose(),
            ""
        );
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(read_line_unbuffered(&mut &long[..]).is_err());
    }

    #[test]
    fn typing_at_the_terminal_edits_in_place_and_stops_at_enter() {
        let typed = |bytes: &[u8]| read_typed(&mut &bytes[..]).map(|s| s.map(|s| s.expose().to_string()));
        assert_eq!(
            typed(b"correct horse\r").unwrap().as_deref(),
            Some("correct horse")
        );
        assert_eq!(typed(b"abx\x7fc\n").unwrap().as_deref(), Some("abc"));
        assert_eq!(
            typed("caf\u{e9}\x7fe\r".as_bytes()).unwrap().as_deref(),
            Some("cafe")
        );
        assert_eq!(typed(b"\x7f\x7fok\r").unwrap().as_deref(), Some("ok"));
        assert_eq!(typed(b"wrong\x15right\r").unwrap().as_deref(), Some("right"));
        assert_eq!(typed(b"no enter").unwrap().as_deref(), Some("no enter"));
        assert_eq!(typed(b"\r").unwrap().as_deref(), Some(""));
        assert_eq!(typed(b"").unwrap(), None);
        assert_eq!(typed(b"\x04").unwrap(), None);
        let err = typed(b"secret\x03").unwrap_err().to_string();
        assert!(err.contains("cancelled") && !err.contains("secret"), "{err}");
        assert!(typed(&vec![b'x'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn lines_source_strips_line_endings_and_reports_end_of_input() {
        let mut src = LinesSource::new(&b"first pass\r\nsecond\n"[..]);
        assert_eq!(src.ask("").unwrap().unwrap().expose(), "first pass");
        assert_eq!(src.ask("").unwrap().unwrap().expose(), "second");
        assert!(src.ask("").unwrap().is_none());
    }
}
