//! The index: interned name parts and names, posting lists of blocking keys,
//! and the screen that generates candidates from them and scores them.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::matcher::{self, Alignment, MAX_PARTS, Pairing, Part, Quick, Side, Span, key, pair_key};
use crate::normalise;
use crate::prefetch::{prefetch, prefetch_first};
use crate::types::{Candidate, Dob, How, Match, Options, Query, Reason};

/// Posting lists longer than this are not read for a single part: a part
/// that common ("Mohamed") finds candidates only together with another part,
/// through the pair keys.
const SINGLE_CAP: usize = 64;
/// At most this many names of one pair posting list are read.
const PAIR_CAP: usize = 1_000;
/// At most this many distinct names are scored in one screen.
const MAX_NAMES: usize = 2_000;
/// How many names ahead a screen asks for the record of a name it will
/// score, for its units, and for its parts' quick features: each stage
/// reads what the one before brought into cache (see [`prefetch`]).
const FETCH_NAME: usize = 12;
const FETCH_UNITS: usize = 6;
const FETCH_PARTS: usize = 3;
/// How many candidates ahead a screen asks for the entry of a match it
/// will return, and for the names written in it.
const FETCH_ENTRY: usize = 4;
const FETCH_WRITTEN: usize = 2;
/// Names read from other lists once the signature's are in, roughly.
const BUDGET: usize = 100;

/// Posting lists (of name ids, or of slots for documents): most keys have
/// one id (rare parts, document numbers), so a key holds its id in place and
/// points to a list only once it has two.
#[derive(Debug, Default)]
struct Postings {
    /// Key to a name id, or (with [`LIST`] set) to an index in `lists`.
    map: FxHashMap<u64, u32>,
    lists: Vec<Vec<u32>>,
}

/// The bit that marks a [`Postings`] value as a list index.
const LIST: u32 = 1 << 31;

impl Postings {
    fn push(&mut self, key: u64, id: u32) {
        debug_assert!(id < LIST);
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let v = *o.get();
                if v & LIST != 0 {
                    self.lists[(v & !LIST) as usize].push(id);
                } else {
                    self.lists.push(vec![v, id]);
                    *o.get_mut() = LIST | (self.lists.len() - 1) as u32;
                }
            }
        }
    }

    fn remove(&mut self, key: u64, id: u32) {
        let Some(&v) = self.map.get(&key) else { return };
        if v & LIST == 0 {
            if v == id {
                self.map.remove(&key);
            }
            return;
        }
        let list = &mut self.lists[(v & !LIST) as usize];
        list.retain(|&x| x != id);
        if list.is_empty() {
            // Its slot in `lists` stays (24 bytes) until a rebuild; its
            // buffer goes.
            *list = Vec::new();
            self.map.remove(&key);
        }
    }

    fn get(&self, key: u64) -> Option<&[u32]> {
        let v = self.map.get(&key)?;
        Some(if v & LIST != 0 {
            &self.lists[(v & !LIST) as usize]
        } else {
            std::slice::from_ref(v)
        })
    }
}

/// A distinct name (as a sequence of interned parts) shared by candidates.
#[derive(Debug)]
struct Name {
    /// The ids of its parts, then of its joined units, then the joined
    /// units' spans (`start | len << 8`): a screen reads a scored name
    /// whole, and one allocation is one cache miss instead of two.
    units: Box<[u32]>,
    /// How many of `units` are parts.
    len: u8,
    /// The live candidates with this name.
    members: Vec<Member>,
}

impl Name {
    fn new(parts: &[u32], joined: &[(Span, u32)]) -> Name {
        let mut units = Vec::with_capacity(parts.len() + 2 * joined.len());
        units.extend_from_slice(parts);
        units.extend(joined.iter().map(|&(_, id)| id));
        units.extend(
            joined
                .iter()
                .map(|&(s, _)| u32::from(s.start) | u32::from(s.len) << 8),
        );
        Name {
            units: units.into(),
            len: parts.len() as u8,
            members: Vec::new(),
        }
    }

    fn parts(&self) -> &[u32] {
        &self.units[..usize::from(self.len)]
    }

    /// The interned parts of its units: its parts, then its joined units.
    fn unit_ids(&self) -> &[u32] {
        let joined = (self.units.len() - usize::from(self.len)) / 2;
        &self.units[..self.units.len() - joined]
    }

    /// Joined units: span and interned part.
    fn joined(&self) -> impl Iterator<Item = (Span, u32)> + '_ {
        let rest = &self.units[usize::from(self.len)..];
        let (ids, spans) = rest.split_at(rest.len() / 2);
        ids.iter().zip(spans).map(|(&id, &s)| {
            (
                Span {
                    start: s as u8,
                    len: (s >> 8) as u8,
                },
                id,
            )
        })
    }
}

/// A candidate as its name's member list keeps it: what ranking it needs,
/// in place, so that a screen reading a common name's thousands of
/// namesakes (to find the one whose date of birth agrees) reads one
/// contiguous list instead of one scattered [`Entry`] each.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: u64,
    slot: u32,
    dob: Option<Dob>,
    /// The first two nationalities (`[0, 0]` for none).
    nationalities: [[u8; 2]; 2],
    /// More than two nationalities, or a threshold of its own: rare, so
    /// the entry is read instead and the member stays 24 bytes.
    special: bool,
}

// A million candidates have more than a million memberships.
const _: () = assert!(std::mem::size_of::<Member>() == 24);

