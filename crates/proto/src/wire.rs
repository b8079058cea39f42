//! A screen's responses in the form the node sends them: field for field
//! and byte for byte the same on the wire as [`pb::ScreenResponse`] and
//! [`pb::ScreenBatchResponse`], so every client decodes them with the
//! generated types. The one difference is on the node's side: a match's
//! entry is the encoded `WatchlistEntry` the node already holds (a
//! length-delimited field is encoded the same way whether it holds a
//! message or bytes), where the generated type would have the node decode
//! each entry only for it to be encoded again. That decode, and the
//! allocations and frees of its strings, were about 8 % of a node's CPU in
//! a batch of screens (docs/benchmarks.md).
//!
//! [`desk`](crate::desk) is the watchlist services' server and client with
//! these as the screens' responses; a test below checks that both forms
//! encode alike, byte for byte.

use crate::pb;

/// What a screen found; see [`pb::ScreenResponse`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ScreenResponse {
    /// The request's ref.
    #[prost(string, tag = "1")]
    pub r#ref: String,
    /// Matches, hits first, then by score.
    #[prost(message, repeated, tag = "2")]
    pub matches: Vec<ScreenMatch>,
    /// The request as screened, for a hit report.
    #[prost(message, optional, tag = "3")]
    pub screened: Option<pb::ScreenRequest>,
    /// When the node screened it.
    #[prost(message, optional, tag = "4")]
    pub screened_at: Option<::prost_types::Timestamp>,
    /// More entries may have matched than `matches` holds.
    #[prost(bool, tag = "5")]
    pub more_matches: bool,
}

/// One entry a screen matched; see [`pb::ScreenMatch`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ScreenMatch {
    /// In [0, 1].
    #[prost(float, tag = "1")]
    pub score: f32,
    /// Whether it is a hit.
    #[prost(bool, tag = "2")]
    pub hit: bool,
    /// The entry's owner.
    #[prost(string, tag = "3")]
    pub owner: String,
    /// The entry's ref.
    #[prost(string, tag = "4")]
    pub r#ref: String,
    /// The encoded [`pb::WatchlistEntry`] as held (empty: none).
    #[prost(bytes = "vec", tag = "5")]
    pub entry: Vec<u8>,
    /// Why it matched.
    #[prost(message, repeated, tag = "6")]
    pub reasons: Vec<pb::MatchReason>,
    /// The reasons as one line of text.
    #[prost(string, tag = "7")]
    pub reasons_text: String,
    /// The hit report sent or repeated, if any.
    #[prost(string, tag = "8")]
    pub hit_report_id: String,
    /// Whether `hit_report_id` is an earlier report.
    #[prost(bool, tag = "9")]
    pub hit_report_repeated: bool,
    /// The seq of the owner's change that made the entry what was matched.
    #[prost(uint64, tag = "10")]
    pub entry_seq: u64,
    /// Why this hit's report could not be committed, if it could not.
    #[prost(string, tag = "11")]
    pub hit_report_error: String,
}

/// Many screens' results; see [`pb::ScreenBatchResponse`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ScreenBatchResponse {
    /// In the order of the requests.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<ScreenResponse>,
}

impl ScreenMatch {
    /// The entry as a client decodes it (`None` if there is none, or if it
    /// does not decode).
    pub fn decoded_entry(&self) -> Option<pb::WatchlistEntry> {
        if self.entry.is_empty() {
            return None;
        }
        <pb::WatchlistEntry as prost::Message>::decode(self.entry.as_slice()).ok()
    }
}

