//! For the differential tests of acknowledgements, messages, the ladder
//! and events: the same alerts on both backends (through `RecordStore`),
//! and what both hold afterwards (tables read as text; the event logs and
//! audit chains through `records::tests::assert_same_log`).

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::testing::Both;
use crate::error::Error;
use crate::records::{AttemptOutcome, InboundOutcome, NewAlert, RecordStore};

pub(super) use super::records::tests::{WORDS, exec_both};

/// Makes the same call on both backends (`s` names each store in turn):
/// `(SQLite's result, PostgreSQL's)`.
macro_rules! on_both {
    ($both:expr, $s:ident => $call:expr) => {{
        let sqlite = {
            let $s = &$both.sqlite;
            $call
        };
        let postgres = {
            let $s = &$both.postgres;
            $call
        };
        (sqlite, postgres)
    }};
}
pub(super) use on_both;

/// Makes the same call on both backends, asserts that both succeed with
/// equal values, and returns the value.
macro_rules! same {
    ($both:expr, $s:ident => $call:expr) => {{
        let (sqlite, postgres) = $crate::postgres::fixtures::on_both!($both, $s => $call);
        let (sqlite, postgres) = (sqlite.expect("SQLite"), postgres.expect("PostgreSQL"));
        assert_eq!(sqlite, postgres);
        sqlite
    }};
}
pub(super) use same;

/// A fixed start, so that both backends see the very same times (the
/// audit entries hash them).
pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 13, 21, 0, 0).unwrap()
}

/// `t0` plus `minutes`.
pub(super) fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// An alert, as a test wants it.
#[derive(Debug, Clone)]
pub(super) struct Alert {
    pub(super) id: &'static str,
    pub(super) originator: &'static str,
    pub(super) precedence: i32,
    pub(super) due_at: DateTime<Utc>,
    /// Outbound: the first ladder step.
    pub(super) first_step_at: Option<DateTime<Utc>>,
}

impl Alert {
    fn new_alert(&self) -> NewAlert {
        NewAlert {
            id: self.id.into(),
            originator: self.originator.into(),
            created_at: t0(),
            stored_at: t0(),
            precedence: self.precedence,
            category: "TERRORISM".into(),
            summary: "a summary".into(),
            digest: format!("digest {}", self.id).into_bytes(),
            envelope: format!("envelope {}", self.id).into_bytes(),
            due_at: self.due_at,
            first_step_at: self.first_step_at,
            keys: Vec::new(),
            closes: Vec::new(),
            detail: format!("stored {}", self.id),
        }
    }
}

/// Sends an alert to `recipients` on both backends (`insert_outbound`:
/// one event each), asserting that both store it alike.
pub(super) async fn outbound(both: &Both, alert: Alert, recipients: &[&str]) {
    let recipients: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
    let sqlite = both
        .sqlite
        .insert_outbound(alert.new_alert(), recipients.clone())
        .await
        .expect("SQLite stores the sent alert");
    let postgres = both
        .postgres
        .insert_outbound(alert.new_alert(), recipients)
        .await
        .expect("PostgreSQL stores the sent alert");
    assert_eq!(format!("{sqlite:?}"), format!("{postgres:?}"));
}

/// Receives an alert from its originator on both backends
/// (`insert_inbound`: one event each).
pub(super) async fn inbound(both: &Both, alert: Alert) {
    let receipt = format!("receipt {}", alert.id).into_bytes();
    let sqlite = both
        .sqlite
        .insert_inbound(alert.new_alert(), receipt.clone())
        .await
        .expect("SQLite stores the received alert");
    let postgres = both
        .postgres
        .insert_inbound(alert.new_alert(), receipt)
        .await
        .expect("PostgreSQL stores the received alert");
    assert_eq!(sqlite, postgres);
    assert_eq!(sqlite, InboundOutcome::Stored);
}

/// Records that `recipient` has the alert (its receipt came back), on
/// both backends (`record_attempts`: a DELIVERED event each).
pub(super) async fn delivered(both: &Both, alert_id: &str, recipient: &str, minutes: i64) {
    let outcome = || {
        vec![(
            alert_id.to_owned(),
            recipient.to_owned(),
            AttemptOutcome::Delivered {
                delivered_at: at(minutes),
                receipt: format!("receipt from {recipient}").into_bytes(),
            },
        )]
    };
    both.sqlite
        .record_attempts(outcome(), at(minutes), WORDS)
        .await
        .expect("SQLite records the receipt");
    both.postgres
        .record_attempts(outcome(), at(minutes), WORDS)
        .await
        .expect("PostgreSQL records the receipt");
}

