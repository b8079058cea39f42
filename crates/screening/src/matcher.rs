//! Name-part features, name-part similarity and the alignment of two names.
//!
//! A name is a sequence of folded parts. Two names are aligned greedily: every
//! pairing of a query unit with a candidate unit (a unit is one part, or two
//! adjacent parts joined, or three when the middle one is the Arabic article,
//! so "Abd al-Hamid" meets "Abdelhamid") gets a similarity, and the pairings
//! with the most weight are kept while they do not overlap. The weight of a
//! part is its rarity in the index, so sharing a common part says little.

use std::hash::{Hash, Hasher};

use rphonetic::DoubleMetaphone;
use rustc_hash::FxHasher;

use crate::families;
use crate::normalise;
use crate::types::How;

/// Weight of a particle ("al", "bin", "de"): it is part of a name, but it
/// identifies no one.
pub(crate) const PARTICLE_WEIGHT: f32 = 0.3;

/// At most this many parts of a name are used (masks are `u32`).
pub(crate) const MAX_PARTS: usize = 16;

/// The features of one folded name part (or joined unit), computed once.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) folded: Box<str>,
    /// Hashes of the Double Metaphone primary and alternate codes (0: none).
    pub(crate) phon: [u64; 2],
    pub(crate) family: Option<u16>,
    /// What the quick rejection reads, packed; whether the part is a
    /// particle or an abjad spelling is kept there only.
    pub(crate) quick: Quick,
}

/// The features of a part that decide, without its text, whether it could
/// be alike another ([`Quick::might_be_alike`]), packed into 12 bytes: the
/// index keeps every part's in one array, by id, small enough to stay in
/// cache, so a screen (which compares about a thousand pairs of units, most
/// of them unalike) reads neither the part nor a memo for most pairs.
///
/// Packing loses nothing the rejection needs except exactness in a
/// direction that is safe: phonetic codes are cut to 16 bits (two codes that
/// differ may agree here) and lengths saturate at 255, so a pair it lets
/// through may still be unalike, and [`similarity`] decides those from the
/// text; a pair it rejects is unalike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quick {
    /// The set of its letters, one bit per byte `& 31`: two parts whose
    /// sets differ in more bits than a typo changes are not compared
    /// letter by letter.
    letters: u32,
    /// The top 16 bits of its phonetic codes' hashes (0: no code; a code
    /// whose top bits are 0 is 1 here).
    phon: [u16; 2],
    /// Its family, plus one (0: none).
    family: u16,
    /// Its length in bytes, at most 255.
    len: u8,
    /// [`Quick::ABJAD`], [`Quick::ABD`], [`Quick::PARTICLE`].
    flags: u8,
}

impl Quick {
    /// An abjad transliteration (see [`normalise::is_abjad`]).
    const ABJAD: u8 = 1;
    /// An "Abd-" prefix with a remainder.
    const ABD: u8 = 2;
    /// A particle: a name's weights need the flag, and the index's array
    /// has it without a read of the part.
    const PARTICLE: u8 = 4;

    fn of(folded: &str, phon: [u64; 2], family: Option<u16>, flags: [bool; 3]) -> Quick {
        let [abjad, abd, particle] = flags;
        let phon = phon.map(|p| if p == 0 { 0 } else { ((p >> 48) as u16).max(1) });
        Quick {
            letters: letters(folded),
            phon,
            // The table holds a few hundred families: none is `u16::MAX`.
            family: family.map_or(0, |f| f.saturating_add(1)),
            len: u8::try_from(folded.len()).unwrap_or(u8::MAX),
            flags: if abjad { Quick::ABJAD } else { 0 }
                | if abd { Quick::ABD } else { 0 }
                | if particle { Quick::PARTICLE } else { 0 },
        }
    }

    /// Whether the part is a particle.
    pub(crate) fn particle(self) -> bool {
        self.flags & Quick::PARTICLE != 0
    }

    /// Whether the part is an abjad transliteration.
    fn abjad(self) -> bool {
        self.flags & Quick::ABJAD != 0
    }

