//! Alert flows as a test writes them: an agency's [`Desk`] submits,
//! acknowledges, and waits for what should happen next.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use tocsin_testkit::{AlertBuilder, Disposition, Person, TestFederation};
//!
//! let fed = TestFederation::builder().agencies(["TR-MIT", "FR-DGSI"]).start().await?;
//! let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
//!
//! let id = tr
//!     .send(AlertBuilder::to(["FR-DGSI"]).person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21")))
//!     .await?;
//! tr.wait_delivered(&id, "FR-DGSI").await?;
//! fr.ack(&id, Disposition::Actioned, "Surveillance opened.").await?;
//! let ack = tr.wait_acknowledged(&id, "FR-DGSI").await?;
//! assert_eq!(ack.late_by_seconds, 0);
//! # Ok(()) }
//! ```
//!
//! Every `wait_*` polls the node through its operator API until the
//! condition holds or the desk's patience ([`Desk::with_patience`], 20 s
//! by default) runs out. On a timeout the error says what was expected and
//! what is there now, for example `expected FR-DGSI's delivery of alert
//! 01J… to be DELIVERED within 20 s; it is PENDING after 3 attempts, last
//! error "connection refused"`.
//!
//! With a [`ManualClock`](tocsin_core::ManualClock), move time and then
//! wait: deadlines, flags and ladder steps fire as soon as the clock moves.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tonic::transport::Channel;

/// How long a desk waits by default for something that should take
/// milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What a probe of [`wait_for`] found: the awaited value, or an account of
/// how things stand now.
#[derive(Debug)]
pub enum Probe<T> {
    /// The condition holds.
    Done(T),
    /// Not yet; what there is now (quoted in the timeout's message).
    NotYet(String),
}

/// Calls `probe` every 20 ms until it returns [`Probe::Done`], or fails
/// after `timeout` with "expected {expected} within {timeout}; {now}",
/// where `now` is what the last probe found.
pub async fn wait_for<T, F, Fut>(
    timeout: Duration,
    expected: &str,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Probe::Done(v)) => return Ok(v),
            Ok(Probe::NotYet(now)) => now,
            Err(_) => "the last look did not answer in time".to_owned(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("expected {expected} within {}; {now}", seconds(timeout));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The name of an enum value as the protocol spells it, without its
/// prefix (`DELIVERED`, `OVERDUE`, `ESCALATED`).
fn name<E: TryFrom<i32>>(value: i32, as_str: fn(&E) -> &'static str, prefix: &str) -> String {
    match E::try_from(value) {
        Ok(e) => as_str(&e)
            .strip_prefix(prefix)
            .unwrap_or(as_str(&e))
            .to_owned(),
        Err(_) => format!("unknown value {value}"),
    }
}

/// `DELIVERED`, `PENDING`, ...
pub fn state_name(state: i32) -> String {
    name::<pb::DeliveryState>(state, pb::DeliveryState::as_str_name, "DELIVERY_STATE_")
}

/// `OVERDUE`, `UNDELIVERED`, `NONE`.
pub fn flag_name(flag: i32) -> String {
    name::<pb::DeadlineFlag>(flag, pb::DeadlineFlag::as_str_name, "DEADLINE_FLAG_")
}

/// `REMINDED`, `ESCALATED`, `LAPSED`, `NONE`.
pub fn step_name(step: i32) -> String {
    name::<pb::LadderStep>(step, pb::LadderStep::as_str_name, "LADDER_STEP_")
}

/// `DELIVERED`, `OVERDUE`, ...
pub fn kind_name(kind: i32) -> String {
    name::<pb::EventKind>(kind, pb::EventKind::as_str_name, "EVENT_KIND_")
}

/// How a delivery stands, in one line: its state, attempts and last error,
/// acknowledgements, deadline flag and ladder step.
pub fn describe_delivery(d: &pb::Delivery) -> String {
    let mut s = state_name(d.state);
    if d.state != pb::DeliveryState::Delivered as i32 {
        let _ = write!(s, " after {} attempt(s)", d.attempts);
        if !d.last_error.is_empty() {
            let _ = write!(s, ", last error {:?}", d.last_error);
        }
    }
    let _ = write!(s, ", {} acknowledgement(s)", d.acknowledgements.len());
    if d.flag != 0 {
        let _ = write!(s, ", flagged {}", flag_name(d.flag));
    }
    if d.ladder != 0 {
        let _ = write!(s, ", ladder at {}", step_name(d.ladder));
    }
    s
}

/// The delivery to `recipient` in an outbound `record`.
pub fn delivery<'a>(record: &'a pb::AlertRecord, recipient: &str) -> Option<&'a pb::Delivery> {
    record.deliveries.iter().find(|d| d.recipient == recipient)
}