impl Member {
    fn new(key: u64, slot: u32, e: &Entry) -> Member {
        let mut nationalities = [[0; 2]; 2];
        for (n, c) in nationalities.iter_mut().zip(e.nationalities.iter()) {
            *n = *c;
        }
        Member {
            key,
            slot,
            dob: e.dob,
            nationalities,
            special: e.nationalities.len() > 2 || e.threshold.is_some(),
        }
    }

    fn nationalities(&self) -> &[[u8; 2]] {
        let n = self
            .nationalities
            .iter()
            .take_while(|n| **n != [0; 2])
            .count();
        &self.nationalities[..n]
    }
}

/// A document as the index keeps it.
#[derive(Debug)]
struct StoredDocument {
    kind: Box<str>,
    /// Normalised number.
    number: Box<str>,
    country: Option<[u8; 2]>,
}

/// Buffers reused across the alignments of one screen.
#[derive(Default)]
struct Scratch {
    options: Vec<(f32, Pairing)>,
    units: Vec<Span>,
    ids: Vec<u32>,
    weights: Vec<f32>,
    /// Weight by part id: namesakes and near-namesakes share parts, and
    /// reading each part's frequency again for every name costs a cache
    /// miss.
    part_weights: FxHashMap<u32, f32>,
}

/// Similarities already computed in one screen, by query unit (high half)
/// and part id (low half).
type Memo = FxHashMap<u64, Option<(f32, How)>>;

/// Room for the similarities a screen computes for one query name: a few
/// dozen on the synthetic million once the quick rejection has turned most
/// pairs away (about 36 of 1,200), so the memo is rarely grown as it fills.
const MEMO_CAPACITY: usize = 128;

/// Room for the names a screen reads and the candidates it ranks (about 65
/// and 150 on the synthetic million): the sets start large enough that a
/// screen does not rehash them as they fill.
const SET_CAPACITY: usize = 256;

#[derive(Debug)]
struct Entry {
    key: u64,
    /// Name ids.
    names: Box<[u32]>,
    /// The names as written, in the order of `names`, joined by
    /// [`NAME_SEPARATOR`] (one allocation instead of one per name).
    written: Box<str>,
    dob: Option<Dob>,
    nationalities: Box<[[u8; 2]]>,
    documents: Box<[StoredDocument]>,
    /// Normalised kind and value.
    identifiers: Box<[(Box<str>, Box<str>)]>,
    threshold: Option<f32>,
}

/// The most that an agreeing date of birth adds to a name's score.
const DOB_BONUS: f32 = 0.06;
/// What a shared nationality adds.
const NATIONALITY_BONUS: f32 = 0.02;

/// A candidate found by a screen, with the name alignment it matched by
/// (score, distinctive parts, query name, name id) and its rank: the score
/// before it is capped at 1, so that evidence still orders namesakes whose
/// names match exactly; and its slot.
type Found = (Match, Option<(f32, u8, usize, u32)>, f32, u32);

/// Separates the written names of an entry.
const NAME_SEPARATOR: char = '\u{1f}';

/// A watchlist index: build it from candidates, keep it current with
/// [`Index::insert`] and [`Index::remove`], and [`Index::screen`] queries
/// against it.
///
/// Names are interned, so candidates that share a name share its posting
/// lists and its score in a screen. A name whose last candidate is removed
/// is dropped from its posting lists and its id used again; its parts stay
/// interned (shared and small) until the index is rebuilt.
#[derive(Debug, Default)]
pub struct Index {
    parts: Vec<Part>,
    /// Each part's [`Quick`] features, by id: a screen compares a thousand
    /// pairs of units, most of them unalike, and this array is small enough
    /// to stay in cache where the parts are not.
    quick: Vec<Quick>,
    /// Hash of a folded part to its id (the part itself holds the text, so
    /// the map does not keep a second copy); parts whose hash collides
    /// with another's go to `part_collisions`.
    part_ids: FxHashMap<u64, u32>,
    part_collisions: FxHashMap<Box<str>, u32>,
    /// Number of live candidates with the part in any of their names.
    df: Vec<u32>,
    names: Vec<Name>,
    /// Ids of names freed by [`Index::remove`], to be used again.
    free_names: Vec<u32>,
    /// Hash of a name's part ids to its id, collisions as for parts.
    name_ids: FxHashMap<u64, u32>,
    name_collisions: FxHashMap<Box<[u32]>, u32>,
    /// Blocking key to name ids.
    postings: Postings,
    /// Document or identifier key to slots.
    exact: Postings,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    keys: FxHashMap<u64, u32>,
}

/// The key of a whole name: the coarse keys of its distinctive parts, in
/// order of key so that word order does not matter.
fn signature<'a>(parts: impl Iterator<Item = &'a Part>) -> u64 {
    let mut coarse: Vec<u64> = parts.filter(|p| !p.particle()).map(Part::coarse).collect();
    coarse.sort_unstable();
    key(b'N', coarse)
}

fn doc_key(number: &str) -> u64 {
    key(b'D', number)
}

fn ident_key(kind: &str, value: &str) -> u64 {
    key(b'I', (kind, value))
}

fn ident_kind(kind: &str) -> Box<str> {
    normalise::compose(kind.trim()).into()
}