    /// Whether [`similarity`] could find two parts alike, from these
    /// features alone. Only the edit-distance rule is decided here; every
    /// other rule that could apply sends the pair on. A letter in one part's
    /// set and not the other's is at least one letter apart, so the set
    /// difference bounds the edit distance from below.
    pub(crate) fn might_be_alike(self, b: Quick) -> bool {
        let a = self;
        if (a.family != 0 && a.family == b.family)
            || (a.flags | b.flags) & Quick::ABJAD != 0
            || a.flags & b.flags & Quick::ABD != 0
            || a.phon.iter().any(|&p| p != 0 && b.phon.contains(&p))
        {
            return true;
        }
        let (la, lb) = (usize::from(a.len), usize::from(b.len));
        let apart = (a.letters ^ b.letters).count_ones() as usize;
        if la == lb && apart == 0 {
            // Perhaps equal.
            return true;
        }
        let short = la.min(lb);
        let allowed = if short >= 8 { 2 } else { 1 };
        la.abs_diff(lb) <= 2 && short >= 4 && apart.div_ceil(2) <= allowed
    }
}

/// A stable hash of a tagged key, for the index's posting lists.
pub(crate) fn key<T: Hash>(tag: u8, value: T) -> u64 {
    let mut h = FxHasher::default();
    tag.hash(&mut h);
    value.hash(&mut h);
    // FxHasher's low bits are weak; the posting map hashes again anyway.
    h.finish()
}

impl Part {
    /// Features of a folded part.
    pub(crate) fn new(folded: &str) -> Part {
        // Codes of 6 keep "Abdeslam" and "Abdelhamid" apart (4 do not).
        // A German spelling of a Russian name sounds as its English one.
        let dm = DoubleMetaphone::new(Some(6)).double_metaphone(&slavic_v(folded));
        let code = |c: String| if c.is_empty() { 0 } else { key(b'p', c) };
        let primary = code(dm.primary());
        let mut alternate = code(dm.alternate());
        if alternate == primary {
            alternate = 0;
        }
        let phon = [primary, alternate];
        let family = families::family(folded);
        let abjad = normalise::is_abjad(folded);
        let abd = abd_rest(folded).is_some();
        let particle = families::is_particle(folded);
        Part {
            folded: folded.into(),
            phon,
            family,
            quick: Quick::of(folded, phon, family, [abjad, abd, particle]),
        }
    }

    /// Whether the part is a particle ("al", "bin", "de").
    pub(crate) fn particle(&self) -> bool {
        self.quick.particle()
    }

    /// Keys under which the index files a name holding this part, and under
    /// which a query looks: folded form, skeleton, phonetic codes, family.
    pub(crate) fn single_keys(&self, out: &mut Vec<u64>) {
        if self.particle() {
            return;
        }
        out.push(key(b'f', &*self.folded));
        // The skeleton is not kept (a part is compared by it only against
        // an abjad spelling, rarely): it is made again when needed.
        let skeleton = normalise::skeleton(&self.folded);
        if skeleton.len() >= 2 {
            out.push(key(b's', &skeleton));
        }
        out.extend(self.phon.iter().copied().filter(|&p| p != 0));
        if let Some(f) = self.family {
            out.push(key(b'F', f));
        }
    }

    /// The one coarse key of this part used in pair keys: its family, else
    /// its primary phonetic code, else its folded form.
    pub(crate) fn coarse(&self) -> u64 {
        match self.family {
            Some(f) => key(b'F', f),
            None if self.phon[0] != 0 => self.phon[0],
            None => key(b'f', &*self.folded),
        }
    }

    /// Every coarse key a variant spelling of this part might have (query
    /// side: the index stores one, the query tries these).
    pub(crate) fn coarse_alternatives(&self, out: &mut Vec<u64>) {
        out.push(self.coarse());
        for p in self.phon {
            if p != 0 && !out.contains(&p) {
                out.push(p);
            }
        }
    }
}

/// The key of an unordered pair of coarse keys.
pub(crate) fn pair_key(a: u64, b: u64) -> u64 {
    key(b'P', (a.min(b), a.max(b)))
}

/// The letter set of a part (see [`Quick::letters`]).
fn letters(folded: &str) -> u32 {
    folded.bytes().fold(0, |m, c| m | 1 << (c & 31))
}

/// How similar two parts are, if they are alike at all.
pub(crate) fn similarity(a: &Part, b: &Part) -> Option<(f32, How)> {
    if !a.quick.might_be_alike(b.quick) {
        return None;
    }
    similar_text(a, b)
}

