//! Deterministic synthetic candidates and queries for benchmarks and tests.
//!
//! Names come from lists of common given and family names of several
//! cultures (Maghreb and Levant Arabic, Turkish, French, Russian and Chechen
//! in Cyrillic or transliterated, South Asian, English), drawn with a Zipf
//! skew so that common names repeat a lot (as "Mohamed" does on real lists),
//! plus a long tail of family names built from syllables. None of these are
//! real people; the generator is a pseudo-random function of its seed.

use crate::types::{Candidate, Dob, Document, Identifier, Query};

/// SplitMix64: small, fast and good enough for test data, and fixed, so a seed
/// gives the same data on every machine and version.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// Index `i` of `n` with probability proportional to 1 / (i + 1).
    fn zipf(&mut self, n: usize) -> usize {
        // Inverse of the continuous approximation of the harmonic CDF.
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let x = ((n as f64 + 1.0).ln() * u).exp() - 1.0;
        (x as usize).min(n - 1)
    }
}

struct Culture {
    given: &'static [&'static str],
    family: &'static [&'static str],
    countries: &'static [&'static str],
    /// Long-tail family names: prefixes, syllables, suffixes.
    prefix: &'static [&'static str],
    suffix: &'static [&'static str],
    share: u64,
}

const SYLLABLES: &[&str] = &[
    "ba", "ka", "ma", "ra", "sa", "ta", "la", "na", "ha", "da", "za", "be", "ke", "me", "re", "se",
    "te", "le", "ne", "bi", "ki", "mi", "ri", "si", "ti", "li", "ni", "bo", "ko", "mo", "ro", "so",
    "to", "lo", "no", "bu", "ku", "mu", "ru", "su", "tu", "lu", "nu", "dar", "kan", "mir", "sel",
    "tor", "zan", "gar", "vel", "hab",
];

