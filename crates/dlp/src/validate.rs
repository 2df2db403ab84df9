//! Validators run after a regex matched: they turn "looks like" into "is".

use crate::rules::Validator;

/// Whether `m` (the matched bytes, or its `secret` group) passes `v`.
pub fn check(v: Validator, m: &[u8], min_entropy: f64) -> bool {
    match v {
        Validator::Luhn => card(m),
        Validator::Iban => iban(m),
        Validator::Ssn => ssn(m),
        Validator::Entropy => entropy(m) >= min_entropy,
    }
}

fn digits(m: &[u8]) -> Vec<u8> {
    m.iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum over decimal digits.
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A payment card number: a known issuer range with its length, and Luhn.
pub fn card(m: &[u8]) -> bool {
    let d = digits(m);
    let n = d.len();
    let prefix = |k: usize| d.iter().take(k).fold(0u32, |a, &x| a * 10 + u32::from(x));
    let issuer_ok = match d.first() {
        Some(4) => matches!(n, 13 | 16 | 19),                 // Visa
        Some(5) => (51..=55).contains(&prefix(2)) && n == 16, // Mastercard
        Some(2) => (2221..=2720).contains(&prefix(4)) && n == 16, // Mastercard 2-series
        Some(3) => match prefix(2) {
            34 | 37 => n == 15,                                                 // Amex
            36 | 38 | 39 | 30 => (14..=19).contains(&n),                        // Diners
            35 => (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&n), // JCB
            _ => false,
        },
        Some(6) => {
            (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)))
                && (16..=19).contains(&n) // Discover
        }
        _ => false,
    };
    issuer_ok && luhn(&d)
}

/// An IBAN: length 15..=34, ISO 13616 mod-97 remainder 1.
pub fn iban(m: &[u8]) -> bool {
    let s: Vec<u8> = m.iter().copied().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&s.len()) || !s.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let rearranged = s[4..].iter().chain(&s[..4]);
    let mut rem: u32 = 0;
    for &b in rearranged {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// A dashed SSN with a possible area (not 000, 666 or 900-999), group (not
/// 00) and serial (not 0000).
pub fn ssn(m: &[u8]) -> bool {
    let d = digits(m);
    if d.len() != 9 {
        return false;
    }
    let n = |a: usize, b: usize| d[a..b].iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let (area, group, serial) = (n(0, 3), n(3, 5), n(5, 9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Shannon entropy in bits per byte.
pub fn entropy(m: &[u8]) -> f64 {
    if m.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in m {
        counts[usize::from(b)] += 1;
    }
    let n = m.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        assert!(card(b"4111 1111 1111 1111"));
        assert!(card(b"5555-5555-5555-4444"));
        assert!(card(b"378282246310005"));
        assert!(card(b"6011111111111117"));
        assert!(!card(b"4111 1111 1111 1112"), "fails Luhn");
        assert!(!card(b"1234567812345670"), "passes Luhn, no issuer");
        assert!(!card(b"411111111111111"), "Visa with 15 digits");
    }

    #[test]
    fn ibans() {
        assert!(iban(b"GB82 WEST 1234 5698 7654 32"));
        assert!(iban(b"DE89370400440532013000"));
        assert!(!iban(b"DE89370400440532013001"));
        assert!(!iban(b"GB82"));
    }

    #[test]
    fn ssns() {
        assert!(ssn(b"123-45-6789"));
        assert!(!ssn(b"000-45-6789"));
        assert!(!ssn(b"666-45-6789"));
        assert!(!ssn(b"912-45-6789"));
        assert!(!ssn(b"123-00-6789"));
        assert!(!ssn(b"123-45-0000"));
    }

    #[test]
    fn entropy_separates_keys_from_words() {
        assert!(entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8d3kL0vQ") > 4.5);
        assert!(entropy(b"aaaaaaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy(b"passwordpassword") < 3.0);
        assert_eq!(entropy(b""), 0.0);
    }
}