/// [`similarity`] without the quick rejection: reads both parts' text.
fn similar_text(a: &Part, b: &Part) -> Option<(f32, How)> {
    if a.folded == b.folded {
        return Some((1.0, How::Folded));
    }
    if a.family.is_some() && a.family == b.family {
        return Some((0.95, How::Transliteration));
    }
    // German writes the Cyrillic "в" as w: Wolkow, Iwanow.
    if (german_slavic(&a.folded) || german_slavic(&b.folded))
        && slavic_v(&a.folded) == slavic_v(&b.folded)
    {
        return Some((0.95, How::Transliteration));
    }
    // A Latin spelling against an abjad transliteration (Arabic script has no
    // short vowels): compare consonants. Only then, since "Hassan" and
    // "Hussein" share consonants and are different names.
    if (a.quick.abjad() || b.quick.abjad()) && {
        let skeleton = normalise::skeleton(&a.folded);
        skeleton.len() >= 2 && skeleton == normalise::skeleton(&b.folded)
    } {
        return Some((0.9, How::Transliteration));
    }
    // "Abdel-" names differ in what follows the prefix ("Abdelhamid",
    // "Abdelmajid"), and the prefix itself is spelled many ways.
    let (fa, fb) = match (abd_rest(&a.folded), abd_rest(&b.folded)) {
        (Some(ra), Some(rb)) if ra == rb => return Some((0.95, How::Transliteration)),
        (Some(ra), Some(rb)) => (ra, rb),
        _ => (&*a.folded, &*b.folded),
    };
    let sounds_alike = a.phon.iter().any(|&p| p != 0 && b.phon.contains(&p));
    let (la, lb) = (fa.len(), fb.len());
    let short = la.min(lb);
    let whole = a.folded.len().min(b.folded.len());
    if la.abs_diff(lb) <= 2 && short >= 4 {
        let allowed = if short >= 8 { 2 } else { 1 };
        // Letters that one side has and the other lacks bound the distance
        // from below; most pairs stop here, before the distance itself.
        let mut counts = [0i16; 128];
        fa.bytes().for_each(|c| {
            counts[usize::from(c & 127)] = counts[usize::from(c & 127)].saturating_add(1)
        });
        fb.bytes().for_each(|c| {
            counts[usize::from(c & 127)] = counts[usize::from(c & 127)].saturating_sub(1)
        });
        let apart: u32 = counts.iter().map(|c| u32::from(c.unsigned_abs())).sum();
        let d = if apart.div_ceil(2) as usize > allowed {
            allowed + 1
        } else {
            strsim::osa_distance(fa, fb)
        };
        // One letter in a short part changes the name as often as it
        // misspells it ("Kaya" and "Kara"): then the sound must agree too.
        if d <= allowed && (whole >= 6 || sounds_alike) && !changes_name(fa, fb, d) {
            // One vowel for another in a long part is how transliterations
            // differ (Arabic script writes no short vowels: Mostefai,
            // Mostafai) more often than a typo: it costs less.
            let sim = if d == 1 && whole >= 6 && one_vowel_for_another(fa, fb) {
                0.92
            } else {
                0.95 - 0.5 * d as f32 / la.max(lb) as f32
            };
            return Some((sim, How::Edit(d as u8)));
        }
    }
    // Same sound, and close in writing too: codes alone join names that
    // differ in their vowels ("Hassan" and "Hussein": HSN), and codes are cut
    // at six letters, so the lengths must be close as well.
    let (la, lb) = (a.folded.len(), b.folded.len());
    let close_length = la.abs_diff(lb) * 10 <= 3 * la.max(lb) || la.abs_diff(lb) <= 2;
    if sounds_alike
        && la.min(lb) >= 3
        && la.max(lb) <= 10
        && close_length
        && strsim::jaro_winkler(&a.folded, &b.folded) >= 0.8
        // In the v form, since the codes are of it ("Ivanow", "Ivanova").
        && !changes_name(&slavic_v(&a.folded), &slavic_v(&b.folded), 1)
    {
        return Some((0.85, How::Phonetic));
    }
    None
}

/// Whether a folded part looks like the German transliteration of a
/// Russian family name: an -ow or -ew ending (-owa, -ewa for a woman), in a
/// part long enough not to be an English word ("Snow").
fn german_slavic(part: &str) -> bool {
    part.len() >= 5 && ["ow", "ew", "owa", "ewa"].iter().any(|e| part.ends_with(e))
}

/// The part with German w for Cyrillic "в" written v, when it looks like a
/// German transliteration; else the part itself.
fn slavic_v(part: &str) -> std::borrow::Cow<'_, str> {
    if german_slavic(part) {
        part.replace('w', "v").into()
    } else {
        part.into()
    }
}