const CULTURES: &[Culture] = &[
    Culture {
        given: &[
            "Mohamed",
            "Ahmed",
            "Youssef",
            "Omar",
            "Ali",
            "Karim",
            "Rachid",
            "Said",
            "Mustapha",
            "Abdelkader",
            "Abdellah",
            "Hassan",
            "Hamza",
            "Ibrahim",
            "Khaled",
            "Nabil",
            "Samir",
            "Yassine",
            "Bilal",
            "Mehdi",
            "Sofiane",
            "Walid",
            "Amine",
            "Ayoub",
            "Anas",
            "Tarek",
            "Hicham",
            "Jamal",
            "Nordine",
            "Farid",
            "Mourad",
            "Redouane",
            "Fatima",
            "Khadija",
            "Aicha",
            "Meryem",
            "Nadia",
            "Samira",
            "Leila",
            "Salma",
            "Zineb",
            "Imane",
            "Souad",
            "Yasmina",
            "Brahim",
            "Abderrahmane",
            "Ismail",
            "Driss",
        ],
        family: &[
            "Benali",
            "Bouzid",
            "Haddad",
            "Mansouri",
            "Belkacem",
            "Cherif",
            "Hamidi",
            "Khelifi",
            "Saidi",
            "Brahimi",
            "Amrani",
            "Bennani",
            "El Idrissi",
            "Tazi",
            "Berrada",
            "Benjelloun",
            "Chaoui",
            "Ziani",
            "Rahmani",
            "Boukhari",
            "Belhadj",
            "Mebarki",
            "Abdeslam",
            "El Amrani",
            "Ouali",
            "Lahlou",
            "Bekkali",
            "Zerouali",
            "Achour",
            "Meziane",
            "Bouazza",
            "Kaddouri",
            "Benaissa",
            "Hadj",
            "Slimani",
            "Touati",
        ],
        countries: &["MA", "DZ", "TN", "FR", "BE"],
        prefix: &["Ben", "Bou", "El ", "Ait ", ""],
        suffix: &["i", "ani", "ouni", "", "a"],
        share: 30,
    },
    Culture {
        given: &[
            "Mohammad",
            "Ahmad",
            "Mahmoud",
            "Khalid",
            "Omar",
            "Ali",
            "Hussein",
            "Yousef",
            "Ibrahim",
            "Abdullah",
            "Osama",
            "Fadi",
            "Rami",
            "Tariq",
            "Ziad",
            "Bassam",
            "Nasser",
            "Jamal",
            "Hani",
            "Samer",
            "Faisal",
            "Layla",
            "Rania",
            "Huda",
            "Noor",
            "Maryam",
            "Fatima",
            "Aisha",
            "Zainab",
            "Abdulrahman",
            "Suleiman",
            "Walid",
        ],
        family: &[
            "al-Ahmad",
            "al-Hassan",
            "al-Khatib",
            "Haddad",
            "Nasser",
            "Hamdan",
            "al-Masri",
            "al-Shami",
            "Khalil",
            "Darwish",
            "Saleh",
            "Yousef",
            "Mansour",
            "Najjar",
            "al-Hussein",
            "Abbas",
            "Othman",
            "al-Mohammad",
            "Qasim",
            "al-Tamimi",
            "al-Obaidi",
            "Hijazi",
            "Awad",
            "Aziz",
            "al-Zoubi",
            "Shaheen",
            "Barakat",
            "Khoury",
            "Sabbagh",
        ],
        countries: &["SY", "IQ", "JO", "LB", "SA", "EG"],
        prefix: &["al-", "Abu ", "", ""],
        suffix: &["i", "awi", "", "an"],
        share: 20,
    },
    Culture {
        given: &[
            "Mehmet",
            "Mustafa",
            "Ahmet",
            "Ali",
            "Hüseyin",
            "Hasan",
            "İbrahim",
            "İsmail",
            "Osman",
            "Yusuf",
            "Murat",
            "Ömer",
            "Ramazan",
            "Halil",
            "Süleyman",
            "Abdullah",
            "Emre",
            "Burak",
            "Gökhan",
            "Şükrü",
            "Çağlar",
            "Fatma",
            "Ayşe",
            "Emine",
            "Hatice",
            "Zeynep",
            "Elif",
            "Meryem",
            "Özlem",
            "Hülya",
        ],
        family: &[
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Çelik",
            "Yıldız",
            "Yıldırım",
            "Öztürk",
            "Aydın",
            "Özdemir",
            "Arslan",
            "Doğan",
            "Kılıç",
            "Aslan",
            "Çetin",
            "Kara",
            "Koç",
            "Kurt",
            "Özkan",
            "Şimşek",
            "Polat",
            "Erdoğan",
            "Korkmaz",
            "Güneş",
        ],
        countries: &["TR", "DE", "NL"],
        prefix: &["", "", "Kara", "Ak"],
        suffix: &["oğlu", "er", "can", "", "ay"],
        share: 15,
    },
    Culture {
        given: &[
            "Jean",
            "Pierre",
            "Michel",
            "Philippe",
            "Alain",
            "Nicolas",
            "Christophe",
            "David",
            "Julien",
            "Thomas",
            "Marie",
            "Nathalie",
            "Isabelle",
            "Sylvie",
            "Catherine",
            "Sophie",
            "Éric",
            "Frédéric",
            "Stéphane",
            "Céline",
            "Hélène",
            "Jérôme",
        ],
        family: &[
            "Martin",
            "Bernard",
            "Dubois",
            "Thomas",
            "Robert",
            "Richard",
            "Petit",
            "Durand",
            "Leroy",
            "Moreau",
            "Simon",
            "Laurent",
            "Lefebvre",
            "Michel",
            "Garcia",
            "David",
            "Bertrand",
            "Roux",
            "Vincent",
            "Fournier",
            "Morel",
            "Girard",
            "André",
            "Lefèvre",
            "Mercier",
            "Dupont",
            "Lambert",
            "Bonnet",
            "François",
            "Martinez",
        ],
        countries: &["FR", "BE", "CH"],
        prefix: &["", "", "Le ", "De "],
        suffix: &["ard", "ier", "on", "et", "eau"],
        share: 10,
    },
    Culture {
        given: &[
            "Александр",
            "Сергей",
            "Дмитрий",
            "Андрей",
            "Алексей",
            "Максим",
            "Евгений",
            "Иван",
            "Михаил",
            "Магомед",
            "Рамзан",
            "Ахмед",
            "Ислам",
            "Руслан",
            "Тимур",
            "Анна",
            "Елена",
            "Ольга",
            "Наталья",
            "Мария",
            "Джохар",
            "Тамерлан",
        ],
        family: &[
            "Иванов",
            "Смирнов",
            "Кузнецов",
            "Попов",
            "Васильев",
            "Петров",
            "Соколов",
            "Михайлов",
            "Новиков",
            "Фёдоров",
            "Морозов",
            "Волков",
            "Алексеев",
            "Лебедев",
            "Кадыров",
            "Умаров",
            "Басаев",
            "Магомедов",
            "Алиев",
            "Гаджиев",
            "Абдулаев",
            "Исмаилов",
        ],
        countries: &["RU", "UA", "BY", "KZ"],
        prefix: &[""],
        suffix: &["ov", "ev", "in", "enko", "aev"],
        share: 12,
    },
    Culture {
        given: &[
            "Muhammad", "Ali", "Ahmed", "Imran", "Asif", "Tariq", "Usman", "Bilal", "Faisal",
            "Zubair", "Hamza", "Ayesha", "Fatima", "Sana", "Amir", "Kashif", "Naveed", "Shahid",
            "Javed", "Sajid",
        ],
        family: &[
            "Khan", "Ahmed", "Hussain", "Shah", "Malik", "Butt", "Qureshi", "Chaudhry", "Iqbal",
            "Raza", "Siddiqui", "Sheikh", "Akhtar", "Mirza", "Baig", "Rana", "Ansari", "Javed",
        ],
        countries: &["PK", "IN", "GB", "AF"],
        prefix: &[""],
        suffix: &["i", "", "ani"],
        share: 8,
    },
    Culture {
        given: &[
            "John", "James", "Michael", "David", "Robert", "William", "Richard", "Thomas",
            "Daniel", "Paul", "Mary", "Sarah", "Emma", "Laura", "Jennifer",
        ],
        family: &[
            "Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Wilson",
            "Johnson", "Roberts", "Walker", "Wright", "Thompson", "White",
        ],
        countries: &["GB", "US", "IE", "AU"],
        prefix: &[""],
        suffix: &["son", "ton", "ley", "ford", ""],
        share: 5,
    },
];

