//! The node's domain logic: accepting alerts from operators, receiving them
//! from peers, and answering queries. No SQL (that is the store's) and no TLS
//! (that is the trust crate's): callers arrive here already authenticated.

use std::sync::Arc;

use prost::Message;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Alert, AlertId, Clock, Identity, to_timestamp};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE, pb};
use tocsin_store::{Direction, InboundOutcome, NewAlert, Store};
use tocsin_trust::signing::digest;
use tocsin_trust::{Signer, Verifier};

use crate::Error;
use crate::outbox::OutboxHandle;
use crate::views;

/// Everything a node's handlers share.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) agency: AgencyId,
    pub(crate) federation: Arc<Federation>,
    pub(crate) store: Store,
    pub(crate) signer: Arc<Signer>,
    pub(crate) verifier: Verifier,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) outbox: OutboxHandle,
    /// Wakes the deadline tracker when a new deadline may come first.
    pub(crate) tracker: Arc<tokio::sync::Notify>,
    /// Turns true when the node shuts down; ends watch streams.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

fn late_phrase(late: chrono::Duration) -> String {
    if late <= chrono::Duration::zero() {
        return String::new();
    }
    let minutes = u64::try_from(late.num_minutes()).unwrap_or(0);
    format!(
        " (late by {})",
        humantime::format_duration(std::time::Duration::from_secs(minutes.max(1) * 60))
    )
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

fn new_alert_row(
    alert: &Alert,
    envelope: &pb::Envelope,
    digest: [u8; 32],
    stored_at: chrono::DateTime<chrono::Utc>,
    due_at: chrono::DateTime<chrono::Utc>,
) -> NewAlert {
    NewAlert {
        id: alert.id.to_string(),
        originator: alert.originator.to_string(),
        created_at: alert.created_at,
        stored_at,
        precedence: alert.precedence.to_wire(),
        category: alert.category.clone(),
        summary: alert.subjects_label(),
        digest: digest.to_vec(),
        envelope: envelope.encode_to_vec(),
        due_at,
    }
}

/// Which open items to list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Open {
    /// What we owe.
    Owed,
    /// What others owe us.
    Awaiting,
    /// Either, past its deadline.
    Overdue,
}