/// What follows an "Abd" prefix ("abdel", "abdul", "abd al" joined, ...).
fn abd_rest(part: &str) -> Option<&str> {
    let rest = part.strip_prefix("abd")?;
    let rest = ["oul", "el", "ul", "al", "ol", "il", "ou"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .unwrap_or(rest);
    (rest.len() >= 3).then_some(rest)
}

/// Whether a one-letter difference is one that makes another name rather
/// than a misspelling: an added final "a" or "i" (a feminine form, "Samir"
/// and "Samira"; a family name of origin, "Mansour" and "Mansouri"), or, in a
/// short part, one vowel for another ("Omar" and "Amar", "Salah" and "Saleh").
fn changes_name(a: &str, b: &str, d: usize) -> bool {
    if d != 1 {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() == short.len() + 1
        && long.starts_with(short)
        && (long.ends_with('a') || long.ends_with('i'))
    {
        return true;
    }
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    if a.len() == b.len() && a.len() < 6 {
        let diffs: Vec<(u8, u8)> = a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).collect();
        if let [(x, y)] = diffs[..] {
            return vowel(x) && vowel(y);
        }
    }
    false
}

/// Whether two parts of one length differ in one letter, a vowel for a
/// vowel.
fn one_vowel_for_another(a: &str, b: &str) -> bool {
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    a.len() == b.len() && {
        let mut diffs = a.bytes().zip(b.bytes()).filter(|(x, y)| x != y);
        matches!((diffs.next(), diffs.next()), (Some((x, y)), None) if vowel(x) && vowel(y))
    }
}

/// A unit of a name: `len` parts from `start`, joined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: u8,
    pub(crate) len: u8,
}

impl Span {
    pub(crate) fn mask(self) -> u32 {
        ((1u32 << self.len) - 1) << self.start
    }
}

/// The joined units of a name of folded parts: adjacent pairs, and triples
/// whose middle part is the Arabic article.
pub(crate) fn joined_units(parts: &[&str]) -> Vec<(Span, String)> {
    let mut out = Vec::new();
    for i in 0..parts.len().saturating_sub(1) {
        out.push((
            Span {
                start: i as u8,
                len: 2,
            },
            format!("{}{}", parts[i], parts[i + 1]),
        ));
        if i + 2 < parts.len() && families::is_article(parts[i + 1]) {
            out.push((
                Span {
                    start: i as u8,
                    len: 3,
                },
                format!("{}{}{}", parts[i], parts[i + 1], parts[i + 2]),
            ));
        }
    }
    out
}

/// One pairing kept by the alignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pairing {
    pub(crate) query: Span,
    pub(crate) candidate: Span,
    pub(crate) sim: f32,
    pub(crate) how: How,
}

/// The result of aligning two names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Alignment {
    /// Name score in [0, 1].
    pub(crate) score: f32,
    /// Distinctive (non-particle) parts matched, counted on the side with
    /// fewer in each pairing.
    pub(crate) distinctive: u8,
}

/// One name as the alignment sees it.
#[derive(Clone, Copy)]
pub(crate) struct Side<'a> {
    /// Every unit: single parts and joined ones.
    pub(crate) units: &'a [Span],
    /// Weight of each part.
    pub(crate) weights: &'a [f32],
    /// Mask of the parts that are particles.
    pub(crate) particles: u32,
}