/// A query name, prepared once per screen.
struct QName {
    /// Written parts and, per folded part, the index of its written part.
    written: Vec<String>,
    part_written: Vec<usize>,
    units: Vec<Span>,
    features: Vec<Part>,
    /// Per unit, the id of its part if the index has it.
    ids: Vec<Option<u32>>,
    weights: Vec<f32>,
    particles: u32,
}

impl Index {
    /// An index of these candidates (a later candidate with the key of an
    /// earlier one replaces it).
    pub fn build(candidates: impl IntoIterator<Item = Candidate>) -> Index {
        let mut index = Index::default();
        for c in candidates {
            index.insert(c);
        }
        index
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the index holds no candidate.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find_part(&self, folded: &str) -> Option<u32> {
        match self.part_ids.get(&key(b'T', folded)) {
            Some(&id) if *self.parts[id as usize].folded == *folded => Some(id),
            Some(_) => self.part_collisions.get(folded).copied(),
            None => None,
        }
    }

    fn intern_part(&mut self, folded: &str) -> u32 {
        if let Some(id) = self.find_part(folded) {
            return id;
        }
        let id = self.parts.len() as u32;
        let part = Part::new(folded);
        self.quick.push(part.quick);
        self.parts.push(part);
        self.df.push(0);
        match self.part_ids.entry(key(b'T', folded)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.part_collisions.insert(folded.into(), id);
            }
        }
        id
    }

    fn find_name(&self, parts: &[u32]) -> Option<u32> {
        match self.name_ids.get(&key(b'M', parts)) {
            Some(&id) if self.names[id as usize].parts() == parts => Some(id),
            Some(_) => self.name_collisions.get(parts).copied(),
            None => None,
        }
    }