fn pick_culture(rng: &mut Rng) -> &'static Culture {
    let total: u64 = CULTURES.iter().map(|c| c.share).sum();
    let mut r = rng.next() % total;
    for c in CULTURES {
        if r < c.share {
            return c;
        }
        r -= c.share;
    }
    &CULTURES[0]
}

fn tail_family(rng: &mut Rng, c: &Culture) -> String {
    let mut s = String::from(c.prefix[rng.below(c.prefix.len())]);
    let mut root = String::new();
    for _ in 0..2 + rng.below(2) {
        root.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
    }
    root.push_str(c.suffix[rng.below(c.suffix.len())]);
    let mut chars = root.chars();
    if let Some(first) = chars.next() {
        if s.is_empty() || s.ends_with(' ') || s.ends_with('-') {
            s.extend(first.to_uppercase());
        } else {
            s.push(first);
        }
        s.extend(chars);
    }
    s
}

/// A typo: two neighbouring letters swapped, or one letter dropped.
fn typo(rng: &mut Rng, name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if chars.len() < 5 {
        return name.to_string();
    }
    let i = 1 + rng.below(chars.len() - 2);
    if rng.chance(50) {
        chars.swap(i, i + 1);
    } else {
        chars.remove(i);
    }
    chars.into_iter().collect()
}