/// Align a query name with a candidate name.
///
/// Each side lists every unit (single parts and joined ones) with
/// its span; `sim(qi, ci)` gives the similarity of query unit `qi` and
/// candidate unit `ci` (memoised by the caller). Weights are per part. The
/// pairings kept go to `pairings` when the caller wants them (for reasons).
pub(crate) fn align(
    q: Side<'_>,
    c: Side<'_>,
    mut sim: impl FnMut(usize, usize) -> Option<(f32, How)>,
    scratch: &mut Vec<(f32, Pairing)>,
    mut pairings: Option<&mut Vec<Pairing>>,
) -> Alignment {
    let Side {
        units: units_q,
        weights: weights_q,
        particles: particles_q,
    } = q;
    let Side {
        units: units_c,
        weights: weights_c,
        particles: particles_c,
    } = c;
    scratch.clear();
    // Sum of the weights of the parts in a mask, visiting set bits only.
    let wsum = |w: &[f32], mut m: u32| {
        let mut sum = 0.0;
        while m != 0 {
            sum += w.get(m.trailing_zeros() as usize).copied().unwrap_or(0.0);
            m &= m - 1;
        }
        sum
    };
    for (qi, &qs) in units_q.iter().enumerate() {
        for (ci, &cs) in units_c.iter().enumerate() {
            // Joined units meet a single part ("Abdel Hamid" and
            // "Abdelhamid"), or a joined pair meets an article triple ("Abdel
            // Malik" and "Abd al-Malik"); two joined pairs would let a whole
            // name pass for one part and hide a difference in either.
            if qs.len > 1 && cs.len > 1 && qs.len == cs.len {
                continue;
            }
            let joined = qs.len > 1 || cs.len > 1;
            if let Some((s, how)) =
                sim(qi, ci).filter(|&(_, how)| !(joined && matches!(how, How::Edit(d) if d > 1)))
            {
                let gain = s * (wsum(weights_q, qs.mask()) + wsum(weights_c, cs.mask()));
                scratch.push((
                    gain,
                    Pairing {
                        query: qs,
                        candidate: cs,
                        sim: s,
                        how,
                    },
                ));
            }
        }
    }
    scratch.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_q, mut used_c) = (0u32, 0u32);
    let (mut cov_q, mut cov_c) = (0f32, 0f32);
    let mut out = Alignment::default();
    for &(_, p) in scratch.iter() {
        let (mq, mc) = (p.query.mask(), p.candidate.mask());
        if used_q & mq != 0 || used_c & mc != 0 {
            continue;
        }
        used_q |= mq;
        used_c |= mc;
        cov_q += p.sim * wsum(weights_q, mq);
        cov_c += p.sim * wsum(weights_c, mc);
        // A joined unit can stand for two parts ("Abdel Hamid"): count the
        // distinctive parts it covers on the side that has fewer.
        let dq = (mq & !particles_q).count_ones();
        let dc = (mc & !particles_c).count_ones();
        out.distinctive = out.distinctive.saturating_add(dq.min(dc) as u8);
        if let Some(kept) = pairings.as_deref_mut() {
            kept.push(p);
        }
    }
    let all_q = (1u32 << weights_q.len()) - 1;
    let all_c = (1u32 << weights_c.len()) - 1;
    let (tq, tc) = (wsum(weights_q, all_q), wsum(weights_c, all_c));
    if tq <= 0.0 || tc <= 0.0 {
        return out;
    }
    let (cov_q, cov_c) = (cov_q / tq, cov_c / tc);
    // Parts left over on both sides are evidence against (a different given
    // name); parts left over on one side only are a missing middle name.
    let left_q = wsum(weights_q, all_q & !used_q & !particles_q) / tq;
    let left_c = wsum(weights_c, all_c & !used_c & !particles_c) / tc;
    out.score = ((cov_q + cov_c) / 2.0 - 0.5 * left_q.min(left_c)).clamp(0.0, 1.0);
    if let Some(kept) = pairings {
        kept.sort_by_key(|p| p.query.start);
    }
    out
}