/// The id of the alert in `record`.
pub fn id_of(record: &pb::AlertRecord) -> String {
    record
        .alert
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

/// The kinds of the events about `alert`, in order.
pub fn kinds(events: &[pb::Event], alert: &str) -> Vec<pb::EventKind> {
    events
        .iter()
        .filter(|e| e.alert_id == alert)
        .filter_map(|e| pb::EventKind::try_from(e.kind).ok())
        .collect()
}

/// One agency's operator desk: an operator client of its node, with the
/// calls and waits a test needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Desk {
    agency: String,
    client: OperatorClient<Channel>,
    /// The watchlist client on the same node (see module `watchlist`).
    pub(crate) watchlist: Option<WatchlistDeskClient<Channel>>,
    pub(crate) patience: Duration,
}

impl Desk {
    /// A desk over an operator client of `agency`'s node.
    pub fn new(agency: impl Into<String>, client: OperatorClient<Channel>) -> Self {
        Self {
            agency: agency.into(),
            client,
            watchlist: None,
            patience: PATIENCE,
        }
    }

    /// The same desk, with a watchlist client on the same node for the
    /// watchlist calls and waits (module `watchlist`).
    #[must_use]
    pub fn with_watchlist(mut self, client: WatchlistDeskClient<Channel>) -> Self {
        self.watchlist = Some(client);
        self
    }

    /// The same desk, waiting up to `patience` in every `wait_*`.
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The agency this desk acts for.
    pub fn agency(&self) -> &str {
        &self.agency
    }

    /// The operator client underneath, for calls the desk does not wrap.
    pub fn client(&self) -> OperatorClient<Channel> {
        self.client.clone()
    }

    /// Submits an alert; returns the node's whole answer: the stored record
    /// and any warnings (for example a recipient whose certificates are
    /// revoked), or the node's refusal.
    pub async fn submit_answer(
        &self,
        alert: impl Into<pb::Alert>,
    ) -> Result<pb::SubmitAlertResponse, tonic::Status> {
        Ok(self
            .client
            .clone()
            .submit_alert(pb::SubmitAlertRequest {
                alert: Some(alert.into()),
            })
            .await?
            .into_inner())
    }

    /// Submits an alert; returns the stored record, or the node's refusal.
    pub async fn submit(
        &self,
        alert: impl Into<pb::Alert>,
    ) -> Result<pb::AlertRecord, tonic::Status> {
        self.client
            .clone()
            .submit_alert(pb::SubmitAlertRequest {
                alert: Some(alert.into()),
            })
            .await?
            .into_inner()
            .record
            .ok_or_else(|| tonic::Status::internal("SubmitAlert answered without a record"))
    }

    /// Submits an alert; returns its id.
    pub async fn send(&self, alert: impl Into<pb::Alert>) -> anyhow::Result<String> {
        let record = self
            .submit(alert)
            .await
            .map_err(|s| anyhow::anyhow!("{} could not submit the alert: {s}", self.agency))?;
        match id_of(&record) {
            id if id.is_empty() => bail!("{}'s node stored an alert with no id", self.agency),
            id => Ok(id),
        }
    }

    /// This node's record of an alert.
    pub async fn alert(&self, id: &str) -> Result<pb::AlertRecord, tonic::Status> {
        Ok(self
            .client
            .clone()
            .get_alert(pb::GetAlertRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }

    /// Alerts in one direction, newest first.
    pub async fn list(
        &self,
        direction: pb::Direction,
    ) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.list_with(
            direction,
            pb::list_alerts_request::Filter::Unspecified,
            1000,
        )
        .await
    }

    /// Alerts received.
    pub async fn inbox(&self) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.list(pb::Direction::Inbound).await
    }

