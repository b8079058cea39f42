//! [`crate::MessageStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::acks::refused_ack_event;
use crate::codes::{DeliveryState, MessageKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::sql::{ms, sql};
use crate::error::Error;
use crate::messages::*;
use crate::records::{AttemptOutcome, OutcomeWords};

#[async_trait]
impl MessageStore for Sqlite {
    async fn due_messages(
        &self,
        peer: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueMessage>, Error> {
        let peer = peer.to_owned();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(sql!(
                    "SELECT id, kind, envelope, attempts FROM messages
                     WHERE peer = ?1 AND state = {pending} AND next_attempt_at <= ?2
                     ORDER BY next_attempt_at, id LIMIT ?3",
                    pending = DeliveryState::Pending.code(),
                ))?
                .query_map(params![peer, ms(now), limit], |r| {
                    Ok(DueMessage {
                        id: r.get(0)?,
                        kind: MessageKind::decode(r.get(1)?),
                        envelope: r.get(2)?,
                        attempts: r.get::<_, i64>(3)?.try_into().unwrap_or(u32::MAX),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn record_message_attempts(
        &self,
        outcomes: Vec<(String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error> {
        let refused = outcomes
            .iter()
            .any(|(_, o)| matches!(o, AttemptOutcome::Rejected { .. }));
        self.write(move |conn| {
            for (id, outcome) in &outcomes {
                match outcome {
                    AttemptOutcome::Delivered { delivered_at, .. } => {
                        conn.prepare_cached(sql!(
                            "UPDATE messages SET state = {delivered}, attempts = attempts + 1, next_attempt_at = NULL, delivered_at = ?2
                             WHERE id = ?1 AND state = {pending}",
                            delivered = DeliveryState::Delivered.code(),
                            pending = DeliveryState::Pending.code(),
                        ))?
                        .execute(params![id, ms(*delivered_at)])?;
                    }
                    AttemptOutcome::Retry { error, next_attempt_at } => {
                        conn.prepare_cached(sql!(
                            "UPDATE messages SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                             WHERE id = ?1 AND state = {pending}",
                            pending = DeliveryState::Pending.code(),
                        ))?
                        .execute(params![id, error, ms(*next_attempt_at)])?;
                    }
                    AttemptOutcome::Rejected { error } => {
                        let changed = conn
                            .prepare_cached(sql!(
                                "UPDATE messages SET state = {rejected}, attempts = attempts + 1, last_error = ?2, next_attempt_at = NULL
                                 WHERE id = ?1 AND state = {pending}",
                                rejected = DeliveryState::Rejected.code(),
                                pending = DeliveryState::Pending.code(),
                            ))?
                            .execute(params![id, error])?;
                        if changed > 0 {
                            refused_ack_event(conn, id, error, at, words.refused_ack)?;
                        }
                    }
                }
            }
            Ok(())
        })
        .await?;
        if refused {
            self.notify_events();
        }
        Ok(())
    }
}