    fn intern_name(&mut self, folded: &[String]) -> u32 {
        let parts: Box<[u32]> = folded.iter().map(|p| self.intern_part(p)).collect();
        if let Some(id) = self.find_name(&parts) {
            return id;
        }
        let refs: Vec<&str> = folded.iter().map(String::as_str).collect();
        let joined: Box<[(Span, u32)]> = matcher::joined_units(&refs)
            .into_iter()
            .map(|(span, text)| (span, self.intern_part(&text)))
            .collect();
        let id = match self.free_names.pop() {
            Some(id) => id,
            None => {
                self.names.push(Name::new(&[], &[]));
                (self.names.len() - 1) as u32
            }
        };
        let keys = self.name_keys(&parts, &joined);
        for k in keys {
            self.postings.push(k, id);
        }
        match self.name_ids.entry(key(b'M', &*parts)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.name_collisions.insert(parts.clone(), id);
            }
        }
        self.names[id as usize] = Name::new(&parts, &joined);
        id
    }

    /// The blocking keys of a name: every key of every unit, and a pair key
    /// for every two units that do not overlap.
    fn name_keys(&self, parts: &[u32], joined: &[(Span, u32)]) -> Vec<u64> {
        let mut units: Vec<(Span, u32)> = parts
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                (
                    Span {
                        start: i as u8,
                        len: 1,
                    },
                    p,
                )
            })
            .collect();
        units.extend(joined.iter().copied());
        let mut keys = Vec::new();
        for &(span, p) in &units {
            let part = &self.parts[p as usize];
            if span.len == 1 {
                part.single_keys(&mut keys);
            } else if !part.particle() {
                // Joined units are rarely written: one key each (a query's
                // part looks up all of its keys, the coarse one among them).
                keys.push(part.coarse());
            }
        }
        for (i, &(si, pi)) in units.iter().enumerate() {
            for &(sj, pj) in &units[i + 1..] {
                let (a, b) = (&self.parts[pi as usize], &self.parts[pj as usize]);
                if si.mask() & sj.mask() == 0 && !a.particle() && !b.particle() {
                    keys.push(pair_key(a.coarse(), b.coarse()));
                }
            }
        }
        keys.push(signature(parts.iter().map(|&p| &self.parts[p as usize])));
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Drop a name that has lost its last member: its posting entries and
    /// its interning, so that its id is used again. Its parts stay
    /// interned (they are shared, and small).
    fn free_name(&mut self, id: u32) {
        let name = std::mem::replace(&mut self.names[id as usize], Name::new(&[], &[]));
        let parts = name.parts();
        let joined: Vec<(Span, u32)> = name.joined().collect();
        for k in self.name_keys(parts, &joined) {
            self.postings.remove(k, id);
        }
        let k = key(b'M', parts);
        if self.name_ids.get(&k) == Some(&id) {
            self.name_ids.remove(&k);
        } else {
            self.name_collisions.remove(parts);
        }
        self.free_names.push(id);
    }

    /// Add a candidate, or replace the one with its key. Returns whether one
    /// was replaced.
    pub fn insert(&mut self, candidate: Candidate) -> bool {
        let replaced = self.remove(candidate.key);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut names = Vec::new();
        let mut all_written = String::new();
        let mut seen_parts = FxHashSet::default();
        for written in &candidate.names {
            let mut folded = normalise::parts(written);
            folded.truncate(MAX_PARTS);
            if folded.is_empty() {
                continue;
            }
            let id = self.intern_name(&folded);
            seen_parts.extend(self.names[id as usize].parts().iter().copied());
            names.push(id);
            if !all_written.is_empty() {
                all_written.push(NAME_SEPARATOR);
            }
            // The separator is a control character no name contains.
            all_written.extend(written.chars().filter(|&c| c != NAME_SEPARATOR));
        }
        for p in seen_parts {
            self.df[p as usize] += 1;
        }
        let documents: Box<[_]> = candidate
            .documents
            .iter()
            .map(|d| StoredDocument {
                kind: d.kind.as_str().into(),
                number: normalise::document_number(&d.number).into(),
                country: d.country.as_deref().and_then(normalise::country),
            })
            .filter(|d| !d.number.is_empty())
            .collect();
        let identifiers: Box<[_]> = candidate
            .identifiers
            .iter()
            .map(|i| {
                (
                    ident_kind(&i.kind),
                    normalise::identifier(&i.kind, &i.value).into(),
                )
            })
            .filter(|(_, v): &(Box<str>, Box<str>)| !v.is_empty())
            .collect();
        let mut exact_keys: Vec<u64> = documents.iter().map(|d| doc_key(&d.number)).collect();
        exact_keys.extend(identifiers.iter().map(|(k, v)| ident_key(k, v)));
        exact_keys.sort_unstable();
        exact_keys.dedup();
        for k in exact_keys {
            self.exact.push(k, slot);
        }
        let entry = Entry {
            key: candidate.key,
            names: names.into(),
            written: all_written.into(),
            dob: candidate.dob,
            nationalities: candidate
                .nationalities
                .iter()
                .filter_map(|n| normalise::country(n))
                .collect(),
            documents,
            identifiers,
            threshold: candidate.threshold,
        };
        let member = Member::new(candidate.key, slot, &entry);
        for &id in entry.names.iter() {
            let name = &mut self.names[id as usize];
            if !name.members.iter().any(|m| m.slot == slot) {
                // Most names have one or two members, and a `Vec` would
                // reserve four at first: grow exactly while small, by half
                // when large.
                if name.members.len() == name.members.capacity() {
                    name.members.reserve_exact((name.members.len() / 2).max(1));
                }
                name.members.push(member);
            }
        }
        self.slots[slot as usize] = Some(entry);
        self.keys.insert(candidate.key, slot);
        replaced
    }

    /// Remove the candidate with this key. Returns whether there was one.
    pub fn remove(&mut self, key: u64) -> bool {
        let Some(slot) = self.keys.remove(&key) else {
            return false;
        };
        let Some(entry) = self.slots[slot as usize].take() else {
            return false;
        };
        let mut seen_parts = FxHashSet::default();
        for &id in entry.names.iter() {
            let name = &mut self.names[id as usize];
            name.members.retain(|m| m.slot != slot);
            seen_parts.extend(name.parts().iter().copied());
            if name.members.is_empty() && !name.units.is_empty() {
                self.free_name(id);
            }
        }
        for p in seen_parts {
            self.df[p as usize] -= 1;
        }
        let mut exact_keys: Vec<u64> = entry.documents.iter().map(|d| doc_key(&d.number)).collect();
        exact_keys.extend(entry.identifiers.iter().map(|(k, v)| ident_key(k, v)));
        for k in exact_keys {
            self.exact.remove(k, slot);
        }
        self.free.push(slot);
        true
    }

    fn prepare(&self, name: &str) -> Option<QName> {
        let mut written = Vec::new();
        let mut part_written = Vec::new();
        let mut folded = Vec::new();
        for (w, parts) in normalise::written_parts(name) {
            for p in parts {
                part_written.push(written.len());
                folded.push(p);
            }
            written.push(w);
        }
        folded.truncate(MAX_PARTS);
        part_written.truncate(MAX_PARTS);
        if folded.is_empty() {
            return None;
        }
        let n = self.len();
        let mut units: Vec<Span> = (0..folded.len())
            .map(|i| Span {
                start: i as u8,
                len: 1,
            })
            .collect();
        let mut features: Vec<Part> = folded.iter().map(|p| Part::new(p)).collect();
        let weights: Vec<f32> = features
            .iter()
            .map(|f| {
                let df = self
                    .find_part(&f.folded)
                    .map_or(0, |id| self.df[id as usize]);
                matcher::weight(f.particle(), df, n)
            })
            .collect();
        let particles = features
            .iter()
            .enumerate()
            .filter(|(_, f)| f.particle())
            .fold(0, |m, (i, _)| m | 1 << i);
        let refs: Vec<&str> = folded.iter().map(String::as_str).collect();
        for (span, text) in matcher::joined_units(&refs) {
            units.push(span);
            features.push(Part::new(&text));
        }
        let ids = features.iter().map(|f| self.find_part(&f.folded)).collect();
        Some(QName {
            written,
            part_written,
            units,
            features,
            ids,
            weights,
            particles,
        })
    }

    /// The names that share blocking keys with a query name.
    fn generate(&self, q: &QName, out: &mut FxHashSet<u32>) {
        let mut keys = Vec::new();
        for f in &q.features {
            f.single_keys(&mut keys);
        }
        let singles = keys.len();
        let mut alternatives: Vec<Vec<u64>> = Vec::with_capacity(q.units.len());
        for f in &q.features {
            let mut alt = Vec::new();
            f.coarse_alternatives(&mut alt);
            alternatives.push(alt);
        }
        for i in 0..q.units.len() {
            for j in i + 1..q.units.len() {
                if q.units[i].mask() & q.units[j].mask() != 0
                    || q.features[i].particle()
                    || q.features[j].particle()
                {
                    continue;
                }
                for &a in &alternatives[i] {
                    for &b in &alternatives[j] {
                        keys.push(pair_key(a, b));
                    }
                }
            }
        }
        // The names whose parts all sound like the query's come first, in
        // any number: they are the likeliest hits ("Mohamed Ahmed" has
        // thousands of namesakes, and all of them are candidates).
        let parts = q
            .units
            .iter()
            .zip(&q.features)
            .filter(|(u, _)| u.len == 1)
            .map(|(_, f)| f);
        if let Some(list) = self.postings.get(signature(parts)) {
            out.extend(list.iter().take(MAX_NAMES).copied());
        }
        let mut lists: Vec<(bool, &[u32])> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, &k)| self.postings.get(k).map(|l| (i < singles, l)))
            .filter(|(single, l)| !*single || l.len() <= SINGLE_CAP)
            .collect();
        lists.sort_by_key(|(_, l)| l.len());
        // Then the short lists of rare single parts, all of them: they find
        // what pair keys miss (a typo in one part, an abjad spelling).
        for (_, list) in lists.iter().filter(|(single, _)| *single) {
            out.extend(list.iter().copied());
        }
        // Then pair lists shortest first, within a budget: a long list is a
        // pair of common parts, and its names that lack the query's rarer
        // parts score low anyway.
        let budget = out.len() + BUDGET;
        for (i, (_, list)) in lists.iter().filter(|(single, _)| !*single).enumerate() {
            if i > 0 && out.len() + list.len() > budget {
                break;
            }
            out.extend(list.iter().take(PAIR_CAP).copied());
        }
    }

    fn align(
        &self,
        q: &QName,
        name: &Name,
        memo: &mut Memo,
        scratch: &mut Scratch,
        pairings: Option<&mut Vec<Pairing>>,
    ) -> Alignment {
        let n = self.len();
        let Scratch {
            options,
            units,
            ids,
            weights,
            part_weights,
        } = scratch;
        units.clear();
        ids.clear();
        weights.clear();
        let mut particles = 0u32;
        for (i, &p) in name.parts().iter().enumerate() {
            units.push(Span {
                start: i as u8,
                len: 1,
            });
            ids.push(p);
            let particle = self.quick[p as usize].particle();
            let weight = *part_weights
                .entry(p)
                .or_insert_with(|| matcher::weight(particle, self.df[p as usize], n));
            weights.push(weight);
            if particle {
                particles |= 1 << i;
            }
        }
        for (span, id) in name.joined() {
            units.push(span);
            ids.push(id);
        }
        let q_side = Side {
            units: &q.units,
            weights: &q.weights,
            particles: q.particles,
        };
        let c_side = Side {
            units,
            weights,
            particles,
        };
        let ids = &*ids;
        matcher::align(
            q_side,
            c_side,
            |qi, ci| {
                let id = ids[ci];
                // Interned parts are equal exactly when their ids are.
                if q.ids[qi] == Some(id) {
                    return Some((1.0, How::Folded));
                }
                // Most pairs are unalike, and the compact features show it:
                // neither the memo nor the part is read for them.
                if !q.features[qi].quick.might_be_alike(self.quick[id as usize]) {
                    return None;
                }
                *memo
                    .entry((qi as u64) << 32 | u64::from(id))
                    .or_insert_with(|| {
                        matcher::similarity(&q.features[qi], &self.parts[id as usize])
                    })
            },
            options,
            pairings,
        )
    }

    /// Screen a query: the matching candidates, hits first, then by score
    /// (namesakes whose names match exactly are ordered by the evidence of
    /// dates and nationalities, though their scores are capped at 1), at
    /// most [`Options::max_results`].
    pub fn screen(&self, query: &Query, options: &Options) -> Vec<Match> {
        self.screen_page(query, options).matches
    }

    /// [`Index::screen`], and whether more candidates matched than
    /// [`Options::max_results`] let it return.
    pub fn screen_page(&self, query: &Query, options: &Options) -> Page {
        let qnames: Vec<QName> = query.names.iter().filter_map(|n| self.prepare(n)).collect();
        let mut memos: Vec<Memo> = qnames
            .iter()
            .map(|_| FxHashMap::with_capacity_and_hasher(MEMO_CAPACITY, Default::default()))
            .collect();
        let mut scratch = Scratch {
            part_weights: FxHashMap::with_capacity_and_hasher(SET_CAPACITY, Default::default()),
            ..Scratch::default()
        };
        // What a date of birth and a nationality can add for this query.
        let max_bonus = if query.dob.is_some() { DOB_BONUS } else { 0.0 }
            + if query.nationalities.is_empty() {
                0.0
            } else {
                NATIONALITY_BONUS
            };
        // Scored names, best first: (score, distinctive, query name, name id).
        let mut scored: Vec<(f32, u8, usize, u32)> = Vec::with_capacity(SET_CAPACITY);
        let mut found = FxHashSet::with_capacity_and_hasher(SET_CAPACITY, Default::default());
        let mut ids: Vec<u32> = Vec::with_capacity(SET_CAPACITY);
        for (qi, q) in qnames.iter().enumerate() {
            found.clear();
            self.generate(q, &mut found);
            ids.clear();
            ids.extend(found.iter().copied());
            // In id order: the order names are scored in then does not
            // hang on the set's capacity, and reads go forward in memory.
            ids.sort_unstable();
            for (i, &id) in ids.iter().enumerate() {
                // Scoring a name waits on memory (the name, its units and
                // their parts' features, scattered and read nowhere else):
                // ask for a later name's, so that the misses overlap this
                // name's work instead of following it.
                if let Some(&ahead) = ids.get(i + FETCH_NAME) {
                    // A record may straddle two lines: ask for the line of
                    // each field read (their addresses need no read).
                    let name = &self.names[ahead as usize];
                    prefetch(&name.units);
                    prefetch(&name.members);
                }
                if let Some(&ahead) = ids.get(i + FETCH_UNITS) {
                    prefetch_first(&self.names[ahead as usize].units);
                }
                if let Some(&ahead) = ids.get(i + FETCH_PARTS) {
                    for &p in self.names[ahead as usize].unit_ids() {
                        prefetch(&self.quick[p as usize]);
                    }
                }
                let name = &self.names[id as usize];
                if name.members.is_empty() {
                    continue;
                }
                let a = self.align(q, name, &mut memos[qi], &mut scratch, None);
                if a.score + max_bonus >= options.min_score {
                    scored.push((a.score, a.distinctive, qi, id));
                }
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        // Documents and identifiers.
        let qdocs: Vec<(String, Option<[u8; 2]>)> = query
            .documents
            .iter()
            .map(|d| {
                (
                    normalise::document_number(&d.number),
                    d.country.as_deref().and_then(normalise::country),
                )
            })
            .filter(|(n, _)| !n.is_empty())
            .collect();
        let qidents: Vec<(Box<str>, String)> = query
            .identifiers
            .iter()
            .map(|i| {
                (
                    ident_kind(&i.kind),
                    normalise::identifier(&i.kind, &i.value),
                )
            })
            .collect();
        let mut exact_slots: FxHashSet<u32> = FxHashSet::default();
        for (n, _) in &qdocs {
            exact_slots.extend(self.exact.get(doc_key(n)).into_iter().flatten().copied());
        }
        for (k, v) in &qidents {
            exact_slots.extend(
                self.exact
                    .get(ident_key(k, v))
                    .into_iter()
                    .flatten()
                    .copied(),
            );
        }
        let qnats: Vec<[u8; 2]> = query
            .nationalities
            .iter()
            .filter_map(|n| normalise::country(n))
            .collect();
        // Reasons are made (`explain`) only for the matches returned: a
        // common name's namesakes are ranked by the hundred.
        let evaluate =
            |slot: u32, best: Option<(f32, u8, usize, u32)>, explain: bool| -> Option<Found> {
                let e = self.slots[slot as usize].as_ref()?;
                let mut reasons = Vec::new();
                let mut exact = false;
                if exact_slots.contains(&slot) {
                    for StoredDocument {
                        kind,
                        number,
                        country,
                    } in e.documents.iter()
                    {
                        let agrees =
                            |c: &Option<[u8; 2]>| c.is_none() || country.is_none() || c == country;
                        if qdocs.iter().any(|(n, c)| **n == **number && agrees(c)) {
                            if explain {
                                reasons.push(Reason::Document {
                                    kind: kind.to_string(),
                                    number: number.to_string(),
                                });
                            }
                            exact = true;
                        }
                    }
                    for (kind, value) in e.identifiers.iter() {
                        if qidents.iter().any(|(k, v)| k == kind && **v == **value) {
                            if explain {
                                reasons.push(Reason::Identifier {
                                    kind: kind.to_string(),
                                    value: value.to_string(),
                                });
                            }
                            exact = true;
                        }
                    }
                }
                let evidence = Evidence {
                    key: e.key,
                    slot,
                    dob: e.dob,
                    nationalities: &e.nationalities,
                    threshold: e.threshold,
                    exact,
                };
                rank(
                    &evidence, query.dob, &qnats, options, best, reasons, explain,
                )
            };
        // The same for a namesake found by its name alone, from what its
        // name's member list keeps (no scattered read of its entry).
        let evaluate_member = |m: &Member, best: (f32, u8, usize, u32)| -> Option<Found> {
            if m.special || exact_slots.contains(&m.slot) {
                return evaluate(m.slot, Some(best), false);
            }
            let evidence = Evidence {
                key: m.key,
                slot: m.slot,
                dob: m.dob,
                nationalities: m.nationalities(),
                threshold: None,
                exact: false,
            };
            rank(
                &evidence,
                query.dob,
                &qnats,
                options,
                Some(best),
                Vec::new(),
                false,
            )
        };
        let order = |a: &Found, b: &Found| {
            b.0.hit
                .cmp(&a.0.hit)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.key.cmp(&b.0.key))
        };
        let keep = options.max_results;
        let mut out: Vec<Found> = Vec::new();
        let mut seen: FxHashSet<u32> =
            FxHashSet::with_capacity_and_hasher(SET_CAPACITY, Default::default());
        // Names come best first, and a candidate ranks at most `max_bonus`
        // above its name: once the kept matches are all hits that no later
        // candidate can beat, stop. Common names have thousands of namesakes
        // and only `max_results` are returned; among equal ranks the earlier
        // name's candidates are kept.
        // Whether a match was dropped, or left unread, for the limit.
        let mut more = false;
        let settled = |out: &mut Vec<Found>, bound: f32, more: &mut bool| {
            if keep == 0 {
                return true;
            }
            if out.len() >= keep.saturating_mul(2) {
                out.select_nth_unstable_by(keep - 1, order);
                out.truncate(keep);
                *more = true;
            }
            out.len() >= keep && out.iter().all(|m| m.0.hit && m.2 >= bound)
        };
        'names: for (k, &best) in scored.iter().enumerate() {
            if let Some(ahead) = scored.get(k + 2) {
                prefetch_first(&self.names[ahead.3 as usize].members);
            }
            let bound = best.0 + max_bonus;
            if settled(&mut out, bound, &mut more) {
                // The names left scored at least `min_score` with the
                // best evidence: some of their candidates would match.
                more = true;
                break;
            }
            for m in &self.names[best.3 as usize].members {
                if seen.insert(m.slot) {
                    out.extend(evaluate_member(m, best));
                    if out.len() >= keep.saturating_mul(2) && settled(&mut out, bound, &mut more) {
                        more = true;
                        break 'names;
                    }
                }
            }
        }
        for &slot in &exact_slots {
            if seen.insert(slot) {
                out.extend(evaluate(slot, None, false));
            }
        }
        out.sort_by(order);
        more |= out.len() > options.max_results;
        out.truncate(options.max_results);
        // Namesakes share their name reasons: make them once per name as
        // written.
        let mut made: FxHashMap<(usize, u32, &str), Vec<Reason>> = FxHashMap::default();
        // Each match returned reads its entry and the names written in it,
        // scattered: ask for them ahead, as for names.
        let returned: Vec<u32> = out.iter().map(|f| f.3).collect();
        let fetch = |k: usize| {
            if let Some(&slot) = returned.get(k + FETCH_ENTRY) {
                prefetch(&self.slots[slot as usize]);
            }
            if let Some(Some(e)) = returned
                .get(k + FETCH_WRITTEN)
                .map(|&slot| &self.slots[slot as usize])
            {
                prefetch_first(e.written.as_bytes());
                prefetch_first(&e.names);
            }
        };
        for &slot in returned.iter().take(FETCH_ENTRY) {
            prefetch(&self.slots[slot as usize]);
        }
        let matches: Vec<Match> = out
            .into_iter()
            .enumerate()
            .map(|(k, (m, best, _, slot))| {
                fetch(k);
                let (mut m, which) = match evaluate(slot, best, true) {
                    Some((m, best, _, _)) => (m, best.map(|(_, _, qi, id)| (qi, id))),
                    None => (m, None),
                };
                if let Some((qi, id)) = which {
                    let e = self.slots[slot as usize].as_ref().expect("live slot");
                    let written = e
                        .names
                        .iter()
                        .position(|&n| n == id)
                        .and_then(|i| e.written.split(NAME_SEPARATOR).nth(i))
                        .unwrap_or("");
                    let names = made.entry((qi, id, written)).or_insert_with(|| {
                        let mut pairings = Vec::new();
                        self.align(
                            &qnames[qi],
                            &self.names[id as usize],
                            &mut memos[qi],
                            &mut scratch,
                            Some(&mut pairings),
                        );
                        name_reasons(&qnames[qi], written, &pairings)
                    });
                    let mut reasons = names.clone();
                    reasons.append(&mut m.reasons);
                    m.reasons = reasons;
                }
                m
            })
            .collect();
        Page { matches, more }
    }
}

