//! Alerts without protobuf ceremony.
//!
//! [`AlertBuilder`] starts from a valid alert (PRIORITY, category
//! `terrorism`, graded B2, TLP:AMBER) and lets a test say only what matters
//! to it; [`Person`] does the same for a person subject:
//!
//! ```
//! use tocsin_testkit::{AlertBuilder, Person, Precedence, Tlp};
//!
//! let alert = AlertBuilder::to(["FR-DGSI", "BE-VSSE"])
//!     .precedence(Precedence::Immediate)
//!     .person(
//!         Person::named("Abdelhamid Abaaoud")
//!             .alias("Abou Omar al-Baljiki")
//!             .born("1987-04-08")
//!             .nationality("BE")
//!             .document("passport", "EH123456", "BE"),
//!     )
//!     .identifier("phone", "+32 470 00 00 00")
//!     .text("Attacks on coalition countries ordered; imminent.")
//!     .grading('B', 2)
//!     .tlp(Tlp::Red)
//!     .build();
//! assert_eq!(alert.recipients, ["FR-DGSI", "BE-VSSE"]);
//! assert_eq!(alert.subjects.len(), 2);
//! ```
//!
//! What the builder makes is what an operator would submit: the node
//! assigns the id, the originator and the creation time unless the test
//! sets them, and it validates everything, so a builder can also make the
//! bad alerts that validation tests need (`.grading('X', 9)` gives an
//! unspecified grading, which the node refuses with INVALID_ARGUMENT).

use chrono::{DateTime, Utc};
use tocsin_core::to_timestamp;
use tocsin_proto::pb;

/// Builds a [`pb::Alert`] for `SubmitAlert`; see the [module](self) docs.
#[derive(Debug, Clone)]
#[must_use]
pub struct AlertBuilder {
    alert: pb::Alert,
}

impl AlertBuilder {
    /// An alert for `recipients`: PRIORITY, category `terrorism`, graded
    /// B2, TLP:AMBER, a placeholder text, and no subject yet (add one with
    /// [`person`](Self::person) or [`identifier`](Self::identifier); an
    /// alert without one is refused).
    pub fn to<I, S>(recipients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            alert: pb::Alert {
                precedence: pb::Precedence::Priority as i32,
                category: "terrorism".into(),
                text: "Subject assessed as linked to a terrorist network.".into(),
                source_reliability: pb::SourceReliability::B as i32,
                information_credibility: pb::InformationCredibility::InformationCredibility2 as i32,
                tlp: pb::Tlp::Amber as i32,
                recipients: recipients.into_iter().map(Into::into).collect(),
                ..Default::default()
            },
        }
    }

    /// The precedence, which sets the acknowledgement deadline.
    pub fn precedence(mut self, precedence: pb::Precedence) -> Self {
        self.alert.precedence = precedence as i32;
        self
    }

    /// The free-form category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.alert.category = category.into();
        self
    }

    /// Adds a person subject.
    pub fn person(mut self, person: Person) -> Self {
        self.alert.subjects.push(pb::Subject {
            kind: Some(pb::subject::Kind::Person(person.0)),
        });
        self
    }

    /// Adds an identifier subject (`phone`, `email`, `vehicle`, ...).
    pub fn identifier(mut self, kind: impl Into<String>, value: impl Into<String>) -> Self {
        self.alert.subjects.push(pb::Subject {
            kind: Some(pb::subject::Kind::Identifier(pb::Identifier {
                kind: kind.into(),
                value: value.into(),
            })),
        });
        self
    }

    /// The text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.alert.text = text.into();
        self
    }

    /// The Admiralty grading: source reliability `A`-`F` and information
    /// credibility `1`-`6`. Anything else is left unspecified, for tests of
    /// what the node refuses.
    pub fn grading(mut self, reliability: char, credibility: u8) -> Self {
        let reliability = match reliability.to_ascii_uppercase() {
            c @ 'A'..='F' => (c as i32) - ('A' as i32) + 1,
            _ => 0,
        };
        self.alert.source_reliability = reliability;
        self.alert.information_credibility = match credibility {
            1..=6 => i32::from(credibility),
            _ => 0,
        };
        self
    }

    /// The TLP handling label.
    pub fn tlp(mut self, tlp: pb::Tlp) -> Self {
        self.alert.tlp = tlp as i32;
        self
    }

    /// A deadline earlier than the precedence allows.
    pub fn respond_by(mut self, at: DateTime<Utc>) -> Self {
        self.alert.respond_by = Some(to_timestamp(at));
        self
    }

    /// When the alert stops being relevant.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.alert.expires_at = Some(to_timestamp(at));
        self
    }

    /// The alert's id (a ULID), for idempotent resubmission; the node
    /// assigns one otherwise.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.alert.id = id.into();
        self
    }

    /// Says this alert updates the earlier alert `id`.
    pub fn updates(self, id: impl Into<String>) -> Self {
        self.reference(pb::reference::Kind::Update, id)
    }

    /// Says this alert supersedes the earlier alert `id`.
    pub fn supersedes(self, id: impl Into<String>) -> Self {
        self.reference(pb::reference::Kind::Supersede, id)
    }

    /// Says this alert cancels the earlier alert `id`.
    pub fn cancels(self, id: impl Into<String>) -> Self {
        self.reference(pb::reference::Kind::Cancel, id)
    }

    fn reference(mut self, kind: pb::reference::Kind, id: impl Into<String>) -> Self {
        self.alert.references.push(pb::Reference {
            alert_id: id.into(),
            kind: kind as i32,
        });
        self
    }

    /// The alert, ready for `SubmitAlert`.
    pub fn build(self) -> pb::Alert {
        self.alert
    }
}

