//! Triage in tests: what a desk's agency owes, ranked, and the ids in
//! their order.

use tocsin_proto::pb;

use crate::flow::{Desk, id_of};

impl Desk {
    /// What this agency owes, first to look at first (at most 1,000).
    pub async fn triage(&self) -> Result<Vec<pb::TriageItem>, tonic::Status> {
        Ok(self
            .client()
            .triage(pb::TriageRequest { limit: 1000 })
            .await?
            .into_inner()
            .items)
    }

    /// The ids of [`triage`](Self::triage), in order.
    pub async fn triage_ids(&self) -> Result<Vec<String>, tonic::Status> {
        Ok(self
            .triage()
            .await?
            .iter()
            .filter_map(|i| i.record.as_ref().map(id_of))
            .collect())
    }
}
