//! The node's domain logic: accepting alerts from operators, receiving them
//! from peers, and answering queries. No SQL (that is the store's) and no TLS
//! (that is the trust crate's): callers arrive here already authenticated.

use std::sync::Arc;

use prost::Message;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Alert, AlertId, Clock, Identity, to_timestamp};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
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
    pub(crate) tracker: Arc<crate::tracker::TrackerWake>,
    /// Turns true when the node shuts down; ends watch streams.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// One precedence level higher (FLASH stays FLASH).
fn raise(p: tocsin_core::alert::Precedence) -> tocsin_core::alert::Precedence {
    use tocsin_core::alert::Precedence::*;
    match p {
        Routine => Priority,
        Priority => Immediate,
        Immediate | Flash => Flash,
    }
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
    first_step_at: Option<chrono::DateTime<chrono::Utc>>,
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
        first_step_at,
        keys: tocsin_core::subject::alert_keys(alert)
            .into_iter()
            .collect(),
        closes: alert
            .references
            .iter()
            .map(|r| {
                let status = match r.kind {
                    tocsin_core::alert::ReferenceKind::Cancel => {
                        tocsin_store::AlertStatus::Cancelled
                    }
                    _ => tocsin_store::AlertStatus::Superseded,
                };
                (r.alert_id.to_string(), status)
            })
            .collect(),
    }
}

