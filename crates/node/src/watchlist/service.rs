//! The watchlist gRPC handlers: authenticate the caller, call the domain,
//! map its error to a status.

use prost::Message;
use tocsin_core::{AgencyId, Identity, to_timestamp};
use tocsin_proto::{pb, wire};
use tocsin_trust::tls::PeerInfo;
use tonic::{Request, Response, Status};

use super::Watchlists;

fn caller<T>(req: &Request<T>) -> Result<&Identity, Status> {
    req.extensions()
        .get::<PeerInfo>()
        .map(|p| &p.identity)
        .ok_or_else(|| Status::unauthenticated("no verified client certificate"))
}

/// Runs a change to completion even if its caller goes away (see
/// `crate::service`): a change committed must reach its followers.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, crate::Error>> + Send + 'static,
) -> Result<T, Status> {
    match tokio::spawn(work).await {
        Ok(outcome) => Ok(outcome?),
        Err(e) => {
            tracing::error!(error = %e, "a watchlist request's work failed");
            Err(Status::internal("the request failed on this node"))
        }
    }
}

/// `WatchlistSync`, for peer agency nodes.
#[derive(Debug, Clone)]
pub(crate) struct SyncService {
    pub(crate) watchlists: Watchlists,
}

impl SyncService {
    fn reader<T>(&self, req: &Request<T>) -> Result<AgencyId, Status> {
        match caller(req)? {
            Identity::Agency(a) if a != &self.watchlists.agency => Ok(a.clone()),
            other => Err(Status::permission_denied(format!(
                "{other} cannot pull this node's watchlist: only other agencies' nodes can"
            ))),
        }
    }
}

#[tonic::async_trait]
impl pb::watchlist_sync_server::WatchlistSync for SyncService {
    async fn pull_changes(
        &self,
        req: Request<pb::PullChangesRequest>,
    ) -> Result<Response<pb::PullChangesResponse>, Status> {
        let reader = self.reader(&req)?;
        let req = req.into_inner();
        Ok(Response::new(
            self.watchlists
                .page(&reader, req.after_seq, req.limit)
                .await?,
        ))
    }

    type FollowHeadStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::WatchlistHead, Status>>;

    async fn follow_head(
        &self,
        req: Request<pb::FollowHeadRequest>,
    ) -> Result<Response<Self::FollowHeadStream>, Status> {
        self.reader(&req)?;
        Ok(Response::new(self.watchlists.follow()))
    }
}

/// `WatchlistDesk`, for this agency's operators.
#[derive(Debug, Clone)]
pub(crate) struct DeskService {
    pub(crate) watchlists: Watchlists,
    /// Sends the hit reports screens find.
    pub(crate) node: crate::domain::Node,
}

impl DeskService {
    fn operator<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        match caller(req)? {
            op @ Identity::Operator { agency, .. } if agency == &self.watchlists.agency => {
                Ok(op.clone())
            }
            other => Err(Status::permission_denied(format!(
                "{other} is not an operator of {}",
                self.watchlists.agency
            ))),
        }
    }
}

fn record(e: tocsin_store::HeldEntry) -> Result<pb::WatchlistRecord, Status> {
    let entry = pb::WatchlistEntry::decode(e.entry.as_slice()).map_err(|err| {
        crate::Error::corrupt(
            format!("stored entry {} of {} is unreadable", e.reference, e.owner),
            err,
        )
    })?;
    Ok(pb::WatchlistRecord {
        entry: Some(entry),
        seq: e.seq,
        changed_at: Some(to_timestamp(e.changed_at)),
    })
}

#[tonic::async_trait]
impl tocsin_proto::desk::watchlist_desk_server::WatchlistDesk for DeskService {
    async fn add_entries(
        &self,
        req: Request<pb::AddEntriesRequest>,
    ) -> Result<Response<pb::AddEntriesResponse>, Status> {
        self.operator(&req)?;
        let w = self.watchlists.clone();
        let entries = req.into_inner().entries;
        let entries = detached(async move { w.add(entries).await }).await?;
        Ok(Response::new(pb::AddEntriesResponse { entries }))
    }

    async fn update_entry(
        &self,
        req: Request<pb::UpdateEntryRequest>,
    ) -> Result<Response<pb::UpdateEntryResponse>, Status> {
        self.operator(&req)?;
        let w = self.watchlists.clone();
        let entry = req
            .into_inner()
            .entry
            .ok_or_else(|| Status::invalid_argument("invalid field `entry`: missing"))?;
        let entry = detached(async move { w.update(entry).await }).await?;
        Ok(Response::new(pb::UpdateEntryResponse {
            entry: Some(entry),
        }))
    }

