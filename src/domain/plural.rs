//! Counts in words that read right: "1 order", "2 orders", "0 orders". Every message that
//! says how many of something there are goes through [`count`], never "order(s)".

/// `n` and the noun in the number it needs: `count(1, "order", "orders")` is "1 order".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", verb(n, one, many))
}

/// The word that agrees with `n`: `verb(2, "stays", "stay")` is "stay".
pub fn verb<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "order", "orders"), "1 order");
        assert_eq!(count(2, "order", "orders"), "2 orders");
        assert_eq!(count(0, "order", "orders"), "0 orders");
        assert_eq!(verb(1, "stays", "stay"), "stays");
        assert_eq!(verb(3, "stays", "stay"), "stay");
    }
}
