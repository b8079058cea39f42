//! Subjects: raising REPEATED_UNANSWERED, and what this node holds about a
//! subject.

use crate::Error;
use crate::views::{self, SubjectFlagView, SubjectView};
use tocsin_store::Direction;

use super::Node;

/// How many alerts about one subject one agency must leave unanswered past
/// their deadlines before the subject is flagged REPEATED_UNANSWERED.
pub(crate) const REPEATED_UNANSWERED_THRESHOLD: usize = 2;

impl Node {
    /// After deadlines passed: for each (alert, agency that did not answer),
    /// raises REPEATED_UNANSWERED on the alert's subject if that agency now
    /// leaves [`REPEATED_UNANSWERED_THRESHOLD`] or more alerts about it
    /// unanswered.
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
            .check_repeated(tocsin_store::RepeatedCheck {
                checks,
                own_agency: self.agency.to_string(),
                now,
                threshold: REPEATED_UNANSWERED_THRESHOLD,
                detail: super::wording::repeated,
            })
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
    pub(crate) async fn subject_flags(&self) -> Result<Vec<SubjectFlagView>, Error> {
        Ok(self
            .store
            .subject_flags()
            .await?
            .iter()
            .map(views::subject_flag)
            .collect())
    }

    /// Everything about the subject `query` names.
    pub(crate) async fn subject(&self, query: &str) -> Result<SubjectView, Error> {
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
        Ok(SubjectView {
            keys,
            alerts,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, flash_about};
    use crate::Error;

    #[tokio::test]
    async fn a_second_unanswered_alert_about_a_subject_raises_the_flag() {
        let f = Fixture::new();
        let first = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
        f.clock.advance(chrono::Duration::minutes(1));
        let second = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;

        // The first deadline passes: one unanswered alert is no pattern.
        f.clock.set(first.due_at.unwrap());
        let flagged = f
            .store
            .flag_overdue(f.node.now(), super::super::wording::flagged)
            .await
            .unwrap();
        assert_eq!(flagged.len(), 1);
        f.node.check_repeated(&flagged, f.node.now()).await.unwrap();
        assert!(f.node.subject_flags().await.unwrap().is_empty());

        // The second one passes: two about the same person, unanswered.
        f.clock.set(second.due_at.unwrap());
        let flagged = f
            .store
            .flag_overdue(f.node.now(), super::super::wording::flagged)
            .await
            .unwrap();
        assert_eq!(flagged.len(), 1);
        f.node.check_repeated(&flagged, f.node.now()).await.unwrap();
        let flags = f.node.subject_flags().await.unwrap();
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!(flags[0].recipient, "TR-MIT");
        assert_eq!(
            flags[0].alert_ids,
            [first.alert.id.to_string(), second.alert.id.to_string()]
        );
        assert_eq!(flags[0].flagged_at, second.due_at.unwrap());

        let subject = f.node.subject("Jean Dupont").await.unwrap();
        assert_eq!(subject.alerts.len(), 2);
        assert_eq!(subject.flags, flags);
    }

    #[tokio::test]
    async fn a_subject_query_names_what_is_wrong() {
        let f = Fixture::new();
        let err = f.node.subject("  ").await.expect_err("empty");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m == "invalid field `query`: must not be empty"),
            "{err:?}"
        );
        let err = f.node.subject("Nobody").await.expect_err("unknown");
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    }
}
