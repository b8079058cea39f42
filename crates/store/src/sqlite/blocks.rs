//! [`crate::BlockStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use async_trait::async_trait;

use super::db::Sqlite;
use super::sql::ms;
use crate::blocks::*;
use crate::error::Error;

#[async_trait]
impl BlockStore for Sqlite {
    async fn block_peer(&self, peer: &str, reason: &str, at: DateTime<Utc>) -> Result<bool, Error> {
        let (peer, reason) = (peer.to_owned(), reason.to_owned());
        self.write(move |conn| {
            let before: Option<String> = conn
                .prepare_cached("SELECT reason FROM peer_blocks WHERE peer = ?1")?
                .query_row([&peer], |r| r.get(0))
                .optional()?;
            match &before {
                Some(r) if *r == reason => {}
                Some(_) => {
                    conn.prepare_cached("UPDATE peer_blocks SET reason = ?2 WHERE peer = ?1")?
                        .execute(params![peer, reason])?;
                }
                None => {
                    conn.prepare_cached(
                        "INSERT INTO peer_blocks (peer, reason, since) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![peer, reason, ms(at)])?;
                }
            }
            Ok(before.is_none())
        })
        .await
    }

    async fn unblock_peer(&self, peer: &str) -> Result<bool, Error> {
        let peer = peer.to_owned();
        self.write(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM peer_blocks WHERE peer = ?1")?
                .execute([&peer])?
                > 0)
        })
        .await
    }

    async fn peer_block(&self, peer: &str) -> Result<Option<String>, Error> {
        let peer = peer.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT reason FROM peer_blocks WHERE peer = ?1")?
                .query_row([&peer], |r| r.get(0))
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::sqlite::records::tests::alert;
    use crate::{Store, StoreOptions};

    #[tokio::test]
    async fn a_blocked_peers_pending_deliveries_read_as_blocked_and_stay_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let reason = "FR-DGSI's certificates are revoked (CRL)";
        assert!(
            store
                .block_peer("FR-DGSI", reason, Utc::now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .block_peer("FR-DGSI", reason, Utc::now())
                .await
                .unwrap()
        );
        let stored = store
            .insert_outbound(alert("A1", 1), vec!["FR-DGSI".into(), "BE-VSSE".into()])
            .await
            .unwrap();
        let blocked = |h: &crate::AlertHistory, r: &str| {
            h.deliveries
                .iter()
                .find(|d| d.recipient == r)
                .unwrap()
                .blocked
                .clone()
        };
        assert_eq!(blocked(&stored, "FR-DGSI").as_deref(), Some(reason));
        assert_eq!(blocked(&stored, "BE-VSSE"), None);
        // Blocked is not given up: the outbox still finds it due.
        let due = store
            .due_deliveries("FR-DGSI", Utc::now(), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            store.peer_block("FR-DGSI").await.unwrap().as_deref(),
            Some(reason)
        );

        assert!(store.unblock_peer("FR-DGSI").await.unwrap());
        assert!(!store.unblock_peer("FR-DGSI").await.unwrap());
        let h = store.alert_history("A1").await.unwrap().unwrap();
        assert_eq!(blocked(&h, "FR-DGSI"), None);
        assert_eq!(store.peer_block("FR-DGSI").await.unwrap(), None);
    }
}
