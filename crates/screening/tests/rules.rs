//! The screening rules, through the public API: what is and is not a hit,
//! documents and identifiers, dates of birth, thresholds, index upkeep and
//! the reasons a match gives.

use tocsin_screening::{
    Candidate, Dob, Document, How, Identifier, Index, Match, Options, Query, Reason, Reasons,
    synthetic,
};

/// An index of realistic background candidates plus `extra`, so that part
/// weights come from a realistic spread of names.
fn index_with(extra: Vec<Candidate>) -> Index {
    let mut all = synthetic::candidates(5_000, 3);
    all.extend(extra);
    Index::build(all)
}

fn candidate(key: u64, name: &str) -> Candidate {
    Candidate {
        key,
        names: vec![name.to_string()],
        ..Candidate::default()
    }
}

fn query(name: &str) -> Query {
    Query {
        names: vec![name.to_string()],
        ..Query::default()
    }
}

fn find(matches: &[Match], key: u64) -> Option<&Match> {
    matches.iter().find(|m| m.key == key)
}

const KEY: u64 = 1 << 40;

#[test]
fn variants_of_a_listed_name_are_hits_and_carry_their_reasons() {
    let mut c = candidate(KEY, "Omar Ismaïl MOSTEFAÏ");
    c.dob = Some(Dob::Date {
        year: 1985,
        month: 11,
        day: 21,
    });
    let index = index_with(vec![c]);
    let mut q = query("Omar Mostefai");
    q.dob = Some(Dob::Year(1985));
    let found = index.screen(&q, &Options::default());
    let m = find(&found, KEY).expect("found");
    assert!(m.hit, "{m}");
    assert!(m.score > 0.8 && m.score <= 1.0, "{m}");
    let text = Reasons(&m.reasons).to_string();
    assert_eq!(
        text,
        "Omar ~ Omar (exact); Mostefai ~ MOSTEFAÏ (folded); born 1985-11-21 agrees"
    );
    assert!(matches!(
        m.reasons[1],
        Reason::Name {
            how: How::Folded,
            ..
        }
    ));
    assert_eq!(found[0].key, KEY, "the best match comes first");
}

#[test]
fn word_order_hyphens_scripts_and_families_match() {
    let index = index_with(vec![
        candidate(KEY, "Abdelhamid Abaaoud"),
        candidate(KEY + 1, "Dzhokhar Tsarnaev"),
    ]);
    for (name, key) in [
        ("ABAAOUD Abdel-Hamid", KEY),
        ("Abd al-Hamid Abaaoud", KEY),
        ("Abdelhamid Abu Ud", KEY),
        ("عبد الحميد أباعود", KEY),
        ("Джохар Царнаев", KEY + 1),
        ("Djokhar Tsarnayev", KEY + 1),
    ] {
        let found = index.screen(&query(name), &Options::default());
        let m = find(&found, key).unwrap_or_else(|| panic!("{name} not found"));
        assert!(m.hit, "{name}: {m}");
    }
}

#[test]
fn a_single_common_name_part_is_never_a_hit() {
    let index = index_with(vec![candidate(KEY, "Mohamed Abrini")]);
    for name in ["Mohamed", "Mohammed", "MOHAMED"] {
        let found = index.screen(
            &query(name),
            &Options {
                min_score: 0.0,
                ..Options::default()
            },
        );
        assert!(
            found.iter().all(|m| !m.hit),
            "{name}: {:?}",
            found.iter().find(|m| m.hit)
        );
    }
    // Nor a common given name with a different family name.
    let found = index.screen(&query("Mohamed Amri"), &Options::default());
    assert!(find(&found, KEY).is_none_or(|m| !m.hit));
    // Even a threshold of zero needs two distinctive parts.
    let mut low = candidate(KEY + 1, "Salah Abdeslam");
    low.threshold = Some(0.0);
    let index = index_with(vec![low]);
    let found = index.screen(
        &query("Salah"),
        &Options {
            min_score: 0.0,
            ..Options::default()
        },
    );
    assert!(find(&found, KEY + 1).is_none_or(|m| !m.hit));
}