/// A variant of a written name as another list or an operator might write
/// it: family name first in capitals, diacritics dropped, a typo, or parts
/// joined with a hyphen.
pub fn variant(name: &str, seed: u64) -> String {
    let mut rng = Rng(seed ^ 0x5EED);
    let parts: Vec<&str> = name.split_whitespace().collect();
    match rng.below(4) {
        0 if parts.len() >= 2 => {
            let (last, rest) = parts.split_last().expect("two parts");
            format!("{} {}", last.to_uppercase(), rest.join(" "))
        }
        1 => crate::normalise::transliterate(name)
            .split_whitespace()
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
        2 => {
            let i = rng.below(parts.len().max(1));
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    if i == j {
                        typo(&mut rng, p)
                    } else {
                        p.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => parts.join("-"),
    }
}

fn person(rng: &mut Rng, key: u64) -> Candidate {
    let c = pick_culture(rng);
    let given = c.given[rng.zipf(c.given.len())];
    let family = if rng.chance(60) {
        c.family[rng.zipf(c.family.len())].to_string()
    } else {
        tail_family(rng, c)
    };
    let mut name = given.to_string();
    if rng.chance(25) {
        name.push(' ');
        name.push_str(c.given[rng.zipf(c.given.len())]);
    }
    name.push(' ');
    name.push_str(&family);
    // Cyrillic names are written in Cyrillic on some lists, transliterated on others.
    if c.countries[0] == "RU" && rng.chance(60) {
        name = crate::normalise::transliterate(&name)
            .split_whitespace()
            .map(|p| {
                let mut ch = p.chars();
                ch.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + ch.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut names = vec![name];
    if rng.chance(30) {
        let v = variant(&names[0], rng.next());
        names.push(v);
    }
    let dob = match rng.below(100) {
        0..65 => Some(Dob::Date {
            year: 1950 + rng.below(56) as u16,
            month: 1 + rng.below(12) as u8,
            day: 1 + rng.below(28) as u8,
        }),
        65..85 => Some(Dob::Year(1950 + rng.below(56) as u16)),
        _ => None,
    };
    let mut nationalities = vec![c.countries[rng.zipf(c.countries.len())].to_string()];
    if rng.chance(10) {
        let other = c.countries[rng.below(c.countries.len())].to_string();
        if other != nationalities[0] {
            nationalities.push(other);
        }
    }
    let mut documents = Vec::new();
    if rng.chance(60) {
        let letters: String = (0..2)
            .map(|_| (b'A' + rng.below(26) as u8) as char)
            .collect();
        documents.push(Document {
            kind: "passport".into(),
            number: format!("{letters}{:07}", rng.below(10_000_000)),
            country: Some(nationalities[0].clone()),
        });
    }
    let mut identifiers = Vec::new();
    if rng.chance(25) {
        identifiers.push(Identifier {
            kind: "phone".into(),
            value: format!("+{} {:09}", 30 + rng.below(70), rng.below(1_000_000_000)),
        });
    }
    Candidate {
        key,
        names,
        dob,
        nationalities,
        documents,
        identifiers,
        threshold: None,
    }
}

/// `n` synthetic candidates with keys `0..n`, the same for the same seed.
pub fn candidates(n: usize, seed: u64) -> Vec<Candidate> {
    stream(n, seed).collect()
}

/// The same candidates as [`candidates`], one at a time, so that an index
/// can be built without holding them all twice.
pub fn stream(n: usize, seed: u64) -> impl Iterator<Item = Candidate> {
    let mut rng = Rng(seed);
    (0..n as u64).map(move |key| person(&mut rng, key))
}

/// A query for a candidate as an operator might type it: a variant of one of
/// its names, its date of birth (sometimes), its nationality.
pub fn query_for(candidate: &Candidate, seed: u64) -> Query {
    let mut rng = Rng(seed);
    let name = &candidate.names[rng.below(candidate.names.len())];
    Query {
        names: vec![variant(name, rng.next())],
        dob: if rng.chance(70) { candidate.dob } else { None },
        nationalities: candidate.nationalities.iter().take(1).cloned().collect(),
        documents: Vec::new(),
        identifiers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_deterministic_and_skewed() {
        let a = candidates(2000, 7);
        assert_eq!(a, candidates(2000, 7));
        assert_ne!(a, candidates(2000, 8));
        let mohamed = a
            .iter()
            .filter(|c| c.names[0].starts_with("Mohamed "))
            .count();
        let driss = a
            .iter()
            .filter(|c| c.names[0].starts_with("Driss "))
            .count();
        assert!(
            mohamed > 5 * driss.max(1),
            "common given names repeat: {mohamed} vs {driss}"
        );
        assert!(
            a.iter()
                .any(|c| c.names[0].chars().any(|ch| ('а'..='я').contains(&ch)))
        );
    }
}
