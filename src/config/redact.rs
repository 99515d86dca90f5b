//! Redaction of credentials carried inside URLs, for every message, log line and report that
//! may show a configured value: `https://user:hunter2@host/x?token=abc` is shown as
//! `https://user:***@host/x?token=***`.
//!
//! Owns: the one rule for what part of a URL is secret. Must not: decide whether a URL is
//! acceptable (the configuration does), or drop the rest of the text around a URL.
//!
//! It works on free text, not only on well-formed URLs, because the values that most need it
//! are the ones that failed to parse and are being quoted back in an error. It errs on the side
//! of hiding too much: every query value is hidden (a query is where tokens travel, and which
//! parameter carries one differs from service to service), and a password containing `/` is
//! still hidden whole.

/// What a hidden part is replaced with.
pub const MASK: &str = "***";

/// `text` with every URL's password (or bare user token) and query values replaced by `***`.
/// Text without `://` comes back unchanged.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(ends_url).unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        redact_after_scheme(url, &mut out);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A URL quoted in text ends at white space or a quoting character.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ',' | ')')
}

/// `url` is everything after `scheme://`.
fn redact_after_scheme(url: &str, out: &mut String) {
    let query_at = url.find(['?', '#']).unwrap_or(url.len());
    let (before_query, query_and_fragment) = url.split_at(query_at);
    // The last `@` before the query ends the user information, even when an unencoded `/` in
    // a password makes the host look like part of the path: hiding too much is the safe side.
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                // A user part alone is often a token (`https://TOKEN@host`).
                None if !userinfo.is_empty() => out.push_str(MASK),
                None => {}
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(h) => query_and_fragment.split_at(h),
        None => (query_and_fragment, ""),
    };
    if let Some(params) = query.strip_prefix('?') {
        out.push('?');
        for (i, param) in params.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match param.split_once('=') {
                Some((key, value)) if !value.is_empty() => {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(MASK);
                }
                Some((key, _)) => {
                    out.push_str(key);
                    out.push('=');
                }
                None if param.is_empty() => {}
                None => out.push_str(MASK),
            }
        }
    }
    out.push_str(fragment);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_but_keeps_the_user_and_host() {
        assert_eq!(
            redact_urls("https://user:hunter2@example.com/x"),
            "https://user:***@example.com/x"
        );
    }

    #[test]
    fn hides_a_bare_user_token_and_query_values() {
        assert_eq!(
            redact_urls("wss://ghp_abc@h:9/ws?token=s3cr3t&x=&flag"),
            "wss://***@h:9/ws?token=***&x=&***"
        );
    }

    #[test]
    fn hides_a_password_with_a_slash_whole() {
        let shown = redact_urls("postgresql://u:pa/ss@db/journal");
        assert!(!shown.contains("pa/ss") && !shown.contains("ss@"), "{shown}");
        assert_eq!(shown, "postgresql://u:***@db/journal");
    }

    #[test]
    fn redacts_every_url_in_free_text_and_leaves_the_rest() {
        assert_eq!(
            redact_urls("cannot reach 'https://a:b@h/' nor (http://c:d@i), sorry"),
            "cannot reach 'https://a:***@h/' nor (http://c:***@i), sorry"
        );
        assert_eq!(redact_urls("no url here: a@b"), "no url here: a@b");
        assert_eq!(redact_urls("https://plain.example/"), "https://plain.example/");
    }

    #[test]
    fn keeps_a_fragment_and_multibyte_text() {
        assert_eq!(
            redact_urls("é https://u:p@h/p?q=1#frag é"),
            "é https://u:***@h/p?q=***#frag é"
        );
    }
}
