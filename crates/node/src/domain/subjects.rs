//! Subjects: raising REPEATED_UNANSWERED, and what this node holds about a
//! subject.

use crate::Error;
use crate::views;
use tocsin_proto::pb;
use tocsin_store::Direction;

use super::Node;

impl Node {
    /// After deadlines passed: for each (alert, agency that did not answer),
    /// raises REPEATED_UNANSWERED on the alert's subject if that agency now
    /// leaves two or more alerts about it unanswered.
    pub(crate) async fn check_repeated(
        &self,
        flagged: &[tocsin_store::Flagged],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let checks: Vec<(String, String)> = flagged
            .iter()
            .map(|f| match f.direction {
                Direction::Outbound => (f.alert_id.clone(), f.agency.clone()),
                Direction::Inbound => (f.alert_id.clone(), self.agency.to_string()),
            })
            .collect();
        for flag in self
            .store
            .check_repeated(checks, self.agency.to_string(), now)
            .await?
        {
            tracing::error!(
                subject = %flag.label,
                recipient = %flag.recipient,
                alerts = %flag.alert_ids.join(","),
                "REPEATED_UNANSWERED"
            );
        }
        Ok(())
    }

    /// Every REPEATED_UNANSWERED flag.
    pub(crate) async fn subject_flags(&self) -> Result<Vec<pb::SubjectFlag>, Error> {
        Ok(self
            .store
            .subject_flags()
            .await?
            .iter()
            .map(views::subject_flag)
            .collect())
    }

    /// Everything about the subject `query` names.
    pub(crate) async fn subject(&self, query: &str) -> Result<pb::SubjectRecord, Error> {
        let query = query.trim();
        if query.is_empty() {
            return Err(tocsin_core::ValidationError::new("query", "must not be empty").into());
        }
        let (doc, name) = tocsin_core::subject::query_keys(query);
        let (alert_ids, keys) = self.store.find_subject(query.to_owned(), doc, name).await?;
        if alert_ids.is_empty() {
            return Err(Error::NotFound(format!(
                "no alert on {} about {query:?}",
                self.agency
            )));
        }
        let mut alerts = Vec::with_capacity(alert_ids.len());
        for id in &alert_ids {
            if let Some(r) = self.get(id).await? {
                alerts.push(r);
            }
        }
        let flags = self
            .store
            .subject_flags()
            .await?
            .iter()
            .filter(|f| {
                keys.contains(&f.subject) || f.alert_ids.iter().any(|a| alert_ids.contains(a))
            })
            .map(views::subject_flag)
            .collect();
        Ok(pb::SubjectRecord {
            keys,
            alerts,
            flags,
        })
    }
}
