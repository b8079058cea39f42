//! Helpers shared by the integration tests in this directory.

#![forbid(unsafe_code)]

use std::time::Duration;

use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::wait_until;
use tonic::transport::Channel;

/// How long a test waits for something that should happen in milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Submits `alert` and returns the stored record.
pub async fn submit(
    op: &mut OperatorClient<Channel>,
    alert: pb::Alert,
) -> anyhow::Result<pb::AlertRecord> {
    op.submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
        .await?
        .into_inner()
        .record
        .ok_or_else(|| anyhow::anyhow!("no record in answer"))
}

/// The alert's id.
pub fn id_of(record: &pb::AlertRecord) -> String {
    record
        .alert
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

/// The delivery to `recipient` in `record`.
pub fn delivery<'a>(record: &'a pb::AlertRecord, recipient: &str) -> Option<&'a pb::Delivery> {
    record.deliveries.iter().find(|d| d.recipient == recipient)
}

/// Fetches an alert.
pub async fn get(op: &mut OperatorClient<Channel>, id: &str) -> anyhow::Result<pb::AlertRecord> {
    Ok(op
        .get_alert(pb::GetAlertRequest { id: id.to_owned() })
        .await?
        .into_inner())
}

/// Waits until the delivery of `id` to `recipient` is DELIVERED; returns the record.
pub async fn wait_delivered(
    op: &OperatorClient<Channel>,
    id: &str,
    recipient: &str,
) -> anyhow::Result<pb::AlertRecord> {
    wait_until(
        PATIENCE,
        &format!("{id} is delivered to {recipient}"),
        || {
            let mut op = op.clone();
            let id = id.to_owned();
            let recipient = recipient.to_owned();
            async move {
                let record = get(&mut op, &id).await.ok()?;
                let state = delivery(&record, &recipient)?.state;
                (state == pb::DeliveryState::Delivered as i32).then_some(record)
            }
        },
    )
    .await
}

/// Lists alerts in one direction.
pub async fn list(
    op: &mut OperatorClient<Channel>,
    direction: pb::Direction,
) -> anyhow::Result<Vec<pb::AlertRecord>> {
    Ok(op
        .list_alerts(pb::ListAlertsRequest {
            direction: direction as i32,
            limit: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .alerts)
}

/// Acknowledges `id` as the operator behind `op`.
pub async fn ack(
    op: &mut OperatorClient<Channel>,
    id: &str,
    disposition: pb::Disposition,
    note: &str,
) -> Result<pb::AckRecord, tonic::Status> {
    Ok(op
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            alert_id: id.to_owned(),
            disposition: disposition as i32,
            note: note.to_owned(),
        })
        .await?
        .into_inner()
        .acknowledgement
        .unwrap_or_default())
}

/// Waits until the originator's record of `id` holds `n` acknowledgements
/// from `recipient`; returns the record.
pub async fn wait_acks(
    op: &OperatorClient<Channel>,
    id: &str,
    recipient: &str,
    n: usize,
) -> anyhow::Result<pb::AlertRecord> {
    wait_until(
        PATIENCE,
        &format!("{n} acknowledgements of {id} from {recipient}"),
        || {
            let mut op = op.clone();
            let id = id.to_owned();
            let recipient = recipient.to_owned();
            async move {
                let record = get(&mut op, &id).await.ok()?;
                (delivery(&record, &recipient)?.acknowledgements.len() >= n).then_some(record)
            }
        },
    )
    .await
}

/// Lists the open alerts that `filter` selects (what others owe us, what we
/// owe, what is overdue).
pub async fn open_list(
    op: &mut OperatorClient<Channel>,
    filter: pb::list_alerts_request::Filter,
) -> anyhow::Result<Vec<pb::AlertRecord>> {
    Ok(op
        .list_alerts(pb::ListAlertsRequest {
            filter: filter as i32,
            limit: 100,
            ..Default::default()
        })
        .await?
        .into_inner()
        .alerts)
}

/// Waits until the originator's delivery to `recipient` carries `flag`.
pub async fn wait_flag(
    op: &OperatorClient<Channel>,
    id: &str,
    recipient: &str,
    flag: pb::DeadlineFlag,
) -> anyhow::Result<()> {
    wait_until(
        PATIENCE,
        &format!("{id} to {recipient} is {flag:?}"),
        || {
            let mut op = op.clone();
            let id = id.to_owned();
            let recipient = recipient.to_owned();
            async move {
                let r = get(&mut op, &id).await.ok()?;
                (delivery(&r, &recipient)?.flag == flag as i32).then_some(())
            }
        },
    )
    .await
}

/// Waits until the recipient's own record of `id` is flagged OVERDUE.
pub async fn wait_owed_overdue(op: &OperatorClient<Channel>, id: &str) -> anyhow::Result<()> {
    wait_until(
        PATIENCE,
        &format!("{id} is overdue at the recipient"),
        || {
            let mut op = op.clone();
            let id = id.to_owned();
            async move {
                let r = get(&mut op, &id).await.ok()?;
                (r.flag == pb::DeadlineFlag::Overdue as i32).then_some(())
            }
        },
    )
    .await
}

/// Every stored event, from the start.
pub async fn events(op: &OperatorClient<Channel>) -> anyhow::Result<Vec<pb::Event>> {
    let mut stream = op
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();
    // The stored events arrive at once; stop at the first quiet moment.
    let mut out = Vec::new();
    while let Ok(Ok(Some(e))) =
        tokio::time::timeout(Duration::from_millis(300), stream.message()).await
    {
        out.push(e);
    }
    Ok(out)
}

/// The kinds of the events about `alert`, in order.
pub fn kinds(events: &[pb::Event], alert: &str) -> Vec<pb::EventKind> {
    events
        .iter()
        .filter(|e| e.alert_id == alert)
        .map(|e| pb::EventKind::try_from(e.kind).unwrap())
        .collect()
}
