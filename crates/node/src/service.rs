//! The gRPC handlers: authenticate the caller from its verified certificate,
//! convert, call the domain layer, map its error to a status.
//!
//! A call that changes state runs in a task of its own (`detached`):
//! tonic drops a handler's future when its caller goes away (a client
//! timeout, a reset link), and a domain call dropped between its commit
//! and what must follow it (waking the outbox, telling the tracker of a
//! new deadline) would leave committed work that nobody acts on.
//!
//! The domain speaks in domain types; [`convert`] turns requests into them
//! and its views into the wire records.

use std::future::Future;
use std::pin::Pin;

use tocsin_core::{Identity, ValidationError};
use tocsin_proto::pb;
use tocsin_store::Direction;
use tocsin_trust::tls::PeerInfo;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::domain::{Node, Open};

mod convert;

/// Runs `work` to the end even if the request that started it is
/// cancelled; the caller, if still there, gets its outcome.
async fn detached<T>(
    work: impl Future<Output = Result<T, crate::Error>> + Send + 'static,
) -> Result<T, Status>
where
    T: Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(outcome) => Ok(outcome?),
        Err(e) => {
            tracing::error!(error = %e, "a request's work failed");
            Err(Status::internal("the request failed on this node"))
        }
    }
}

fn caller<T>(req: &Request<T>) -> Result<&Identity, Status> {
    req.extensions()
        .get::<PeerInfo>()
        .map(|p| &p.identity)
        .ok_or_else(|| Status::unauthenticated("no verified client certificate"))
}

/// The federation service, for peer agency nodes.
#[derive(Debug, Clone)]
pub(crate) struct FederationService {
    pub(crate) node: Node,
    pub(crate) gate: std::sync::Arc<crate::admission::PeerGate>,
}

impl FederationService {
    /// The calling agency, once it has a turn (see [`crate::admission`]).
    async fn admit<T>(
        &self,
        req: &Request<T>,
    ) -> Result<(tocsin_core::AgencyId, crate::admission::Turn), Status> {
        let agency = calling_agency(req)?;
        match self.gate.admit(&agency).await {
            Ok(turn) => Ok((agency, turn)),
            Err(busy) => {
                // A refusal answered at once invites an immediate retry,
                // and a flooder's refusals would then cost more than its
                // accepted requests. Holding each for a moment keeps its
                // stream slot busy, which caps the rate of refusals per
                // connection; our own outbox, well under the limits, is
                // never refused.
                tokio::time::sleep(crate::admission::REFUSAL_DELAY).await;
                Err(Status::resource_exhausted(format!(
                    "{agency} has {} requests in progress and {} waiting on this node; retry later",
                    busy.in_progress, busy.waiting
                )))
            }
        }
    }
}

fn calling_agency<T>(req: &Request<T>) -> Result<tocsin_core::AgencyId, Status> {
    match caller(req)? {
        Identity::Agency(a) => Ok(a.clone()),
        other => Err(Status::permission_denied(format!(
            "{other} cannot call the federation service: only agency nodes can"
        ))),
    }
}

#[tonic::async_trait]
impl pb::federation_server::Federation for FederationService {
    // Each call keeps the peer's turn until its work is done, cancelled
    // or not, so the admission limits count it.
    async fn remind(
        &self,
        req: Request<pb::RemindRequest>,
    ) -> Result<Response<pb::RemindResponse>, Status> {
        let (agency, turn) = self.admit(&req).await?;
        let node = self.node.clone();
        let reminder = convert::required_envelope(req.into_inner().reminder, "reminder")?;
        detached(async move {
            let _turn = turn;
            node.receive_reminder(&agency, reminder).await
        })
        .await?;
        Ok(Response::new(pb::RemindResponse {}))
    }

