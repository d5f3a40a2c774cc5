//! The kernel's number parsers: `simple_strtoul` with base 0 and
//! `memparse` (lib/cmdline.c). Pure.

/// Parses a leading unsigned number the way `simple_strtoul(s, &end, 0)`
/// does (`0x` hex, leading `0` octal, else decimal). Returns the value and
/// the bytes used, or `None` when no digit was used. Overflow saturates.
pub fn parse_ulong(s: &str) -> Option<(u64, usize)> {
    let b = s.as_bytes();
    let (radix, start) =
        if b.len() >= 3 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16, 2)
        } else if b.first() == Some(&b'0') {
            (8, 0)
        } else {
            (10, 0)
        };
    let mut value: u64 = 0;
    let mut used = start;
    while let Some(d) = b.get(used).and_then(|&c| char::from(c).to_digit(radix)) {
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
        used += 1;
    }
    (used > start).then_some((value, used))
}

/// `memparse`: a number with an optional K, M, G, T, P or E suffix (each
/// x1024, either case); trailing junk is ignored; no digits reads as 0.
pub fn memparse(s: &str) -> u64 {
    let Some((value, used)) = parse_ulong(s) else {
        return 0;
    };
    let shift = match s.as_bytes().get(used).map(u8::to_ascii_uppercase) {
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        Some(b'T') => 40,
        Some(b'P') => 50,
        Some(b'E') => 60,
        _ => 0,
    };
    value
        .checked_shl(shift)
        .filter(|v| v >> shift == value)
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_detects_the_base_and_counts_bytes() {
        assert_eq!(parse_ulong("12x"), Some((12, 2)));
        assert_eq!(parse_ulong("0x1f="), Some((31, 4)));
        assert_eq!(parse_ulong("010"), Some((8, 3)));
        assert_eq!(parse_ulong("0"), Some((0, 1)));
        assert_eq!(parse_ulong("0x"), Some((0, 1)));
        assert_eq!(parse_ulong("x"), None);
        assert_eq!(parse_ulong("99999999999999999999999"), Some((u64::MAX, 23)));
    }

    #[test]
    fn memparse_takes_suffixes_in_either_case() {
        assert_eq!(memparse("64M"), 64 << 20);
        assert_eq!(memparse("1g"), 1 << 30);
        assert_eq!(memparse("64"), 64);
        assert_eq!(memparse("128Mjunk"), 128 << 20);
        assert_eq!(memparse("junk"), 0);
        assert_eq!(memparse("99999999999E"), u64::MAX);
    }
}
