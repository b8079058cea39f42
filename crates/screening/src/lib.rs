//! Screening a person against watchlist entries: name matching and its
//! index, as a pure library with no I/O.
//!
//! The node (issue 15) converts its partners' watchlist entries into
//! [`Candidate`]s keyed by an opaque `u64`, keeps an [`Index`] of them current
//! with [`Index::insert`] and [`Index::remove`] as entries change, and answers
//! an operator's screen with [`Index::screen`], which returns [`Match`]es with a
//! score in [0, 1], a hit flag and structured [`Reason`]s.
//!
//! # Method
//!
//! Names are written in many ways: in other scripts, with or without
//! diacritics, in any order, with parts joined or split, in the several Latin
//! transliterations of one Arabic, Turkish or Russian name, and with typos.
//! So a name is first **normalised** ([`normalise`]: NFKC and lower case with
//! `unicode-normalization`, any script to ASCII with `any_ascii`, split into
//! parts), and each part gets **features** computed once per distinct part:
//! its folded form, its consonant skeleton, its Double Metaphone codes
//! (`rphonetic`) and its transliteration family (a table of known spellings
//! of one name, [`families`], data not code).
//!
//! Two parts are alike ([`How`]) when they are equal after folding, share a
//! family, have equal skeletons with one side an abjad transliteration
//! (Arabic script writes no short vowels), are within a small
//! Damerau-Levenshtein distance (`strsim`), or share a phonetic code and look
//! alike. Two **names** are aligned part by part, order ignored, also pairing
//! two adjacent parts joined with one ("Abdel-Hamid" / "Abdelhamid"); each part
//! weighs by its rarity in the index (an IDF), so sharing "Mohamed" says
//! little and sharing "Abaaoud" much. The name score averages the weighted
//! coverage of both names and subtracts for parts left over on *both* sides (a
//! different given name), but not for a middle name missing on one side.
//!
//! A date of birth adds or subtracts a little; so does a shared nationality;
//! neither is ever a match alone. A document or identifier equal after
//! normalisation is a hit. Otherwise a hit needs the score at the threshold
//! (the candidate's own, or [`Options::threshold`]) **and** two distinctive
//! name parts matched: one common part is never a hit.
//!
//! # Scale
//!
//! No screen scans the index. Each distinct name is filed under blocking keys
//! (folded form, skeleton, phonetic codes and family of each part; and a key
//! for each *pair* of parts' coarse codes); candidates sharing a name share
//! its lists. A screen reads the lists of its own keys, shortest first, skips
//! the single-part lists of common parts (pairs find those), caps how many
//! names it scores, and scores each distinct name once. [`synthetic`] makes
//! realistic candidates for the `scale` example.
#![forbid(unsafe_code)]

pub mod families;
mod index;
mod matcher;
pub mod normalise;
mod prefetch;
pub mod synthetic;
mod types;

pub use index::{Index, Page};
pub use types::{
    Candidate, DEFAULT_THRESHOLD, Dob, Document, How, Identifier, Match, Options, Query, Reason,
    Reasons,
};
