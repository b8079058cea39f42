//! The crate's input and output types. They are its own: the node converts
//! watchlist entries into [`Candidate`]s and operator requests into
//! [`Query`]s, so this crate depends on neither.

use std::fmt;

/// A date of birth: a full date, or only the year when that is all a list
/// knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dob {
    /// A full date.
    Date {
        /// Year, e.g. 1985.
        year: u16,
        /// Month, 1 to 12.
        month: u8,
        /// Day, 1 to 31.
        day: u8,
    },
    /// Only the year.
    Year(u16),
}

impl Dob {
    /// The year, which every form has.
    pub fn year(&self) -> u16 {
        match *self {
            Dob::Date { year, .. } | Dob::Year(year) => year,
        }
    }
}

impl fmt::Display for Dob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dob::Date { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Dob::Year(year) => write!(f, "{year}"),
        }
    }
}

/// An identity document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Kind as the list writes it ("passport", "id-card"); shown, not matched.
    pub kind: String,
    /// The number as written; matched exactly after normalisation.
    pub number: String,
    /// Issuing country, ISO 3166 alpha-2, if known; when both sides give one
    /// they must agree.
    pub country: Option<String>,
}

/// Any other identifier: phone, e-mail, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier {
    /// Kind ("phone", "email", ...); identifiers match only within a kind.
    pub kind: String,
    /// Value as written; normalised by kind before matching.
    pub value: String,
}

/// What an [`crate::Index`] holds: one watchlist entry's identifying data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    /// The caller's key for the entry (the node maps it to owner and ref).
    pub key: u64,
    /// Primary name first, then aliases; as written, any script.
    pub names: Vec<String>,
    /// Date of birth, if known.
    pub dob: Option<Dob>,
    /// Nationalities, ISO 3166 alpha-2.
    pub nationalities: Vec<String>,
    /// Identity documents.
    pub documents: Vec<Document>,
    /// Other identifiers.
    pub identifiers: Vec<Identifier>,
    /// A threshold for this entry instead of [`Options::threshold`]: an owner
    /// may ask for more (or less) certainty for one entry.
    pub threshold: Option<f32>,
}

/// What is screened: the person in front of the operator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Names the person is known by, as written.
    pub names: Vec<String>,
    /// Date of birth, if known.
    pub dob: Option<Dob>,
    /// Nationalities, ISO 3166 alpha-2.
    pub nationalities: Vec<String>,
    /// Identity documents.
    pub documents: Vec<Document>,
    /// Other identifiers.
    pub identifiers: Vec<Identifier>,
}

/// How a screen is run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Score at or above which a match is a hit (unless the candidate
    /// overrides it).
    pub threshold: f32,
    /// Matches scoring below this are not returned at all.
    pub min_score: f32,
    /// At most this many matches are returned, best first.
    pub max_results: usize,
}

/// The default hit threshold, the one the labelled set is measured at.
pub const DEFAULT_THRESHOLD: f32 = 0.78;

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: DEFAULT_THRESHOLD,
            min_score: 0.6,
            max_results: 50,
        }
    }
}

/// How two name parts were found to be the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum How {
    /// Equal ignoring case.
    Exact,
    /// Equal after removing diacritics and transliterating to ASCII.
    Folded,
    /// Spellings of one name in the transliteration table, or equal
    /// consonant skeletons (a Latin spelling and an abjad one).
    Transliteration,
    /// Equal Double Metaphone codes.
    Phonetic,
    /// A small misspelling: Damerau-Levenshtein distance.
    Edit(u8),
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            How::Exact => f.write_str("exact"),
            How::Folded => f.write_str("folded"),
            How::Transliteration => f.write_str("transliteration"),
            How::Phonetic => f.write_str("phonetic"),
            How::Edit(d) => write!(f, "edit distance {d}"),
        }
    }
}

/// Why a candidate matched, one piece of evidence each.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// Name parts of the query matched name parts of the candidate.
    Name {
        /// The query's part(s), as written.
        query: String,
        /// The candidate's part(s), as written.
        candidate: String,
        /// How they matched.
        how: How,
    },
    /// A document number matched exactly after normalisation.
    Document {
        /// Kind of the candidate's document.
        kind: String,
        /// The normalised number.
        number: String,
    },
    /// An identifier matched exactly after normalisation.
    Identifier {
        /// Kind.
        kind: String,
        /// The normalised value.
        value: String,
    },
    /// The dates of birth agree (evidence for).
    DobAgrees(Dob),
    /// The dates of birth disagree (evidence against).
    DobDisagrees {
        /// The query's.
        query: Dob,
        /// The candidate's.
        candidate: Dob,
    },
    /// A nationality in common.
    NationalityAgrees(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Name {
                query,
                candidate,
                how,
            } => write!(f, "{query} ~ {candidate} ({how})"),
            Reason::Document { kind, number } => write!(f, "{kind} {number} matches"),
            Reason::Identifier { kind, value } => write!(f, "{kind} {value} matches"),
            Reason::DobAgrees(dob) => write!(f, "born {dob} agrees"),
            Reason::DobDisagrees { query, candidate } => {
                write!(f, "born {query} disagrees with {candidate}")
            }
            Reason::NationalityAgrees(c) => write!(f, "nationality {c} agrees"),
        }
    }
}

/// One candidate found by a screen.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The candidate's key.
    pub key: u64,
    /// Score in [0, 1].
    pub score: f32,
    /// Whether the match is a hit: at or above the threshold, and supported
    /// by more than one distinctive name part or by a document or identifier.
    pub hit: bool,
    /// The evidence, names first.
    pub reasons: Vec<Reason>,
}

/// The reasons of a match, joined with "; ".
pub struct Reasons<'a>(pub &'a [Reason]);

impl fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:.2}{}: {}",
            self.key,
            self.score,
            if self.hit { " HIT" } else { "" },
            Reasons(&self.reasons)
        )
    }
}