#[test]
fn a_date_of_birth_or_nationality_alone_is_never_a_hit() {
    let mut c = candidate(KEY, "Salah Abdeslam");
    c.dob = Some(Dob::Date {
        year: 1989,
        month: 9,
        day: 15,
    });
    c.nationalities = vec!["FR".into()];
    let index = index_with(vec![c]);
    let q = Query {
        names: vec!["Jean Dupont".into()],
        dob: Some(Dob::Date {
            year: 1989,
            month: 9,
            day: 15,
        }),
        nationalities: vec!["FR".into()],
        ..Query::default()
    };
    let found = index.screen(
        &q,
        &Options {
            min_score: 0.0,
            ..Options::default()
        },
    );
    assert!(find(&found, KEY).is_none_or(|m| !m.hit));
    // A query with no name at all finds nothing.
    let q = Query { names: vec![], ..q };
    assert!(
        index
            .screen(
                &q,
                &Options {
                    min_score: 0.0,
                    ..Options::default()
                }
            )
            .is_empty()
    );
}

#[test]
fn a_date_of_birth_is_evidence_for_or_against() {
    let mut c = candidate(KEY, "Brahim Abdeslam");
    c.dob = Some(Dob::Date {
        year: 1984,
        month: 7,
        day: 30,
    });
    let index = index_with(vec![c]);
    let score = |dob| {
        let q = Query {
            dob,
            ..query("Brahim Abdeslam")
        };
        let found = index.screen(
            &q,
            &Options {
                min_score: 0.0,
                ..Options::default()
            },
        );
        find(&found, KEY).expect("found").clone()
    };
    let none = score(None);
    let agrees = score(Some(Dob::Year(1984)));
    let disagrees = score(Some(Dob::Year(1960)));
    assert!(
        agrees.score > none.score - 0.05
            && agrees.reasons.contains(&Reason::DobAgrees(Dob::Date {
                year: 1984,
                month: 7,
                day: 30
            }))
    );
    assert!(disagrees.score < none.score, "{disagrees} vs {none}");
    assert!(
        disagrees
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::DobDisagrees { .. }))
    );
    // A year apart is a common error: no evidence either way.
    let near = score(Some(Dob::Year(1985)));
    assert!(
        !near
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::DobAgrees(_) | Reason::DobDisagrees { .. }))
    );
}

#[test]
fn documents_match_exactly_after_normalisation() {
    let mut c = candidate(KEY, "Ahmad al-Mohammad");
    c.documents = vec![Document {
        kind: "passport".into(),
        number: "E 3250-1698".into(),
        country: Some("SY".into()),
    }];
    c.identifiers = vec![Identifier {
        kind: "phone".into(),
        value: "+32 470 12 34 56".into(),
    }];
    let index = index_with(vec![c]);
    let doc = |number: &str, country: Option<&str>| Query {
        names: vec!["Unknown Person".into()],
        documents: vec![Document {
            kind: "passport".into(),
            number: number.into(),
            country: country.map(str::to_string),
        }],
        ..Query::default()
    };
    for number in ["E32501698", "e 3250 1698", "E-3250-1698"] {
        let found = index.screen(&doc(number, Some("sy")), &Options::default());
        let m = find(&found, KEY).unwrap_or_else(|| panic!("{number}"));
        assert!(
            m.hit
                && m.reasons.contains(&Reason::Document {
                    kind: "passport".into(),
                    number: "E32501698".into()
                })
        );
    }
    for (number, country) in [
        ("E32501699", Some("SY")),
        ("E3250169", None),
        ("E32501698", Some("IQ")),
    ] {
        let found = index.screen(
            &doc(number, country),
            &Options {
                min_score: 0.0,
                ..Options::default()
            },
        );
        assert!(find(&found, KEY).is_none(), "{number} {country:?}");
    }
    let q = Query {
        identifiers: vec![Identifier {
            kind: "Phone".into(),
            value: "0032-470-123456".into(),
        }],
        ..query("Nobody")
    };
    let found = index.screen(&q, &Options::default());
    assert!(find(&found, KEY).is_some_and(|m| m.hit));
}

