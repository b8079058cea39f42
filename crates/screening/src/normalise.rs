//! Normalisation of names, document numbers and identifiers.
//!
//! Every comparison in this crate works on the output of these steps, in this
//! order, so that each can be tested on its own:
//!
//! 1. [`compose`]: Unicode NFKC and lower case. NFKC folds compatibility forms
//!    (full-width letters, ligatures) that would otherwise survive
//!    transliteration as different text.
//! 2. [`transliterate`]: any script to ASCII with `any_ascii` (Arabic, Cyrillic,
//!    Greek, Latin with diacritics, ...). Arabic is written without short
//!    vowels, so its transliteration is a consonant skeleton ("mhmd").
//! 3. [`parts`]: split on separators (spaces, hyphens, dots, commas, slashes),
//!    drop what is not a letter or digit (apostrophes, the `` ` `` and `'` that
//!    stand for ayn and hamza), so "Abdel-Hamid" gives two parts and
//!    "Mu'ammar" one.
//! 4. [`skeleton`]: the consonants of a part, doubled letters collapsed, for
//!    comparing a vowelled Latin spelling with an abjad transliteration.

use unicode_normalization::UnicodeNormalization;

/// Step 1: NFKC, then lower case.
pub fn compose(text: &str) -> String {
    // NFKC leaves ASCII as it is, and its lower case is ASCII's.
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// Step 2: transliteration to lower-case ASCII (after [`compose`]).
pub fn transliterate(text: &str) -> String {
    let composed = compose(text);
    // ASCII is already what transliteration would make of it, and
    // [`compose`] has lowered its case.
    if composed.is_ascii() {
        return composed;
    }
    any_ascii::any_ascii(&composed).to_ascii_lowercase()
}

/// Whether a character separates name parts (as opposed to being dropped).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '‐' | '‑' | '–' | '—' | '.' | ',' | '/' | '_' | '(' | ')' | ';' | ':' | '+'
        )
}

/// Step 3: the written parts of a name, each with its folded ASCII forms.
///
/// A written part is what the writer separated ("MOSTEFAÏ"); its folded forms
/// are the ASCII tokens it gives (usually one; a part in a script whose
/// transliteration contains spaces may give several). Empty parts are dropped.
pub fn written_parts(name: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for written in name.split(is_separator).filter(|p| !p.is_empty()) {
        let ascii = transliterate(written);
        let tokens: Vec<String> = ascii
            .split(|c: char| c.is_whitespace() || is_separator(c))
            .map(|t| {
                t.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            })
            .filter(|t| !t.is_empty())
            .collect();
        if !tokens.is_empty() {
            out.push((written.to_string(), tokens));
        }
    }
    out
}

/// Step 3 without the written forms: the folded ASCII parts of a name.
pub fn parts(name: &str) -> Vec<String> {
    written_parts(name)
        .into_iter()
        .flat_map(|(_, t)| t)
        .collect()
}

/// Step 4: the consonant skeleton of a folded part.
///
/// Vowels and the semivowels `w` and `y` go (abjad scripts write long vowels
/// with them, Latin spellings with vowels), and doubled letters collapse
/// ("abaaoud" and Arabic-script "bwd" both give "bd").
pub fn skeleton(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut last = '\0';
    for c in part.chars() {
        if matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'w' | 'y') {
            continue;
        }
        if c != last {
            out.push(c);
        }
        last = c;
    }
    out
}

/// Whether a folded part has no vowel at all, as an abjad transliteration.
pub fn is_abjad(part: &str) -> bool {
    part.len() >= 2
        && !part
            .chars()
            .any(|c| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u'))
}

/// A document number or identifier reduced to its significant characters:
/// transliterated, upper case, with spaces, dashes, dots and slashes removed.
/// Numbers then match only when equal.
pub fn document_number(number: &str) -> String {
    transliterate(number)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// An identifier value normalised for its kind: e-mail addresses lower case
/// and trimmed; phone numbers their digits (a leading `00` read as `+`);
/// anything else as a document number.
pub fn identifier(kind: &str, value: &str) -> String {
    match compose(kind.trim()).as_str() {
        "email" | "e-mail" | "mail" => compose(value.trim()),
        "phone" | "tel" | "telephone" | "mobile" => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            digits
                .strip_prefix("00")
                .map(str::to_string)
                .unwrap_or(digits)
        }
        _ => document_number(value),
    }
}

/// A country code as two upper-case ASCII letters, if it is one.
pub fn country(code: &str) -> Option<[u8; 2]> {
    let b = code.trim().as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
        .then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_folds_case_and_compatibility_forms() {
        assert_eq!(compose("MOSTEFAÏ"), "mostefaï");
        assert_eq!(compose("ＯＭＡＲ"), "omar");
        assert_eq!(compose("ﬁrst"), "first");
    }

    #[test]
    fn ascii_fast_paths_agree_with_the_full_pipeline() {
        let ascii: String = (0u8..128).map(char::from).collect();
        assert_eq!(
            compose(&ascii),
            ascii
                .nfkc()
                .flat_map(char::to_lowercase)
                .collect::<String>()
        );
        assert_eq!(
            transliterate(&ascii),
            any_ascii::any_ascii(&ascii).to_ascii_lowercase()
        );
    }

    #[test]
    fn transliterate_removes_diacritics_and_converts_scripts() {
        assert_eq!(transliterate("Mostefaï"), "mostefai");
        assert_eq!(transliterate("Şükrü Çağlar Yılmaz"), "sukru caglar yilmaz");
        assert_eq!(transliterate("Царнаев"), "tsarnaev");
        assert_eq!(transliterate("Джохар"), "dzhokhar");
        assert_eq!(transliterate("محمد"), "mhmd");
    }

    #[test]
    fn parts_split_on_separators_and_drop_apostrophes() {
        assert_eq!(parts("Abdel-Hamid ABAAOUD"), ["abdel", "hamid", "abaaoud"]);
        assert_eq!(parts("Mu'ammar  al-Qadhafi"), ["muammar", "al", "qadhafi"]);
        assert_eq!(parts("عبد الحميد أباعود"), ["bd", "lhmyd", "bwd"]);
        assert_eq!(parts(" - "), Vec::<String>::new());
        let w = written_parts("MOSTEFAÏ, Omar");
        assert_eq!(w[0], ("MOSTEFAÏ".to_string(), vec!["mostefai".to_string()]));
    }

    #[test]
    fn skeleton_keeps_consonants_once() {
        assert_eq!(skeleton("abaaoud"), "bd");
        assert_eq!(skeleton("bwd"), "bd");
        assert_eq!(skeleton("abdelhamid"), skeleton("bdlhmyd"));
        assert!(is_abjad("mhmd"));
        assert!(!is_abjad("mohamed"));
    }

    #[test]
    fn document_numbers_ignore_spaces_dashes_and_case() {
        assert_eq!(document_number("ab-12 345.c"), "AB12345C");
        assert_eq!(document_number(" AB12345C "), "AB12345C");
        assert_ne!(document_number("AB12345C"), document_number("AB12345"));
    }

    #[test]
    fn identifiers_normalise_by_kind() {
        assert_eq!(identifier("phone", "+32 (0)470-12.34.56"), "320470123456");
        assert_eq!(identifier("phone", "0032 470 12"), "3247012");
        assert_eq!(identifier("Email", " Foo@Example.ORG "), "foo@example.org");
        assert_eq!(country("be"), Some(*b"BE"));
        assert_eq!(country("BEL"), None);
    }
}