/// What [`Index::screen_page`] found.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// As [`Index::screen`] returns them.
    pub matches: Vec<Match>,
    /// More candidates may have matched than were returned: the limit
    /// ([`Options::max_results`]) dropped some, or left them unread once
    /// the matches kept were hits none of them could beat.
    pub more: bool,
}

/// What ranks a candidate besides its name, wherever it is read from.
struct Evidence<'a> {
    key: u64,
    slot: u32,
    dob: Option<Dob>,
    nationalities: &'a [[u8; 2]],
    threshold: Option<f32>,
    /// Whether a document or identifier matched in full.
    exact: bool,
}

/// A candidate's match and rank from its best name alignment (if any) and
/// the other evidence; `None` when it is neither a hit nor scores
/// `min_score`, or was found by a document key that did not match in full.
fn rank(
    e: &Evidence<'_>,
    query_dob: Option<Dob>,
    qnats: &[[u8; 2]],
    options: &Options,
    best: Option<(f32, u8, usize, u32)>,
    mut reasons: Vec<Reason>,
    explain: bool,
) -> Option<Found> {
    let exact = e.exact;
    let (name_score, distinctive) = match best {
        Some((s, d, _, _)) => (s, d),
        // Found by a document or identifier key that did not match in full
        // (another issuing country).
        None if !exact => return None,
        None => (0.0, 0),
    };
    let mut score = name_score;
    if let (Some(q), Some(c)) = (query_dob, e.dob) {
        match dob_evidence(q, c) {
            Some(true) => {
                score += if matches!((q, c), (Dob::Date { .. }, Dob::Date { .. })) {
                    DOB_BONUS
                } else {
                    0.04
                };
                if explain {
                    reasons.push(Reason::DobAgrees(c));
                }
            }
            Some(false) => {
                score -= 0.12;
                if explain {
                    reasons.push(Reason::DobDisagrees {
                        query: q,
                        candidate: c,
                    });
                }
            }
            None => {}
        }
    }
    if let Some(n) = qnats.iter().find(|n| e.nationalities.contains(n)) {
        score += NATIONALITY_BONUS;
        if explain {
            reasons.push(Reason::NationalityAgrees(
                String::from_utf8_lossy(n).into_owned(),
            ));
        }
    }
    if exact {
        score = score.max(0.97);
    }
    let rank = score;
    let score = score.clamp(0.0, 1.0);
    let threshold = e.threshold.unwrap_or(options.threshold);
    // A date of birth or a nationality is never a match alone, nor is one
    // name part: a hit needs two distinctive parts or a document.
    let hit = exact || (score >= threshold && distinctive >= 2);
    if score < options.min_score && !hit {
        return None;
    }
    Some((
        Match {
            key: e.key,
            score,
            hit,
            reasons,
        },
        best,
        rank,
        e.slot,
    ))
}