fn ack_row(
    ack: &tocsin_core::ack::Acknowledgement,
    envelope: &pb::Envelope,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> tocsin_store::NewAck {
    tocsin_store::NewAck {
        id: ack.id.to_string(),
        alert_id: ack.alert_id.to_string(),
        agency: ack.recipient.to_string(),
        operator: ack.operator.clone(),
        disposition: ack.disposition.to_wire(),
        note: ack.note.clone(),
        acknowledged_at: ack.acknowledged_at,
        stored_at,
        envelope: envelope.encode_to_vec(),
    }
}

impl Node {
    /// The agency this node speaks for.
    pub(crate) fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Accepts an alert from one of this agency's operators. Returns once the
    /// alert and its outbox entries are committed; delivery follows.
    pub(crate) async fn submit(
        &self,
        operator: &Identity,
        mut wire: pb::Alert,
    ) -> Result<pb::AlertRecord, Error> {
        if operator.agency() != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        if !wire.originator.is_empty() && wire.originator != self.agency.as_str() {
            return Err(Error::PermissionDenied(format!(
                "originator {:?} is not this node's agency {}: an operator sends only for its own agency",
                wire.originator, self.agency
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let client_id = !wire.id.is_empty();
        if !client_id {
            wire.id = AlertId::generate().to_string();
        }
        wire.originator = self.agency.to_string();
        wire.created_at = Some(to_timestamp(now));
        let alert = Alert::try_from(wire)?;
        alert.check_timely(now)?;
        for (i, r) in alert.recipients.iter().enumerate() {
            if !self.federation.is_member(r) {
                return Err(Error::InvalidArgument(format!(
                    "invalid field `recipients[{i}]`: {r} is not an agency of federation {}",
                    self.federation.id()
                )));
            }
        }
        if client_id && let Some(existing) = self.resubmission(&alert).await? {
            return Ok(existing);
        }

        let payload = pb::Alert::from(&alert).encode_to_vec();
        let envelope = self.signer.sign(ALERT_PAYLOAD_TYPE, payload);
        let due_at = self.federation.deadlines.due_at(&alert);
        let row = new_alert_row(&alert, &envelope, digest(&envelope), now, due_at);
        let recipients: Vec<String> = alert.recipients.iter().map(ToString::to_string).collect();
        match self.store.insert_outbound(row, recipients).await {
            Ok(()) => {}
            Err(tocsin_store::Error::Conflict(_)) => {
                // Lost a race with an identical resubmission, or the id is taken.
                return match self.resubmission(&alert).await? {
                    Some(existing) => Ok(existing),
                    None => Err(Error::AlreadyExists(format!(
                        "alert {} already exists",
                        alert.id
                    ))),
                };
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(alert = %alert.id, precedence = %alert.precedence, recipients = alert.recipients.len(), "alert accepted");
        self.outbox.wake(&alert.recipients);
        self.tracker.notify_one();
        self.get(&alert.id.to_string())
            .await?
            .ok_or_else(|| Error::Unavailable("alert vanished after commit".into()))
    }

    /// If an alert with this id is stored: the stored record when it is the
    /// same alert (a retried submission), `AlreadyExists` otherwise.
    async fn resubmission(&self, alert: &Alert) -> Result<Option<pb::AlertRecord>, Error> {
        let Some(row) = self.store.alert(&alert.id.to_string()).await? else {
            return Ok(None);
        };
        let same = row.direction == Direction::Outbound
            && views::decode_alert(&row.envelope)
                .map(|stored| {
                    let mut candidate = alert.clone();
                    candidate.created_at = stored.created_at;
                    candidate == stored
                })
                .unwrap_or(false);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "alert {} already exists with different content",
                alert.id
            )));
        }
        let deliveries = self.store.deliveries(&row.id).await?;
        let acks = self.store.acks(&row.id).await?;
        Ok(Some(views::record(&row, &deliveries, &acks)?))
    }

    /// Receives an alert delivered by the peer `caller`. Returns the signed
    /// receipt once the alert is committed; the same alert again gets the
    /// same receipt.
    pub(crate) async fn receive(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<pb::Envelope, Error> {
        let envelope = envelope.ok_or_else(|| {
            Error::InvalidArgument("invalid field `alert`: missing envelope".into())
        })?;
        let verified = self
            .verifier
            .verify(&envelope, ALERT_PAYLOAD_TYPE)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if &verified.signer != caller {
            return Err(Error::PermissionDenied(format!(
                "alert signed by {} cannot be delivered by {caller}",
                verified.signer
            )));
        }
        let wire = pb::Alert::decode(envelope.payload.as_slice()).map_err(|e| {
            Error::InvalidArgument(format!("envelope payload is not an alert: {e}"))
        })?;
        let alert = Alert::try_from(wire)?;
        if &alert.originator != caller {
            return Err(Error::PermissionDenied(format!(
                "originator {} is not the calling agency {caller}",
                alert.originator
            )));
        }
        if !alert.is_releasable_to(&self.agency) {
            return Err(Error::PermissionDenied(format!(
                "alert {} is not releasable to {}",
                alert.id, self.agency
            )));
        }

        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let receipt = pb::Receipt {
            alert_id: alert.id.to_string(),
            alert_digest: verified.digest.to_vec(),
            recipient: self.agency.to_string(),
            received_at: Some(to_timestamp(now)),
        };
        let receipt = self
            .signer
            .sign(RECEIPT_PAYLOAD_TYPE, receipt.encode_to_vec());
        let due_at = self.federation.deadlines.due_at(&alert);
        let row = new_alert_row(&alert, &envelope, verified.digest, now, due_at);
        match self
            .store
            .insert_inbound(row, receipt.encode_to_vec())
            .await
        {
            Ok(InboundOutcome::Stored) => {
                self.tracker.notify_one();
                tracing::info!(alert = %alert.id, from = %caller, precedence = %alert.precedence, "alert received");
                Ok(receipt)
            }
            Ok(InboundOutcome::Duplicate(stored)) => pb::Envelope::decode(stored.as_slice())
                .map_err(|e| Error::Unavailable(format!("stored receipt unreadable: {e}"))),
            Err(tocsin_store::Error::Conflict(id)) => Err(Error::AlreadyExists(format!(
                "alert {id} was already received with different content"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// One alert, sent or received.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<pb::AlertRecord>, Error> {
        let Some(row) = self.store.alert(id).await? else {
            return Ok(None);
        };
        let deliveries = self.store.deliveries(id).await?;
        let acks = self.store.acks(id).await?;
        Ok(Some(views::record(&row, &deliveries, &acks)?))
    }

    /// Alerts, newest first.
    pub(crate) async fn list(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<pb::AlertRecord>, Error> {
        let rows = self.store.list_alerts(direction, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (a, d) in &rows {
            let acks = self.store.acks(&a.id).await?;
            out.push(views::record(a, d, &acks)?);
        }
        Ok(out)
    }

    /// Open items, soonest deadline first.
    pub(crate) async fn list_open(
        &self,
        which: Open,
        limit: u32,
    ) -> Result<Vec<pb::AlertRecord>, Error> {
        let rows = match which {
            Open::Owed => self.store.list_owed(limit).await?,
            Open::Awaiting => self.store.list_awaiting(limit).await?,
            Open::Overdue => self.store.list_overdue(limit).await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for a in &rows {
            let deliveries = self.store.deliveries(&a.id).await?;
            let acks = self.store.acks(&a.id).await?;
            out.push(views::record(a, &deliveries, &acks)?);
        }
        Ok(out)
    }

    /// Streams events: first those after `after` (if given), then new ones
    /// as they are committed, until the client goes away or the node stops.
    pub(crate) fn watch(
        &self,
        after: Option<u64>,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<pb::Event, tonic::Status>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.store.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let signal = store.event_signal();
            let mut last = match after {
                Some(id) => id,
                None => match store.last_event_id().await {
                    Ok(id) => id,
                    Err(e) => {
                        let _ = tx.send(Err(Error::from(e).into())).await;
                        return;
                    }
                },
            };
            loop {
                // Register before reading: an event committed in between
                // still wakes us.
                let changed = signal.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let batch = match store.events_after(last, 256).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(Error::from(e).into())).await;
                        return;
                    }
                };
                let full = batch.len() == 256;
                for e in batch {
                    last = e.id;
                    if tx.send(Ok(views::event(&e))).await.is_err() {
                        return; // the client went away
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    _ = &mut changed => {}
                    _ = tx.closed() => return,
                    _ = shutdown.changed() => return,
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// An operator of this agency acknowledges an alert it received. The
    /// acknowledgement is signed, stored and queued for the originator in one
    /// transaction.
    pub(crate) async fn acknowledge(
        &self,
        operator: &Identity,
        alert_id: &str,
        disposition: i32,
        note: String,
    ) -> Result<pb::AckRecord, Error> {
        let Identity::Operator { agency, name } = operator else {
            return Err(Error::PermissionDenied(format!(
                "{operator} is not an operator"
            )));
        };
        if agency != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        let disposition = tocsin_core::alert::Disposition::from_wire(disposition)?;
        tocsin_core::ack::check_note(&note)?;
        let Some(row) = self.store.alert(alert_id).await? else {
            return Err(Error::NotFound(format!(
                "no alert {alert_id:?} on {}",
                self.agency
            )));
        };
        if row.direction != Direction::Inbound {
            return Err(Error::PermissionDenied(format!(
                "alert {alert_id} was sent by {}: only its recipients acknowledge it",
                self.agency
            )));
        }
        let alert = views::decode_alert(&row.envelope)?;
        let digest: [u8; 32] = row
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| Error::Unavailable("stored digest is not 32 bytes".into()))?;
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let ack = tocsin_core::ack::Acknowledgement {
            id: AlertId::generate(),
            alert_id: alert.id,
            alert_digest: digest,
            recipient: self.agency.clone(),
            operator: name.clone(),
            disposition,
            note,
            acknowledged_at: now,
        };
        let envelope = self.signer.sign(
            tocsin_proto::ACK_PAYLOAD_TYPE,
            pb::Acknowledgement::from(&ack).encode_to_vec(),
        );
        let stored = ack_row(&ack, &envelope, now);
        let late = row.due_at.map(|due| now - due).unwrap_or_default();
        let detail = format!("we acknowledged {disposition}{}", late_phrase(late));
        self.store
            .insert_own_ack(stored.clone(), alert.originator.to_string(), detail)
            .await
            .map_err(|e| match e {
                tocsin_store::Error::NotFound(m) => Error::NotFound(m),
                other => other.into(),
            })?;
        tracing::info!(alert = %alert.id, disposition = %disposition, operator = %name, "alert acknowledged");
        self.outbox.wake(std::slice::from_ref(&alert.originator));
        views::ack_record(
            &tocsin_store::AckRow {
                ack: stored,
                delivered: false,
            },
            row.due_at,
        )
    }

    /// Receives a recipient's signed acknowledgement of an alert this agency
    /// sent.
    pub(crate) async fn receive_ack(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<(), Error> {
        let envelope = envelope.ok_or_else(|| {
            Error::InvalidArgument("invalid field `acknowledgement`: missing envelope".into())
        })?;
        let verified = self
            .verifier
            .verify(&envelope, tocsin_proto::ACK_PAYLOAD_TYPE)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if &verified.signer != caller {
            return Err(Error::PermissionDenied(format!(
                "acknowledgement signed by {} cannot be delivered by {caller}",
                verified.signer
            )));
        }
        let wire = pb::Acknowledgement::decode(envelope.payload.as_slice()).map_err(|e| {
            Error::InvalidArgument(format!("envelope payload is not an acknowledgement: {e}"))
        })?;
        let ack = tocsin_core::ack::Acknowledgement::try_from(wire)?;
        if &ack.recipient != caller {
            return Err(Error::PermissionDenied(format!(
                "acknowledgement by {} cannot come from {caller}",
                ack.recipient
            )));
        }
        let Some(row) = self.store.alert(&ack.alert_id.to_string()).await? else {
            return Err(Error::NotFound(format!(
                "no alert {} on {}",
                ack.alert_id, self.agency
            )));
        };
        if row.digest.as_slice() != ack.alert_digest.as_slice() {
            return Err(Error::InvalidArgument(format!(
                "acknowledgement of alert {} does not match the alert sent (digest differs)",
                ack.alert_id
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let late = row
            .due_at
            .map(|due| ack.acknowledged_at - due)
            .unwrap_or_default();
        let detail = format!(
            "{caller} acknowledged {}{}",
            ack.disposition,
            late_phrase(late)
        );
        match self
            .store
            .record_received_ack(ack_row(&ack, &envelope, now), detail)
            .await
        {
            Ok(tocsin_store::AckOutcome::Stored) => {
                tracing::info!(alert = %ack.alert_id, from = %caller, disposition = %ack.disposition, "acknowledgement received");
                Ok(())
            }
            Ok(tocsin_store::AckOutcome::Duplicate) => Ok(()),
            Err(tocsin_store::Error::NotFound(m)) => Err(Error::PermissionDenied(m)),
            Err(tocsin_store::Error::Conflict(id)) => Err(Error::AlreadyExists(format!(
                "acknowledgement {id} was already received with different content"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