/// The rows `query` gives on each backend, every column read as text
/// (NULL as `None`). `query` must select text only (`CAST(x AS TEXT)`)
/// and order its rows; both dialects accept the same SQL.
pub(super) async fn rows(
    both: &Both,
    query: &'static str,
) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
    let sqlite = both
        .sqlite
        .read(move |conn| {
            let mut statement = conn.prepare(query)?;
            let columns = statement.column_count();
            let rows = statement
                .query_map([], |r| {
                    (0..columns)
                        .map(|i| r.get::<_, Option<String>>(i))
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .expect("SQLite rows");
    let postgres = both
        .postgres
        .read(move |client| {
            Box::pin(async move {
                let rows = client.query(query, &[]).await?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<_, Option<String>>(i).map_err(Error::from))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .await
        .expect("PostgreSQL rows");
    (sqlite, postgres)
}

/// Asserts that `query` gives the same rows on both backends, and returns
/// them.
pub(super) async fn same_rows(both: &Both, query: &'static str) -> Vec<Vec<Option<String>>> {
    let (sqlite, postgres) = rows(both, query).await;
    assert_eq!(sqlite, postgres, "{query}");
    sqlite
}

/// The tables the kinds under test write, as text, equal on both.
pub(super) async fn same_state(both: &Both) {
    same_rows(
        both,
        "SELECT id, peer, CAST(kind AS TEXT), CAST(length(envelope) AS TEXT), CAST(state AS TEXT),
                CAST(attempts AS TEXT), last_error, CAST(next_attempt_at AS TEXT), CAST(delivered_at AS TEXT)
         FROM messages ORDER BY id",
    )
    .await;
    same_rows(
        both,
        "SELECT alert_id, recipient, CAST(state AS TEXT), CAST(due_at AS TEXT), CAST(flag AS TEXT),
                CAST(flagged_at AS TEXT), CAST(ladder AS TEXT), CAST(next_step_at AS TEXT), CAST(settled AS TEXT)
         FROM deliveries ORDER BY alert_id, recipient",
    )
    .await;
    same_rows(
        both,
        "SELECT id, CAST(flag AS TEXT), CAST(flagged_at AS TEXT), CAST(reminders AS TEXT), CAST(settled AS TEXT)
         FROM alerts ORDER BY id",
    )
    .await;
    same_rows(
        both,
        "SELECT id, CAST(kind AS TEXT), alert_id, agency, CAST(received_at AS TEXT), CAST(length(envelope) AS TEXT)
         FROM received_messages ORDER BY id",
    )
    .await;
    same_rows(
        both,
        "SELECT id, alert_id, agency, operator, CAST(disposition AS TEXT), note,
                CAST(acknowledged_at AS TEXT), CAST(stored_at AS TEXT), CAST(length(envelope) AS TEXT)
         FROM acknowledgements ORDER BY id",
    )
    .await;
}

/// Asserts that both backends hold the same event log and audit chain,
/// entry for entry and hash for hash, that PostgreSQL's verifies, and
/// that it has `entries` entries.
pub(super) async fn same_audit_chain(both: &Both, entries: usize) {
    let events = super::records::tests::assert_same_log(both).await;
    assert_eq!(events.len(), entries);
}

/// Asserts that PostgreSQL's audit chain verifies and has `entries`
/// entries, one per event, whatever SQLite's holds.
pub(super) async fn postgres_chain_verifies(both: &Both, entries: usize) {
    use super::records::tests::{chain_findings, postgres_log};
    let (events, chain) = postgres_log(&both.postgres).await;
    assert_eq!((events.len(), chain.len()), (entries, entries));
    let findings = chain_findings(&chain);
    assert!(
        findings.is_empty(),
        "the audit chain verifies: {findings:?}"
    );
}

/// Asserts that a call failed the same way on both backends (variant and
/// text), and returns the error's text.
pub(super) fn same_error<T: std::fmt::Debug>(
    sqlite: Result<T, Error>,
    postgres: Result<T, Error>,
) -> String {
    let (s, p) = (sqlite.unwrap_err(), postgres.unwrap_err());
    assert_eq!(
        std::mem::discriminant(&s),
        std::mem::discriminant(&p),
        "{s:?} / {p:?}"
    );
    assert_eq!(s.to_string(), p.to_string());
    s.to_string()
}