#[test]
fn a_candidate_threshold_overrides_the_default() {
    let mut strict = candidate(KEY, "Samy Amimour");
    strict.threshold = Some(0.99);
    let index = index_with(vec![strict, candidate(KEY + 1, "Samy Amimour")]);
    let found = index.screen(&query("Sami Amimour"), &Options::default());
    assert!(!find(&found, KEY).expect("strict found").hit);
    assert!(find(&found, KEY + 1).expect("default found").hit);
}

#[test]
fn insert_replace_and_remove_keep_the_index_current() {
    let mut index = index_with(vec![]);
    let before = index.len();
    assert!(!index.insert(candidate(KEY, "Bilal Hadfi")));
    assert_eq!(index.len(), before + 1);
    assert!(
        find(
            &index.screen(&query("Bilal Hadfi"), &Options::default()),
            KEY
        )
        .is_some_and(|m| m.hit)
    );
    // Replacing the entry under its key drops the old name.
    assert!(index.insert(candidate(KEY, "Chakib Akrouh")));
    assert_eq!(index.len(), before + 1);
    assert!(
        find(
            &index.screen(&query("Bilal Hadfi"), &Options::default()),
            KEY
        )
        .is_none()
    );
    assert!(
        find(
            &index.screen(&query("Chakib Akrouh"), &Options::default()),
            KEY
        )
        .is_some_and(|m| m.hit)
    );
    assert!(index.remove(KEY));
    assert!(!index.remove(KEY));
    assert_eq!(index.len(), before);
    assert!(
        find(
            &index.screen(&query("Chakib Akrouh"), &Options::default()),
            KEY
        )
        .is_none()
    );
}

#[test]
fn results_are_capped_and_sorted() {
    let index = Index::build((0..30).map(|k| candidate(k, "Yassine Atar")));
    let found = index.screen(
        &query("Yassine Atar"),
        &Options {
            max_results: 10,
            ..Options::default()
        },
    );
    assert_eq!(found.len(), 10);
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(
        Index::default()
            .screen(&query("Yassine Atar"), &Options::default())
            .is_empty()
    );
}

#[test]
fn the_date_of_birth_picks_the_listed_person_among_namesakes() {
    // Many entries with one exact name: the one whose date of birth agrees
    // must come first even though every name score is 1, and even when the
    // result cap is far below the number of namesakes.
    let namesakes = (0..300u64).map(|k| Candidate {
        dob: Some(Dob::Date {
            year: 1950 + (k % 40) as u16,
            month: 1 + (k % 12) as u8,
            day: 1 + (k % 28) as u8,
        }),
        ..candidate(k, "Yassine Atar")
    });
    let mut listed = candidate(KEY, "Yassine ATAR");
    listed.dob = Some(Dob::Date {
        year: 1987,
        month: 3,
        day: 6,
    });
    let index = Index::build(namesakes.chain([listed]));
    let q = Query {
        dob: Some(Dob::Date {
            year: 1987,
            month: 3,
            day: 6,
        }),
        ..query("Yassine Atar")
    };
    let found = index.screen(
        &q,
        &Options {
            max_results: 5,
            ..Options::default()
        },
    );
    assert_eq!(found.len(), 5);
    assert_eq!(found[0].key, KEY, "{}", found[0]);
    assert!(
        found[0].hit
            && found[0]
                .reasons
                .iter()
                .any(|r| matches!(r, Reason::DobAgrees(_)))
    );
}