impl ScreenResponse {
    /// The response as a client decodes it: an error if an entry it
    /// carries does not decode.
    pub fn decoded(&self) -> Result<pb::ScreenResponse, prost::DecodeError> {
        // Both are the same message on the wire.
        <pb::ScreenResponse as prost::Message>::decode(
            prost::Message::encode_to_vec(self).as_slice(),
        )
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn entry() -> pb::WatchlistEntry {
        pb::WatchlistEntry {
            owner: "FR-DGSI".into(),
            r#ref: "FR-2015-0117".into(),
            reason: "suspected of preparing an attack".into(),
            releasable_to: vec!["BE-VSSE".into(), "TR-MIT".into()],
            subject: Some(pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec!["Salah Abdeslam".into()],
                    aliases: vec!["Abdeslam Salah".into()],
                    date_of_birth: "1989-09-15".into(),
                    nationalities: vec!["FR".into(), "BE".into()],
                    documents: vec![pb::Document {
                        kind: "passport".into(),
                        number: "EH123456".into(),
                        issuing_country: "BE".into(),
                    }],
                })),
            }),
            ..Default::default()
        }
    }

    fn reason() -> pb::MatchReason {
        pb::MatchReason {
            kind: pb::match_reason::Kind::Name as i32,
            query: "Abdeslam".into(),
            candidate: "ABDESLAM".into(),
            how: "folded".into(),
            text: "Abdeslam ~ ABDESLAM (folded)".into(),
        }
    }

    /// The same screen's results built as the generated types and as the
    /// node's wire forms, with every field set. The generated ones name
    /// every field (no `..Default::default()`), so a field added to these
    /// messages in the proto breaks this test's build until the wire form
    /// has it too.
    fn both(with_entry: bool) -> (pb::ScreenBatchResponse, ScreenBatchResponse) {
        let request = pb::ScreenRequest {
            r#ref: "Q-1".into(),
            seen_place: "Cambrai".into(),
            limit: 5,
            person: Some(pb::Person {
                names: vec!["Salah Abdeslam".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = prost_types::Timestamp {
            seconds: 1_447_488_000,
            nanos: 7,
        };
        let generated = pb::ScreenMatch {
            score: 0.93,
            hit: true,
            owner: "FR-DGSI".into(),
            r#ref: "FR-2015-0117".into(),
            entry: with_entry.then(entry),
            reasons: vec![reason(), reason()],
            reasons_text: "a; b".into(),
            hit_report_id: "HIT-1".into(),
            hit_report_repeated: true,
            entry_seq: 42,
            hit_report_error: "store failed".into(),
        };
        let wire = ScreenMatch {
            score: generated.score,
            hit: generated.hit,
            owner: generated.owner.clone(),
            r#ref: generated.r#ref.clone(),
            entry: generated
                .entry
                .as_ref()
                .map(Message::encode_to_vec)
                .unwrap_or_default(),
            reasons: generated.reasons.clone(),
            reasons_text: generated.reasons_text.clone(),
            hit_report_id: generated.hit_report_id.clone(),
            hit_report_repeated: generated.hit_report_repeated,
            entry_seq: generated.entry_seq,
            hit_report_error: generated.hit_report_error.clone(),
        };
        let generated = pb::ScreenBatchResponse {
            results: vec![
                pb::ScreenResponse {
                    r#ref: "Q-1".into(),
                    matches: vec![generated.clone(), generated],
                    screened: Some(request.clone()),
                    screened_at: Some(at),
                    more_matches: true,
                },
                pb::ScreenResponse::default(),
            ],
        };
        let wire = ScreenBatchResponse {
            results: vec![
                ScreenResponse {
                    r#ref: "Q-1".into(),
                    matches: vec![wire.clone(), wire],
                    screened: Some(request),
                    screened_at: Some(at),
                    more_matches: true,
                },
                ScreenResponse::default(),
            ],
        };
        (generated, wire)
    }

    #[test]
    fn the_wire_forms_are_the_generated_messages_byte_for_byte() {
        for with_entry in [true, false] {
            let (generated, wire) = both(with_entry);
            assert_eq!(wire.encode_to_vec(), generated.encode_to_vec());
            assert_eq!(
                pb::ScreenBatchResponse::decode(wire.encode_to_vec().as_slice()).unwrap(),
                generated
            );
            assert_eq!(wire.results[0].decoded().unwrap(), generated.results[0]);
            assert_eq!(
                wire.results[0].matches[0].decoded_entry(),
                generated.results[0].matches[0].entry
            );
        }
    }

    #[test]
    fn an_entry_that_does_not_decode_is_none_and_its_response_an_error() {
        let m = ScreenMatch {
            entry: vec![0xff, 0xff],
            ..Default::default()
        };
        assert_eq!(m.decoded_entry(), None);
        let response = ScreenResponse {
            matches: vec![m],
            ..Default::default()
        };
        assert!(response.decoded().is_err());
    }
}