    async fn remove_entry(
        &self,
        req: Request<pb::RemoveEntryRequest>,
    ) -> Result<Response<pb::RemoveEntryResponse>, Status> {
        self.operator(&req)?;
        let w = self.watchlists.clone();
        let reference = req.into_inner().r#ref;
        let seq = detached(async move { w.remove(reference).await }).await?;
        Ok(Response::new(pb::RemoveEntryResponse { seq }))
    }

    async fn list_entries(
        &self,
        req: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        self.operator(&req)?;
        let owner = req.into_inner().owner;
        let rows = self.watchlists.entries(&owner).await?;
        let entries = rows.into_iter().map(record).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListEntriesResponse { entries }))
    }

    async fn sync_status(
        &self,
        req: Request<pb::SyncStatusRequest>,
    ) -> Result<Response<pb::SyncStatusResponse>, Status> {
        self.operator(&req)?;
        let owners = self
            .watchlists
            .sync_status()
            .await?
            .into_iter()
            .map(|o| pb::OwnerSyncStatus {
                owner: o.cursor.owner,
                cursor: o.cursor.applied.seq,
                head: o.cursor.head.seq,
                behind_changes: o.behind_changes,
                behind_seconds: o.behind_seconds,
                heard_at: o.cursor.heard_at.map(to_timestamp),
                last_refusal: o.cursor.refusal.unwrap_or_default(),
                held: o.cursor.held,
            })
            .collect();
        Ok(Response::new(pb::SyncStatusResponse { owners }))
    }

    async fn screen(
        &self,
        req: Request<pb::ScreenRequest>,
    ) -> Result<Response<wire::ScreenResponse>, Status> {
        let operator = self.operator(&req)?;
        let request = req.into_inner();
        let query = crate::screening::query_of(&request).map_err(crate::Error::from)?;
        let mut results = self
            .screen_and_report(operator, vec![(request, query)])
            .await?;
        Ok(Response::new(results.pop().unwrap_or_default()))
    }

    async fn screen_batch(
        &self,
        req: Request<pb::ScreenBatchRequest>,
    ) -> Result<Response<wire::ScreenBatchResponse>, Status> {
        let operator = self.operator(&req)?;
        let requests = req.into_inner().requests;
        if requests.len() > crate::screening::MAX_BATCH {
            return Err(crate::Error::InvalidArgument(format!(
                "invalid field `requests`: {} requests, at most {} in one batch",
                requests.len(),
                crate::screening::MAX_BATCH
            ))
            .into());
        }
        let mut checked = Vec::with_capacity(requests.len());
        for (i, request) in requests.into_iter().enumerate() {
            let query = crate::screening::query_of(&request).map_err(|e| {
                crate::Error::from(tocsin_core::ValidationError::new(
                    format!("requests[{i}].{}", e.field),
                    e.problem,
                ))
            })?;
            checked.push((request, query));
        }
        let results = self.screen_and_report(operator, checked).await?;
        Ok(Response::new(wire::ScreenBatchResponse { results }))
    }
}

impl DeskService {
    /// Screens, then reports the hits on other agencies' entries; the
    /// reporting runs to completion even if the caller goes away, so a
    /// sighting found is never dropped.
    async fn screen_and_report(
        &self,
        operator: Identity,
        checked: Vec<(pb::ScreenRequest, tocsin_screening::Query)>,
    ) -> Result<Vec<wire::ScreenResponse>, Status> {
        let w = &self.watchlists;
        let mut results = w.screening.screen(checked, w.clock.now()).await?;
        if !results.iter().any(|r| r.matches.iter().any(|m| m.hit)) {
            return Ok(results);
        }
        let node = self.node.clone();
        let agency = w.agency.clone();
        detached(async move {
            super::report::report_hits(&node, &agency, &operator, &mut results).await;
            Ok(results)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_entry_that_does_not_decode_is_data_loss_naming_it() {
        let held = tocsin_store::HeldEntry {
            owner: "fr-dgsi".into(),
            reference: "FR-1".into(),
            // A field of tag 0 is never valid protobuf.
            entry: vec![0x00, 0x01],
            seq: 1,
            changed_at: chrono::Utc::now(),
        };
        let status = record(held).expect_err("garbage is not an entry");
        assert_eq!(status.code(), tonic::Code::DataLoss);
        assert!(
            status.message().contains("FR-1") && status.message().contains("fr-dgsi"),
            "{}",
            status.message()
        );
    }
}