    /// Alerts sent.
    pub async fn outbox(&self) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.list(pb::Direction::Outbound).await
    }

    /// Sent alerts some recipient has not acknowledged, soonest deadline
    /// first.
    pub async fn awaiting(&self) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.filtered(pb::list_alerts_request::Filter::Awaiting)
            .await
    }

    /// Received alerts this agency has not acknowledged, soonest deadline
    /// first.
    pub async fn owed(&self) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.filtered(pb::list_alerts_request::Filter::Owed).await
    }

    /// Either of the above, past their deadlines.
    pub async fn overdue(&self) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.filtered(pb::list_alerts_request::Filter::Overdue)
            .await
    }

    async fn filtered(
        &self,
        filter: pb::list_alerts_request::Filter,
    ) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        self.list_with(pb::Direction::Unspecified, filter, 1000)
            .await
    }

    async fn list_with(
        &self,
        direction: pb::Direction,
        filter: pb::list_alerts_request::Filter,
        limit: u32,
    ) -> Result<Vec<pb::AlertRecord>, tonic::Status> {
        Ok(self
            .client
            .clone()
            .list_alerts(pb::ListAlertsRequest {
                direction: direction as i32,
                limit,
                filter: filter as i32,
            })
            .await?
            .into_inner()
            .alerts)
    }

    /// Acknowledges alert `id`, received by this agency.
    pub async fn ack(
        &self,
        id: &str,
        disposition: pb::Disposition,
        note: &str,
    ) -> Result<pb::AckRecord, tonic::Status> {
        self.client
            .clone()
            .acknowledge_alert(pb::AcknowledgeAlertRequest {
                id: String::new(),
                alert_id: id.to_owned(),
                disposition: disposition as i32,
                note: note.to_owned(),
            })
            .await?
            .into_inner()
            .acknowledgement
            .ok_or_else(|| tonic::Status::internal("AcknowledgeAlert answered without a record"))
    }

    /// The REPEATED_UNANSWERED flags this node holds, newest first.
    pub async fn subject_flags(&self) -> Result<Vec<pb::SubjectFlag>, tonic::Status> {
        Ok(self
            .client
            .clone()
            .list_subject_flags(pb::ListSubjectFlagsRequest {})
            .await?
            .into_inner()
            .flags)
    }

    /// Every alert this node holds about a subject (an alert id, a document
    /// number or a name).
    pub async fn subject(&self, query: &str) -> Result<pb::SubjectRecord, tonic::Status> {
        Ok(self
            .client
            .clone()
            .get_subject(pb::GetSubjectRequest {
                query: query.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Waits until this node's record of outbound alert `id` shows a
    /// delivery to `recipient` for which `done` holds; `what` completes
    /// "expected {recipient}'s delivery of alert {id} to {what}".
    pub async fn wait_delivery<F>(
        &self,
        id: &str,
        recipient: &str,
        what: &str,
        done: F,
    ) -> anyhow::Result<pb::AlertRecord>
    where
        F: Fn(&pb::Delivery) -> bool,
    {
        let expected = format!("{recipient}'s delivery of alert {id} to {what}");
        let done = &done;
        wait_for(self.patience, &expected, move || async move {
            match self.alert(id).await {
                Err(status) => Probe::NotYet(format!("{} cannot read it: {status}", self.agency)),
                Ok(record) => match delivery(&record, recipient) {
                    None => {
                        Probe::NotYet(format!("{} holds no delivery to {recipient}", self.agency))
                    }
                    Some(d) if done(d) => Probe::Done(record),
                    Some(d) => Probe::NotYet(format!("it is {}", describe_delivery(d))),
                },
            }
        })
        .await
    }

    /// `call`, or DEADLINE_EXCEEDED once `deadline` has passed: no wait
    /// outlasts its patience on a call that hangs.
    async fn within<T>(
        &self,
        deadline: tokio::time::Instant,
        call: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in time")))
    }

    /// Waits until the delivery of `id` to `recipient` is in `state`.
    pub async fn wait_state(
        &self,
        id: &str,
        recipient: &str,
        state: pb::DeliveryState,
    ) -> anyhow::Result<pb::AlertRecord> {
        let what = format!("be {}", state_name(state as i32));
        self.wait_delivery(id, recipient, &what, |d| d.state == state as i32)
            .await
    }

    /// Waits until the delivery of `id` to `recipient` is DELIVERED (its
    /// receipt verified and stored); returns the record.
    pub async fn wait_delivered(
        &self,
        id: &str,
        recipient: &str,
    ) -> anyhow::Result<pb::AlertRecord> {
        self.wait_state(id, recipient, pb::DeliveryState::Delivered)
            .await
    }

    /// Waits until `recipient`'s first acknowledgement of `id` has reached
    /// this (the originating) node; returns it.
    pub async fn wait_acknowledged(
        &self,
        id: &str,
        recipient: &str,
    ) -> anyhow::Result<pb::AckRecord> {
        let record = self.wait_acks(id, recipient, 1).await?;
        Ok(delivery(&record, recipient)
            .and_then(|d| d.acknowledgements.first().cloned())
            .unwrap_or_default())
    }

    /// Waits until `n` acknowledgements of `id` from `recipient` have
    /// reached this node; returns the record.
    pub async fn wait_acks(
        &self,
        id: &str,
        recipient: &str,
        n: usize,
    ) -> anyhow::Result<pb::AlertRecord> {
        let what = format!("hold {n} acknowledgement(s) at {}", self.agency);
        self.wait_delivery(id, recipient, &what, |d| d.acknowledgements.len() >= n)
            .await
    }

    /// Waits until the delivery of `id` to `recipient` carries the deadline
    /// flag `flag` (OVERDUE or UNDELIVERED) on this, the originating, node.
    pub async fn wait_flag(
        &self,
        id: &str,
        recipient: &str,
        flag: pb::DeadlineFlag,
    ) -> anyhow::Result<pb::AlertRecord> {
        let what = format!("be flagged {}", flag_name(flag as i32));
        self.wait_delivery(id, recipient, &what, |d| d.flag == flag as i32)
            .await
    }

    /// Waits until the ladder of the delivery of `id` to `recipient` has
    /// reached `step` (REMINDED, ESCALATED, LAPSED).
    pub async fn wait_step(
        &self,
        id: &str,
        recipient: &str,
        step: pb::LadderStep,
    ) -> anyhow::Result<pb::AlertRecord> {
        let what = format!("reach the ladder step {}", step_name(step as i32));
        self.wait_delivery(id, recipient, &what, |d| d.ladder >= step as i32)
            .await
    }

    /// Waits until this agency's own record of inbound alert `id` carries
    /// `flag`: this agency let the deadline pass.
    pub async fn wait_inbound_flag(
        &self,
        id: &str,
        flag: pb::DeadlineFlag,
    ) -> anyhow::Result<pb::AlertRecord> {
        let expected = format!(
            "{}'s record of alert {id} to be flagged {}",
            self.agency,
            flag_name(flag as i32)
        );
        wait_for(self.patience, &expected, move || async move {
            match self.alert(id).await {
                Err(status) => Probe::NotYet(format!("it cannot be read: {status}")),
                Ok(r) if r.flag == flag as i32 => Probe::Done(r),
                Ok(r) => Probe::NotYet(format!(
                    "it is flagged {} with {} acknowledgement(s) and {} reminder(s)",
                    flag_name(r.flag),
                    r.acknowledgements.len(),
                    r.reminders
                )),
            }
        })
        .await
    }

    /// Waits until this node holds a REPEATED_UNANSWERED flag against
    /// `recipient` listing at least `alerts` alerts; returns it.
    pub async fn wait_subject_flag(
        &self,
        recipient: &str,
        alerts: usize,
    ) -> anyhow::Result<pb::SubjectFlag> {
        let what = format!("a REPEATED_UNANSWERED flag against {recipient} over {alerts} alert(s)");
        self.wait_subject_flag_where(&what, |f| {
            f.recipient == recipient && f.alert_ids.len() >= alerts
        })
        .await
    }

    /// Waits until this node holds a REPEATED_UNANSWERED flag for which
    /// `found` holds (`what` describes it); returns it.
    pub async fn wait_subject_flag_where<F>(
        &self,
        what: &str,
        found: F,
    ) -> anyhow::Result<pb::SubjectFlag>
    where
        F: Fn(&pb::SubjectFlag) -> bool,
    {
        let expected = format!("{} to hold {what}", self.agency);
        let found = &found;
        wait_for(self.patience, &expected, move || async move {
            match self.subject_flags().await {
                Err(status) => Probe::NotYet(format!("its flags cannot be read: {status}")),
                Ok(flags) => match flags.iter().find(|f| found(f)) {
                    Some(f) => Probe::Done(f.clone()),
                    None => {
                        let held: Vec<String> = flags
                            .iter()
                            .map(|f| {
                                format!(
                                    "{} against {} over {:?}",
                                    f.label, f.recipient, f.alert_ids
                                )
                            })
                            .collect();
                        Probe::NotYet(format!(
                            "it holds {} flag(s): [{}]",
                            flags.len(),
                            held.join("; ")
                        ))
                    }
                },
            }
        })
        .await
    }

    /// Follows this node's events from the first stored one until
    /// `stop` holds for one; returns every event up to and including it.
    ///
    /// Events are in the order the node committed them, so a test that
    /// asserts something did *not* happen waits for a control event that
    /// must come after it (for example a later deadline in the same clock
    /// step) and inspects what came before. Events committed in the same
    /// transaction as the control but after it are not returned: where the
    /// event that must not happen could share the control's transaction,
    /// read the state as well (`alert`, `subject_flags`), which that
    /// transaction has committed.
    pub async fn events_through<F>(&self, what: &str, mut stop: F) -> anyhow::Result<Vec<pb::Event>>
    where
        F: FnMut(&pb::Event) -> bool,
    {
        let expected = format!("{} to record {what}", self.agency);
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut client = self.client.clone();
        let watch = client.watch_events(pb::WatchEventsRequest { after_id: Some(0) });
        let mut stream = match self.within(deadline, watch).await {
            Ok(s) => s.into_inner(),
            Err(status) => bail!("expected {expected}; its events cannot be followed: {status}"),
        };
        let mut seen = Vec::new();
        loop {
            let now = match tokio::time::timeout_at(deadline, stream.message()).await {
                Ok(Ok(Some(event))) => {
                    let last = stop(&event);
                    seen.push(event);
                    if last {
                        return Ok(seen);
                    }
                    continue;
                }
                Ok(Ok(None)) => "the event stream ended".to_owned(),
                Ok(Err(status)) => format!("the event stream failed: {status}"),
                Err(_) => "it did not happen".to_owned(),
            };
            bail!(
                "expected {expected} within {}; {now}; events so far: {}",
                seconds(self.patience),
                describe_events(&seen)
            );
        }
    }

    /// Waits until the first events about alert `id` are exactly `expected`,
    /// in order; returns them. Events after those are not looked at: to
    /// check that nothing followed, wait for a control event with
    /// [`events_through`](Self::events_through). Fails at once, saying what
    /// came instead, when the events about `id` go otherwise.
    pub async fn wait_events(
        &self,
        id: &str,
        expected: &[pb::EventKind],
    ) -> anyhow::Result<Vec<pb::Event>> {
        if expected.is_empty() {
            return Ok(Vec::new());
        }
        let mut about = Vec::new();
        let want: Vec<String> = expected.iter().map(|k| kind_name(*k as i32)).collect();
        let what = format!("the events [{}] about alert {id}", want.join(", "));
        let mut diverged = false;
        self.events_through(&what, |e| {
            if e.alert_id != id {
                return false;
            }
            about.push(e.clone());
            let n = about.len();
            diverged = about[n - 1].kind != expected[n - 1] as i32;
            diverged || n == expected.len()
        })
        .await?;
        if diverged {
            bail!(
                "expected {} to record {what}; they went otherwise: {}",
                self.agency,
                describe_events(&about)
            );
        }
        Ok(about)
    }

    /// Waits until an event of `kind` about alert `id` is recorded; returns
    /// it.
    pub async fn wait_event(&self, id: &str, kind: pb::EventKind) -> anyhow::Result<pb::Event> {
        let what = format!("a {} event about alert {id}", kind_name(kind as i32));
        let events = self
            .events_through(&what, |e| e.alert_id == id && e.kind == kind as i32)
            .await?;
        Ok(events.last().cloned().unwrap_or_default())
    }
}

/// Events, briefly: `[7 DELIVERED 01J…, 8 ACKNOWLEDGED 01J…]`.
pub fn describe_events(events: &[pb::Event]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| format!("{} {} {}", e.id, kind_name(e.kind), e.alert_id))
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_says_what_was_expected_and_what_is_there() {
        let err = wait_for::<(), _, _>(
            Duration::from_millis(100),
            "the moon to be DELIVERED",
            || async { Probe::NotYet("it is PENDING after 3 attempt(s)".into()) },
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "expected the moon to be DELIVERED within 0.1 s; it is PENDING after 3 attempt(s)"
        );
    }

    #[test]
    fn deliveries_are_described_with_what_a_reader_needs() {
        let d = pb::Delivery {
            recipient: "FR-DGSI".into(),
            state: pb::DeliveryState::Pending as i32,
            attempts: 3,
            last_error: "connection refused".into(),
            flag: pb::DeadlineFlag::Undelivered as i32,
            ladder: pb::LadderStep::Reminded as i32,
            ..Default::default()
        };
        assert_eq!(
            describe_delivery(&d),
            "PENDING after 3 attempt(s), last error \"connection refused\", 0 acknowledgement(s), flagged UNDELIVERED, ladder at REMINDED"
        );
    }
}
