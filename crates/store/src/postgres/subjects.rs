//! [`crate::SubjectStore`] on PostgreSQL; the trait says what each method
//! promises, and `sqlite/subjects.rs` is the behaviour this matches.

use super::db::Tx;
use crate::error::Error;

/// Links `alert_id` to its subjects' match keys, in the caller's
/// transaction; a key already linked stays as it is.
pub(crate) async fn insert_keys(tx: &mut Tx, alert_id: &str, keys: &[String]) -> Result<(), Error> {
    for k in keys {
        tx.client()
            .execute(
                "INSERT INTO subject_keys (key, alert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[k, &alert_id],
            )
            .await?;
    }
    Ok(())
}