/// The row a node stores for an alert it sends, with its deadline and first
/// ladder step, exactly as `SubmitAlert` computes them. For preloading a
/// store (benchmarks, migrations of data from elsewhere); the envelope must
/// be the originator's signed alert.
pub fn outbound_row(
    federation: &tocsin_core::Federation,
    alert: &Alert,
    envelope: &pb::Envelope,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> NewAlert {
    let due_at = federation.deadlines.due_at(alert);
    let allowance = federation.deadlines.for_precedence(alert.precedence);
    let first_step = federation.escalation.step_at(1, due_at, allowance);
    new_alert_row(
        alert,
        envelope,
        digest(envelope),
        stored_at,
        due_at,
        Some(first_step),
    )
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
        // An alert may update, supersede or cancel only this agency's own
        // earlier alerts.
        for (i, r) in alert.references.iter().enumerate() {
            let ours = self
                .store
                .alert(&r.alert_id.to_string())
                .await?
                .is_some_and(|row| row.direction == Direction::Outbound);
            if !ours {
                return Err(Error::InvalidArgument(format!(
                    "invalid field `references[{i}].alert_id`: {} sent no alert {}",
                    self.agency, r.alert_id
                )));
            }
        }
        if client_id && let Some(existing) = self.resubmission(&alert).await? {
            return Ok(existing);
        }

        let payload = pb::Alert::from(&alert).encode_to_vec();
        let envelope = self.signer.sign(ALERT_PAYLOAD_TYPE, payload);
        let row = outbound_row(&self.federation, &alert, &envelope, now);
        // The first ladder step never comes before the deadline (the
        // federation file is checked for that), so the deadline is what the
        // tracker may have to wake for.
        let due_at = row.due_at;
        let recipients: Vec<String> = alert.recipients.iter().map(ToString::to_string).collect();
        let stored = match self.store.insert_outbound(row, recipients).await {
            Ok(stored) => stored,
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
        };
        tracing::info!(alert = %alert.id, precedence = %alert.precedence, recipients = alert.recipients.len(), "alert accepted");
        self.outbox.wake(&alert.recipients);
        self.tracker.deadline(due_at);
        views::record(&stored)
    }

    /// If an alert with this id is stored: the stored record when it is the
    /// same alert (a retried submission), `AlreadyExists` otherwise.
    async fn resubmission(&self, alert: &Alert) -> Result<Option<pb::AlertRecord>, Error> {
        let Some(history) = self.store.alert_history(&alert.id.to_string()).await? else {
            return Ok(None);
        };
        let row = &history.alert;
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
        Ok(Some(views::record(&history)?))
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
        self.receive_batch(caller, vec![envelope])
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::Unavailable("the alert went unanswered".into())))
    }

    /// Receives alerts delivered together by the peer `caller`: each is
    /// checked, stored and answered as [`Self::receive`] would answer it
    /// alone, in the order given. Their signatures are checked in one batch
    /// and their writes join one group commit.
    pub(crate) async fn receive_batch(
        &self,
        caller: &AgencyId,
        envelopes: Vec<pb::Envelope>,
    ) -> Vec<Result<pb::Envelope, Error>> {
        let refs: Vec<&pb::Envelope> = envelopes.iter().collect();
        let verified = self.verifier.verify_batch(&refs, ALERT_PAYLOAD_TYPE);
        let prepared: Vec<_> = envelopes
            .into_iter()
            .zip(verified)
            .map(|(envelope, verified)| {
                let verified = signed_by(caller, verified, "alert")?;
                self.inbound(caller, envelope, verified)
            })
            .collect();
        futures::future::join_all(prepared.into_iter().map(|p| async move {
            let (row, receipt, precedence) = p?;
            self.store_inbound(caller, row, receipt, precedence).await
        }))
        .await
    }

    /// Checks a verified alert from `caller` and signs its receipt.
    fn inbound(
        &self,
        caller: &AgencyId,
        envelope: pb::Envelope,
        verified: tocsin_trust::signing::Verified,
    ) -> Result<(NewAlert, pb::Envelope, tocsin_core::alert::Precedence), Error> {
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
        let receipt = tocsin_trust::receipt::issue(
            &self.signer,
            &alert.id.to_string(),
            &verified.digest,
            now,
        );
        let due_at = self.federation.deadlines.due_at(&alert);
        let row = new_alert_row(&alert, &envelope, verified.digest, now, due_at, None);
        Ok((row, receipt, alert.precedence))
    }

    /// Commits a received alert with its receipt; answers the receipt
    /// first issued for it if it was received before.
    async fn store_inbound(
        &self,
        caller: &AgencyId,
        row: NewAlert,
        receipt: pb::Envelope,
        precedence: tocsin_core::alert::Precedence,
    ) -> Result<pb::Envelope, Error> {
        let (id, due_at) = (row.id.clone(), row.due_at);
        match self
            .store
            .insert_inbound(row, receipt.encode_to_vec())
            .await
        {
            Ok(InboundOutcome::Stored) => {
                self.tracker.deadline(due_at);
                tracing::info!(alert = %id, from = %caller, %precedence, "alert received");
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
        self.store
            .alert_history(id)
            .await?
            .as_ref()
            .map(views::record)
            .transpose()
    }

    /// Alerts, newest first.
    pub(crate) async fn list(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<pb::AlertRecord>, Error> {
        self.store
            .list_alerts(direction, limit)
            .await?
            .iter()
            .map(views::record)
            .collect()
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
        rows.iter().map(views::record).collect()
    }

    /// Takes every escalation step that is due: reminds, escalates (a
    /// reminder one precedence higher and notices to the observers), and
    /// finally marks the delivery LAPSED. Each step is recorded with its
    /// messages and event in one transaction.
    pub(crate) async fn take_ladder_steps(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, Error> {
        use tocsin_core::alert::Precedence;
        let due = self.store.due_steps(now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut steps = Vec::with_capacity(due.len());
        for d in due {
            let precedence = Precedence::from_wire(d.precedence)?;
            let allowance = self.federation.deadlines.for_precedence(precedence);
            let ladder = d.ladder + 1;
            let next_step_at = (ladder < 3).then(|| {
                self.federation.escalation.step_at(
                    u8::try_from(ladder + 1).unwrap_or(3),
                    d.due_at,
                    allowance,
                )
            });
            let digest: [u8; 32] = d.digest.as_slice().try_into().unwrap_or([0; 32]);
            let mut messages = Vec::new();
            let (event_kind, detail) = match ladder {
                1 | 2 => {
                    let raised = if ladder == 2 {
                        raise(precedence)
                    } else {
                        precedence
                    };
                    if d.delivered {
                        messages.push(self.reminder(&d, digest, ladder, raised, now));
                    }
                    let mut notified = Vec::new();
                    if ladder == 2 {
                        for observer in self.federation.agencies.iter().filter(|a| {
                            a.observer && a.id != self.agency && a.id.as_str() != d.recipient
                        }) {
                            messages.push(self.notice(&d, precedence, &observer.id, now));
                            notified.push(observer.id.to_string());
                        }
                    }
                    let reminder = if d.delivered {
                        format!("reminder sent to {} at {raised}", d.recipient)
                    } else {
                        format!(
                            "{} never received the alert; no reminder possible",
                            d.recipient
                        )
                    };
                    if ladder == 1 {
                        (tocsin_store::EventKind::Reminded, reminder)
                    } else {
                        let told = if notified.is_empty() {
                            "no observers to notify".to_owned()
                        } else {
                            format!("observers notified: {}", notified.join(", "))
                        };
                        (
                            tocsin_store::EventKind::Escalated,
                            format!("escalated: {reminder}; {told}"),
                        )
                    }
                }
                _ => (
                    tocsin_store::EventKind::Lapsed,
                    format!(
                        "LAPSED: the ladder ran out with no acknowledgement from {} (deadline {})",
                        d.recipient,
                        d.due_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                ),
            };
            tracing::warn!(alert = %d.alert_id, recipient = %d.recipient, step = ladder, "{detail}");
            steps.push(tocsin_store::StepTaken {
                alert_id: d.alert_id.clone(),
                recipient: d.recipient.clone(),
                ladder,
                next_step_at,
                messages,
                event_kind,
                detail,
                at: d.step_at.min(now),
            });
        }
        let peers: Vec<AgencyId> = steps
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.peer.clone()))
            .filter_map(|p| AgencyId::new(p).ok())
            .collect();
        let taken = self.store.take_steps(steps).await?;
        self.outbox.wake(&peers);
        Ok(taken)
    }

    fn reminder(
        &self,
        d: &tocsin_store::DueStep,
        digest: [u8; 32],
        step: i64,
        precedence: tocsin_core::alert::Precedence,
        now: chrono::DateTime<chrono::Utc>,
    ) -> tocsin_store::NewMessage {
        let id = AlertId::generate().to_string();
        let reminder = pb::Reminder {
            id: id.clone(),
            alert_id: d.alert_id.clone(),
            alert_digest: digest.to_vec(),
            originator: self.agency.to_string(),
            recipient: d.recipient.clone(),
            step: u32::try_from(step).unwrap_or(1),
            precedence: precedence.to_wire(),
            due_at: Some(to_timestamp(d.due_at)),
            sent_at: Some(to_timestamp(now)),
        };
        let envelope = self.signer.sign(
            tocsin_proto::REMINDER_PAYLOAD_TYPE,
            reminder.encode_to_vec(),
        );
        tocsin_store::NewMessage {
            id,
            peer: d.recipient.clone(),
            kind: tocsin_store::MessageKind::Reminder,
            envelope: envelope.encode_to_vec(),
        }
    }

    fn notice(
        &self,
        d: &tocsin_store::DueStep,
        precedence: tocsin_core::alert::Precedence,
        observer: &AgencyId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> tocsin_store::NewMessage {
        let id = AlertId::generate().to_string();
        let notice = pb::EscalationNotice {
            id: id.clone(),
            alert_id: d.alert_id.clone(),
            originator: self.agency.to_string(),
            recipient: d.recipient.clone(),
            precedence: precedence.to_wire(),
            category: d.category.clone(),
            due_at: Some(to_timestamp(d.due_at)),
            escalated_at: Some(to_timestamp(now)),
            delivered: d.delivered,
        };
        let envelope = self
            .signer
            .sign(tocsin_proto::NOTICE_PAYLOAD_TYPE, notice.encode_to_vec());
        tocsin_store::NewMessage {
            id,
            peer: observer.to_string(),
            kind: tocsin_store::MessageKind::Notice,
            envelope: envelope.encode_to_vec(),
        }
    }

    /// Verifies a signed message from peer `caller` of `payload_type`.
    fn verified_from(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
        payload_type: &str,
        field: &str,
    ) -> Result<(pb::Envelope, tocsin_trust::signing::Verified), Error> {
        let envelope = envelope.ok_or_else(|| {
            Error::InvalidArgument(format!("invalid field `{field}`: missing envelope"))
        })?;
        let verified = signed_by(caller, self.verifier.verify(&envelope, payload_type), field)?;
        Ok((envelope, verified))
    }

    /// Receives a reminder from the originator of an alert this agency has
    /// not acknowledged.
    pub(crate) async fn receive_reminder(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<(), Error> {
        let (envelope, _) = self.verified_from(
            caller,
            envelope,
            tocsin_proto::REMINDER_PAYLOAD_TYPE,
            "reminder",
        )?;
        let r = pb::Reminder::decode(envelope.payload.as_slice()).map_err(|e| {
            Error::InvalidArgument(format!("envelope payload is not a reminder: {e}"))
        })?;
        if r.originator != caller.as_str() || r.recipient != self.agency.as_str() {
            return Err(Error::PermissionDenied(format!(
                "a reminder from {} to {} cannot come from {caller} to {}",
                r.originator, r.recipient, self.agency
            )));
        }
        let precedence = tocsin_core::alert::Precedence::from_wire(r.precedence)?;
        let escalated = r.step >= 2;
        let detail = if escalated {
            format!(
                "ESCALATED reminder from {caller}, now {precedence}: still no acknowledgement from us"
            )
        } else {
            format!("reminder from {caller}: we have not acknowledged by the deadline")
        };
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        self.store
            .record_reminder(
                r.id,
                r.alert_id,
                caller.to_string(),
                envelope.encode_to_vec(),
                now,
                escalated,
                detail,
            )
            .await?;
        Ok(())
    }

    /// Receives an escalation notice, as an observer of the federation.
    pub(crate) async fn receive_notice(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<(), Error> {
        let (envelope, _) = self.verified_from(
            caller,
            envelope,
            tocsin_proto::NOTICE_PAYLOAD_TYPE,
            "notice",
        )?;
        let observer = self
            .federation
            .agency(&self.agency)
            .is_some_and(|a| a.observer);
        if !observer {
            return Err(Error::PermissionDenied(format!(
                "{} is not an observer of federation {}",
                self.agency,
                self.federation.id()
            )));
        }
        let n = pb::EscalationNotice::decode(envelope.payload.as_slice()).map_err(|e| {
            Error::InvalidArgument(format!("envelope payload is not a notice: {e}"))
        })?;
        if n.originator != caller.as_str() {
            return Err(Error::PermissionDenied(format!(
                "a notice about {}'s alert cannot come from {caller}",
                n.originator
            )));
        }
        let precedence = tocsin_core::alert::Precedence::from_wire(n.precedence)?;
        let detail = format!(
            "ESCALATION from {caller}: {} left a {precedence} {} alert {} past its deadline",
            n.recipient,
            n.category,
            if n.delivered {
                "unanswered"
            } else {
                "undelivered"
            }
        );
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        self.store
            .record_notice(
                n.id,
                n.alert_id,
                n.recipient,
                envelope.encode_to_vec(),
                now,
                detail,
            )
            .await?;
        Ok(())
    }

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
            return Err(Error::InvalidArgument(
                "invalid field `query`: must not be empty".into(),
            ));
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

    /// Streams events: first those after `after` (if given), then new ones
    /// as they are committed, until the client goes away or the node stops.
    pub(crate) async fn watch(
        &self,
        after: Option<u64>,
    ) -> Result<tokio_stream::wrappers::ReceiverStream<Result<pb::Event, tonic::Status>>, Error>
    {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.store.clone();
        let mut shutdown = self.shutdown.clone();
        // "From now" is read before the call is answered: an event the
        // caller causes once it has its answer is always after it.
        let mut last = match after {
            Some(id) => id,
            None => store.last_event_id().await?,
        };
        tokio::spawn(async move {
            let signal = store.event_signal();
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
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
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
            .await?;
        tracing::info!(alert = %alert.id, disposition = %disposition, operator = %name, "alert acknowledged");
        self.outbox.wake(std::slice::from_ref(&alert.originator));
        views::ack_record(
            &tocsin_store::AckRow {
                ack: stored,
                delivered: false,
                refusal: None,
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
        let (envelope, _) = self.verified_from(
            caller,
            envelope,
            tocsin_proto::ACK_PAYLOAD_TYPE,
            "acknowledgement",
        )?;
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

/// A verified envelope's signer, which must be the agency that delivered it.
fn signed_by(
    caller: &AgencyId,
    verified: Result<tocsin_trust::signing::Verified, tocsin_trust::Error>,
    field: &str,
) -> Result<tocsin_trust::signing::Verified, Error> {
    let verified = verified.map_err(|e| Error::InvalidArgument(e.to_string()))?;
    if &verified.signer != caller {
        return Err(Error::PermissionDenied(format!(
            "{field} signed by {} cannot be delivered by {caller}",
            verified.signer
        )));
    }
    Ok(verified)
}