    async fn notify_escalation(
        &self,
        req: Request<pb::NotifyEscalationRequest>,
    ) -> Result<Response<pb::NotifyEscalationResponse>, Status> {
        let (agency, turn) = self.admit(&req).await?;
        let node = self.node.clone();
        let notice = convert::required_envelope(req.into_inner().notice, "notice")?;
        detached(async move {
            let _turn = turn;
            node.receive_notice(&agency, notice).await
        })
        .await?;
        Ok(Response::new(pb::NotifyEscalationResponse {}))
    }
    async fn acknowledge(
        &self,
        req: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResponse>, Status> {
        let (agency, turn) = self.admit(&req).await?;
        let node = self.node.clone();
        let ack = convert::required_envelope(req.into_inner().acknowledgement, "acknowledgement")?;
        detached(async move {
            let _turn = turn;
            node.receive_ack(&agency, ack).await
        })
        .await?;
        Ok(Response::new(pb::AcknowledgeResponse {}))
    }

    async fn deliver(
        &self,
        req: Request<pb::DeliverRequest>,
    ) -> Result<Response<pb::DeliverResponse>, Status> {
        let (agency, turn) = self.admit(&req).await?;
        let node = self.node.clone();
        let alert = convert::required_envelope(req.into_inner().alert, "alert")?;
        let receipt = detached(async move {
            let _turn = turn;
            node.receive(&agency, alert).await
        })
        .await?;
        Ok(Response::new(pb::DeliverResponse {
            receipt: Some(receipt),
        }))
    }

    async fn deliver_batch(
        &self,
        req: Request<pb::DeliverBatchRequest>,
    ) -> Result<Response<pb::DeliverBatchResponse>, Status> {
        let (agency, turn) = self.admit(&req).await?;
        let alerts = req.into_inner().alerts;
        if alerts.is_empty() || alerts.len() > tocsin_proto::MAX_DELIVER_BATCH {
            let problem = format!(
                "{} alerts; a batch holds 1 to {}",
                alerts.len(),
                tocsin_proto::MAX_DELIVER_BATCH
            );
            return Err(Status::invalid_argument(
                ValidationError::new("alerts", problem).to_string(),
            ));
        }
        let node = self.node.clone();
        let outcomes = detached(async move {
            let _turn = turn;
            Ok(node.receive_batch(&agency, alerts).await)
        })
        .await?;
        let results = outcomes
            .into_iter()
            .map(|outcome| {
                let outcome = match outcome {
                    Ok(receipt) => pb::deliver_result::Outcome::Receipt(receipt),
                    Err(e) => {
                        let status = Status::from(e);
                        pb::deliver_result::Outcome::Refused(pb::Refusal {
                            code: status.code() as i32,
                            message: status.message().to_owned(),
                        })
                    }
                };
                pb::DeliverResult {
                    outcome: Some(outcome),
                }
            })
            .collect();
        Ok(Response::new(pb::DeliverBatchResponse { results }))
    }
}

/// The operator service, for this agency's analysts and tools.
#[derive(Debug, Clone)]
pub(crate) struct OperatorService {
    pub(crate) node: Node,
}

impl OperatorService {
    fn operator<'a, T>(&self, req: &'a Request<T>) -> Result<&'a Identity, Status> {
        match caller(req)? {
            id @ Identity::Operator { agency, .. } if agency == self.node.agency() => Ok(id),
            other => Err(Status::permission_denied(format!(
                "{other} cannot call the operator service of {}: only its own operators can",
                self.node.agency()
            ))),
        }
    }
}

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    type WatchEventsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

    async fn list_subject_flags(
        &self,
        req: Request<pb::ListSubjectFlagsRequest>,
    ) -> Result<Response<pb::ListSubjectFlagsResponse>, Status> {
        self.operator(&req)?;
        let flags = self.node.subject_flags().await?;
        Ok(Response::new(pb::ListSubjectFlagsResponse {
            flags: flags.iter().map(convert::subject_flag).collect(),
        }))
    }

    async fn get_subject(
        &self,
        req: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::SubjectRecord>, Status> {
        self.operator(&req)?;
        let subject = self.node.subject(&req.into_inner().query).await?;
        Ok(Response::new(convert::subject_record(&subject)))
    }

    async fn triage(
        &self,
        req: Request<pb::TriageRequest>,
    ) -> Result<Response<pb::TriageResponse>, Status> {
        self.operator(&req)?;
        let limit = match req.into_inner().limit {
            0 => 100,
            n => n.min(1000),
        };
        let items = self.node.triage(limit).await?;
        Ok(Response::new(pb::TriageResponse {
            items: items.iter().map(convert::triage_item).collect(),
        }))
    }

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.operator(&req)?;
        let events = self.node.watch(req.into_inner().after_id).await?;
        Ok(Response::new(Box::pin(events.map(|event| {
            event.map(|e| convert::event(&e)).map_err(Status::from)
        }))))
    }
    async fn acknowledge_alert(
        &self,
        req: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let operator = self.operator(&req)?.clone();
        let req = req.into_inner();
        let disposition = tocsin_core::alert::Disposition::from_wire(req.disposition)
            .map_err(crate::Error::from)?;
        let id = (!req.id.is_empty())
            .then(|| req.id.parse::<tocsin_core::AlertId>())
            .transpose()
            .map_err(|_| {
                Status::invalid_argument(
                    ValidationError::new("id", "not an acknowledgement id (a ULID)").to_string(),
                )
            })?;
        let node = self.node.clone();
        let ack = detached(async move {
            node.acknowledge(&operator, &req.alert_id, disposition, req.note, id)
                .await
        })
        .await?;
        Ok(Response::new(pb::AcknowledgeAlertResponse {
            acknowledgement: Some(convert::ack_record(&ack)),
        }))
    }

    async fn submit_alert(
        &self,
        req: Request<pb::SubmitAlertRequest>,
    ) -> Result<Response<pb::SubmitAlertResponse>, Status> {
        let operator = self.operator(&req)?.clone();
        let alert = req.into_inner().alert.ok_or_else(|| {
            Status::invalid_argument(ValidationError::new("alert", "missing").to_string())
        })?;
        let submission = convert::submission(alert, self.node.agency(), self.node.now())?;
        let node = self.node.clone();
        let record = detached(async move { node.submit(&operator, submission).await }).await?;
        Ok(Response::new(pb::SubmitAlertResponse {
            warnings: record.submission_warnings(),
            record: Some(convert::alert_record(&record)),
        }))
    }

    async fn get_alert(
        &self,
        req: Request<pb::GetAlertRequest>,
    ) -> Result<Response<pb::AlertRecord>, Status> {
        self.operator(&req)?;
        let id = req.into_inner().id;
        match self.node.get(&id).await? {
            Some(record) => Ok(Response::new(convert::alert_record(&record))),
            None => Err(crate::error::status(
                tonic::Code::NotFound,
                format!("no alert {id:?} on {}", self.node.agency()),
            )),
        }
    }

    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        self.operator(&req)?;
        let req = req.into_inner();
        let direction = match pb::Direction::try_from(req.direction) {
            Ok(pb::Direction::Outbound) => Some(Direction::Outbound),
            Ok(pb::Direction::Inbound) => Some(Direction::Inbound),
            Ok(pb::Direction::Unspecified) => None,
            Err(_) => {
                let problem = format!("unknown value {}", req.direction);
                return Err(Status::invalid_argument(
                    ValidationError::new("direction", problem).to_string(),
                ));
            }
        };
        let limit = match req.limit {
            0 => 100,
            n => n.min(1000),
        };
        let alerts = match pb::list_alerts_request::Filter::try_from(req.filter) {
            Ok(pb::list_alerts_request::Filter::Unspecified) => {
                self.node.list(direction, limit).await?
            }
            Ok(pb::list_alerts_request::Filter::Overdue) => {
                self.node.list_open(Open::Overdue, limit).await?
            }
            Ok(pb::list_alerts_request::Filter::Awaiting) => {
                self.node.list_open(Open::Awaiting, limit).await?
            }
            Ok(pb::list_alerts_request::Filter::Owed) => {
                self.node.list_open(Open::Owed, limit).await?
            }
            Err(_) => {
                let problem = format!("unknown value {}", req.filter);
                return Err(Status::invalid_argument(
                    ValidationError::new("filter", problem).to_string(),
                ));
            }
        };
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.iter().map(convert::alert_record).collect(),
        }))
    }
}