/// The weight of a part seen in `df` of `n` candidates (inverse document
/// frequency, plus one so that a small index still weighs every part).
pub(crate) fn weight(particle: bool, df: u32, n: usize) -> f32 {
    if particle {
        PARTICLE_WEIGHT
    } else {
        ((n as f32 + 1.0) / (df as f32 + 1.0)).ln().max(0.0) + 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(a: &str, b: &str) -> Option<(f32, How)> {
        similarity(&Part::new(a), &Part::new(b))
    }

    #[test]
    fn similarity_kinds() {
        assert_eq!(sim("omar", "omar").map(|s| s.1), Some(How::Folded));
        assert_eq!(
            sim("mohamed", "mehmet").map(|s| s.1),
            Some(How::Transliteration)
        );
        assert_eq!(
            sim("bwd", "abaaoud").map(|s| s.1),
            Some(How::Transliteration)
        );
        assert_eq!(sim("abaaoud", "abaoud").map(|s| s.1), Some(How::Edit(1)));
        assert_eq!(sim("abuud", "abaaoud").map(|s| s.1), Some(How::Phonetic));
        assert_eq!(sim("hassan", "hussein"), None);
        assert_eq!(sim("abrini", "amri"), None);
        assert_eq!(
            sim("abdelhamid", "abdulhamid").map(|s| s.1),
            Some(How::Transliteration)
        );
        assert_eq!(sim("abdelhamid", "abdelmajid"), None);
        assert_eq!(sim("samir", "samira"), None);
        assert_eq!(sim("mansour", "mansouri"), None);
        assert_eq!(sim("omar", "amar"), None);
        assert_eq!(sim("salah", "saleh"), None);
        assert_eq!(sim("mostefai", "mostafai").map(|s| s.1), Some(How::Edit(1)));
        assert_eq!(
            sim("abdelhamidabaaoud", "abdelhamid"),
            None,
            "codes are cut at six letters"
        );
    }

    #[test]
    fn german_w_and_long_part_vowels() {
        assert_eq!(
            sim("wolkow", "volkov").map(|s| s.1),
            Some(How::Transliteration)
        );
        assert!(sim("iwanowa", "ivanova").is_some());
        assert!(sim("ivanow", "ivanov").is_some());
        // Still a different form of the name, in either spelling.
        assert_eq!(sim("ivanova", "ivanow"), None);
        assert_eq!(sim("petrowa", "petrow"), None);
        // One vowel for another costs less in a long part than a typo.
        let vowel = sim("mostefai", "mostafai").expect("alike").0;
        let typo = sim("mostefai", "mostegai").expect("alike").0;
        assert!(vowel > typo, "{vowel} > {typo}");
    }

    #[test]
    fn quick_rejection_keeps_every_alike_pair() {
        // Parts of realistic names, their typed variants and the labelled
        // set's names: every pair the full comparison finds alike must
        // pass the quick rejection.
        let mut names: Vec<String> = crate::synthetic::candidates(300, 7)
            .into_iter()
            .flat_map(|c| c.names)
            .collect();
        let variants: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| crate::synthetic::variant(n, i as u64))
            .collect();
        names.extend(variants);
        let pairs = include_str!("../data/name_pairs.tsv");
        names.extend(
            pairs
                .lines()
                .flat_map(|l| l.split('\t').take(2))
                .map(str::to_owned),
        );
        let mut parts: Vec<String> = names.iter().flat_map(|n| normalise::parts(n)).collect();
        for n in &names {
            let folded = normalise::parts(n);
            let refs: Vec<&str> = folded.iter().map(String::as_str).collect();
            parts.extend(joined_units(&refs).into_iter().map(|(_, t)| t));
        }
        parts.sort();
        parts.dedup();
        let parts: Vec<Part> = parts.iter().map(|p| Part::new(p)).collect();
        let (mut alike, mut rejected) = (0, 0);
        for a in &parts {
            for b in &parts {
                let full = similar_text(a, b);
                if full.is_some() {
                    alike += 1;
                    assert!(
                        a.quick.might_be_alike(b.quick),
                        "{} ~ {}",
                        a.folded,
                        b.folded
                    );
                } else if !a.quick.might_be_alike(b.quick) {
                    rejected += 1;
                }
            }
        }
        assert!(alike > parts.len(), "the sample has alike pairs: {alike}");
        assert!(rejected > 0, "the quick rejection rejects something");
    }

    #[test]
    fn the_packed_rejection_lets_long_parts_through() {
        // Lengths saturate at 255 in the packing (a wrapped 256 would be
        // 0): parts of 255 and 256 bytes, one letter apart, must still
        // reach the full comparison.
        // The letter is added in front, so that their phonetic codes (of
        // the first six letters) differ and only the lengths let them on.
        let long: String = "abdelkarimo".repeat(21) + "abdelkarimoabdelkarimoss";
        let typo = format!("k{long}");
        assert_eq!((long.len(), typo.len()), (255, 256));
        let (a, b) = (Part::new(&long), Part::new(&typo));
        assert!(a.phon.iter().all(|&p| p == 0 || !b.phon.contains(&p)));
        assert!(a.quick.might_be_alike(b.quick));
        assert_eq!(similarity(&a, &b).map(|s| s.1), Some(How::Edit(1)));
        // And a short part is still turned away from a long one.
        assert!(!Part::new("omar").quick.might_be_alike(a.quick));
    }

    #[test]
    fn joined_units_cover_pairs_and_article_triples() {
        let u = joined_units(&["abd", "al", "hamid"]);
        let texts: Vec<&str> = u.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["abdal", "abdalhamid", "alhamid"]);
    }

    #[test]
    fn weights_favour_rare_parts() {
        assert!(weight(false, 1, 1000) > weight(false, 300, 1000));
        assert_eq!(weight(true, 1, 1000), PARTICLE_WEIGHT);
        assert!(weight(false, 1000, 1000) >= 1.0);
    }
}