impl From<AlertBuilder> for pb::Alert {
    fn from(builder: AlertBuilder) -> Self {
        builder.build()
    }
}

/// A person subject; see the [module](self) docs.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Person(pb::Person);

impl Person {
    /// A person known by `name` (their most reliable full name).
    pub fn named(name: impl Into<String>) -> Self {
        Self(pb::Person {
            names: vec![name.into()],
            ..Default::default()
        })
    }

    /// Another full name, less reliable than the first.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.names.push(name.into());
        self
    }

    /// A name the person uses.
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.0.aliases.push(alias.into());
        self
    }

    /// Date of birth, `YYYY-MM-DD`.
    pub fn born(mut self, date: impl Into<String>) -> Self {
        self.0.date_of_birth = date.into();
        self
    }

    /// A nationality (ISO 3166-1 code).
    pub fn nationality(mut self, country: impl Into<String>) -> Self {
        self.0.nationalities.push(country.into());
        self
    }

    /// An identity or travel document.
    pub fn document(
        mut self,
        kind: impl Into<String>,
        number: impl Into<String>,
        issuing_country: impl Into<String>,
    ) -> Self {
        self.0.documents.push(pb::Document {
            kind: kind.into(),
            number: number.into(),
            issuing_country: issuing_country.into(),
        });
        self
    }
}

impl From<Person> for pb::Person {
    fn from(person: Person) -> Self {
        person.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_maps_letters_and_digits_and_leaves_nonsense_unspecified() {
        let a = AlertBuilder::to(["FR-DGSI"]).grading('a', 1).build();
        assert_eq!(a.source_reliability, pb::SourceReliability::A as i32);
        assert_eq!(
            a.information_credibility,
            pb::InformationCredibility::InformationCredibility1 as i32
        );
        let f = AlertBuilder::to(["FR-DGSI"]).grading('F', 6).build();
        assert_eq!(f.source_reliability, pb::SourceReliability::F as i32);
        assert_eq!(
            f.information_credibility,
            pb::InformationCredibility::InformationCredibility6 as i32
        );
        let bad = AlertBuilder::to(["FR-DGSI"]).grading('G', 7).build();
        assert_eq!(bad.source_reliability, 0);
        assert_eq!(bad.information_credibility, 0);
    }
}