/// Whether two dates of birth agree (`Some(true)`), disagree
/// (`Some(false)`), or say nothing (a year apart: a common error).
fn dob_evidence(q: Dob, c: Dob) -> Option<bool> {
    match q.year().abs_diff(c.year()) {
        0 => match (q, c) {
            (Dob::Date { .. }, Dob::Date { .. }) if q != c => {
                // Day and month swapped is a writing convention, not a new person.
                let swapped = matches!((q, c), (Dob::Date { month: m1, day: d1, .. }, Dob::Date { month: m2, day: d2, .. }) if m1 == d2 && d1 == m2);
                if swapped { None } else { Some(false) }
            }
            _ => Some(true),
        },
        1 => None,
        _ => Some(false),
    }
}

/// The name reasons of an alignment, with the parts as written.
fn name_reasons(q: &QName, candidate: &str, pairings: &[Pairing]) -> Vec<Reason> {
    let mut c_written = Vec::new();
    let mut c_part_written = Vec::new();
    for (w, parts) in normalise::written_parts(candidate) {
        for _ in parts {
            c_part_written.push(c_written.len());
        }
        c_written.push(w);
    }
    let text = |written: &[String], part_written: &[usize], span: Span| -> String {
        let mut idx: Vec<usize> = (span.start..span.start + span.len)
            .filter_map(|i| part_written.get(i as usize).copied())
            .collect();
        idx.dedup();
        idx.iter()
            .map(|&i| written[i].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    pairings
        .iter()
        .map(|p| {
            let query = text(&q.written, &q.part_written, p.query);
            let candidate = text(&c_written, &c_part_written, p.candidate);
            let how = match p.how {
                How::Folded if normalise::compose(&query) == normalise::compose(&candidate) => {
                    How::Exact
                }
                how => how,
            };
            Reason::Name {
                query,
                candidate,
                how,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn named(key: u64, name: &str) -> Candidate {
        Candidate {
            key,
            names: vec![name.to_owned()],
            ..Candidate::default()
        }
    }

    #[test]
    fn remove_frees_names_that_lose_their_last_member() {
        let mut index = Index::build(synthetic::candidates(2_000, 1));
        let (keys, names, lists) = (
            index.postings.map.len(),
            index.name_ids.len() + index.name_collisions.len(),
            index.names.len(),
        );
        // Candidates from another seed, under keys of their own: many of
        // their names are new to the index.
        let extra: Vec<Candidate> = synthetic::candidates(300, 2)
            .into_iter()
            .map(|mut c| {
                c.key += 1 << 40;
                c
            })
            .collect();
        for c in extra.iter().cloned() {
            index.insert(c);
        }
        assert!(index.names.len() > lists, "the extra candidates add names");
        let grown = index.names.len();
        for c in &extra {
            assert!(index.remove(c.key));
        }
        assert_eq!(index.postings.map.len(), keys, "posting keys freed");
        assert_eq!(index.name_ids.len() + index.name_collisions.len(), names);
        // The freed ids are used again.
        for c in extra.iter().cloned() {
            index.insert(c);
        }
        assert_eq!(index.names.len(), grown);
        let c = &extra[0];
        let query = Query {
            names: c.names.clone(),
            ..Query::default()
        };
        let found = index.screen(&query, &Options::default());
        assert!(found.iter().any(|m| m.key == c.key && m.hit));
    }

    #[test]
    fn a_namesake_keeps_the_name_when_the_other_is_removed() {
        let mut index = Index::build(synthetic::candidates(500, 3));
        index.insert(named(1 << 40, "Najim Laachraoui"));
        index.insert(named((1 << 40) + 1, "Najim Laachraoui"));
        assert!(index.remove(1 << 40));
        let query = Query {
            names: vec!["Najim Laachraoui".to_owned()],
            ..Query::default()
        };
        let found = index.screen(&query, &Options::default());
        assert!(found.iter().any(|m| m.key == (1 << 40) + 1 && m.hit));
        assert!(found.iter().all(|m| m.key != 1 << 40));
        assert!(index.remove((1 << 40) + 1));
        assert!(index.screen(&query, &Options::default()).is_empty());
    }

    #[test]
    fn a_page_says_when_the_limit_left_matches_out() {
        let index = Index::build((1..=3).map(|k| named(k, "Karim Benhaddou")));
        let query = Query {
            names: vec!["Karim Benhaddou".into()],
            ..Query::default()
        };
        let page = |max_results| {
            index.screen_page(
                &query,
                &Options {
                    max_results,
                    ..Options::default()
                },
            )
        };
        let two = page(2);
        assert_eq!((two.matches.len(), two.more), (2, true));
        let all = page(3);
        assert_eq!((all.matches.len(), all.more), (3, false));
        assert!(!page(10).more);
        let none = index.screen_page(
            &Query {
                names: vec!["Jean Dupont".into()],
                ..Query::default()
            },
            &Options::default(),
        );
        assert!(none.matches.is_empty() && !none.more);
    }
}
