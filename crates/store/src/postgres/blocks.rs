//! [`crate::BlockStore`] on PostgreSQL; the trait says what each method
//! promises.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::Postgres;
use crate::blocks::*;
use crate::error::Error;
use crate::millis::ms;

#[async_trait]
impl BlockStore for Postgres {
    async fn block_peer(&self, peer: &str, reason: &str, at: DateTime<Utc>) -> Result<bool, Error> {
        let (peer, reason) = (peer.to_owned(), reason.to_owned());
        self.write(move |tx| {
            Box::pin(async move {
                let before: Option<String> = tx
                    .client()
                    .query_opt("SELECT reason FROM peer_blocks WHERE peer = $1", &[&peer])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                match &before {
                    Some(r) if *r == reason => {}
                    Some(_) => {
                        tx.client()
                            .execute(
                                "UPDATE peer_blocks SET reason = $2 WHERE peer = $1",
                                &[&peer, &reason],
                            )
                            .await?;
                    }
                    None => {
                        tx.client()
                            .execute(
                                "INSERT INTO peer_blocks (peer, reason, since) VALUES ($1, $2, $3)",
                                &[&peer, &reason, &ms(at)],
                            )
                            .await?;
                    }
                }
                Ok(before.is_none())
            })
        })
        .await
    }

    async fn unblock_peer(&self, peer: &str) -> Result<bool, Error> {
        let peer = peer.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .client()
                    .execute("DELETE FROM peer_blocks WHERE peer = $1", &[&peer])
                    .await?
                    > 0)
            })
        })
        .await
    }

    async fn peer_block(&self, peer: &str) -> Result<Option<String>, Error> {
        let peer = peer.to_owned();
        self.read(move |client| {
            Box::pin(async move {
                Ok(client
                    .query_opt("SELECT reason FROM peer_blocks WHERE peer = $1", &[&peer])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::BlockStore;
    use crate::postgres::testing::Both;

    /// The same calls on SQLite and on PostgreSQL give the same answers.
    #[tokio::test]
    async fn blocking_a_peer_answers_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let reason = "FR-DGSI's certificates are revoked (CRL)";
        for store in [&both.sqlite as &dyn BlockStore, &both.postgres] {
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
            assert!(
                !store
                    .block_peer("FR-DGSI", "other", Utc::now())
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.peer_block("FR-DGSI").await.unwrap().as_deref(),
                Some("other")
            );
            assert!(store.unblock_peer("FR-DGSI").await.unwrap());
            assert!(!store.unblock_peer("FR-DGSI").await.unwrap());
            assert_eq!(store.peer_block("FR-DGSI").await.unwrap(), None);
        }
    }
}
