//! Benchmarks over real in-process nodes: real mutual TLS on loopback,
//! real SQLite files with `synchronous = FULL`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use prost::Message;
use tocsin_core::{AgencyId, Identity};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{TestFederation, channel, draft, sign_as};
use tocsin_trust::tls::{self, AcceptorLimits};
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::drive::{Figures, Load, Progress, drive, histogram};
use crate::echo;
use crate::watch::EventWatch;

pub(crate) struct EchoService;

#[tonic::async_trait]
impl echo::echo_server::Echo for EchoService {
    async fn echo(
        &self,
        req: tonic::Request<echo::Payload>,
    ) -> Result<tonic::Response<echo::Payload>, tonic::Status> {
        Ok(tonic::Response::new(req.into_inner()))
    }

    async fn fetch(
        &self,
        req: tonic::Request<echo::FetchRequest>,
    ) -> Result<tonic::Response<echo::Payload>, tonic::Status> {
        let size = req.into_inner().size as usize;
        Ok(tonic::Response::new(echo::Payload {
            data: vec![7u8; size],
        }))
    }
}

/// Submits an alert to `recipients`; returns its id.
async fn submit(mut op: OperatorClient<Channel>, recipients: &[&str]) -> anyhow::Result<String> {
    let record = op
        .submit_alert(pb::SubmitAlertRequest {
            alert: Some(draft(recipients)),
        })
        .await?
        .into_inner()
        .record
        .context("no record")?;
    Ok(record.alert.map(|a| a.id).unwrap_or_default())
}

/// Agencies `P01-...` for a federation of `n` peers besides TR-MIT.
fn peers(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("P{i:02}-AGENCY")).collect()
}

/// The bare stack: a tonic unary echo over the same mutual TLS, with a
/// delivery request's size.
pub(crate) async fn baseline(fed: &TestFederation, load: &Load) -> anyhow::Result<Figures> {
    let server_material = fed.node_material("FR-DGSI")?;
    let client_material = fed.node_material("TR-MIT")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = tls::server_config(&server_material, Arc::new(|_: &Identity| true))?;
    let incoming = tls::Acceptor::new(listener, config, AcceptorLimits::default()).into_stream();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(echo::echo_server::EchoServer::new(EchoService))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            }),
    );
    let ch = channel(addr, &client_material, &AgencyId::new("FR-DGSI")?)?;
    let client = echo::echo_client::EchoClient::new(ch);
    let (_, sample) = sign_as(&fed.signer("TR-MIT")?, draft(&["FR-DGSI"]));
    let size = pb::DeliverRequest {
        alert: Some(sample),
    }
    .encoded_len();
    let payload = vec![7u8; size];
    // Warm the connection: one handshake, as a node's long-lived channel has.
    client
        .clone()
        .echo(echo::Payload {
            data: payload.clone(),
        })
        .await?;
    let (started, ended, h) = drive(load, move |_| {
        let mut client = client.clone();
        let data = payload.clone();
        async move {
            client.echo(echo::Payload { data }).await?;
            Ok(())
        }
    })
    .await?;
    let _ = stop.send(());
    let _ = server.await;
    let mut f = Figures::new("baseline", load, ended - started, &h);
    f.note = format!("unary echo of {size} bytes over mutual TLS");
    Ok(f)
}

/// Submits alerts through `op` to FR-DGSI at `load`; each counts when the
/// sender has committed the verified receipt (its DELIVERED event). Returns
/// when the first was submitted, when the last was delivered, and the
/// latencies (µs) from submission to delivery.
async fn submit_until_delivered(
    ops: Vec<OperatorClient<Channel>>,
    load: &Load,
) -> anyhow::Result<(Instant, Instant, Histogram<u64>)> {
    // Every front node's commits are in the one log: one watch sees all.
    let events = EventWatch::start(ops.first().context("no front node")?.clone()).await?;
    let submitted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let subs = submitted.clone();
    let (started, _, _) = drive(load, move |i| {
        let (op, subs) = (ops[i % ops.len()].clone(), subs.clone());
        async move {
            let t = Instant::now();
            let id = submit(op, &["FR-DGSI"]).await?;
            subs.lock().await.push((id, t));
            Ok(())
        }
    })
    .await?;
    let mut h = histogram()?;
    let mut ended = started;
    for (id, t0) in submitted.lock().await.iter() {
        let t1 = events.wait(pb::EventKind::Delivered, id, 1).await?;
        let _ = h.record((t1 - *t0).as_micros() as u64);
        ended = ended.max(t1);
    }
    Ok((started, ended, h))
}

/// Alerts TR-MIT to FR-DGSI; each counts when TR-MIT has committed the
/// verified receipt. Submissions are spread over TR-MIT's front nodes.
pub(crate) async fn deliver(fed: &TestFederation, load: &Load) -> anyhow::Result<Figures> {
    let (started, ended, h) = submit_until_delivered(fed.operators("TR-MIT")?, load).await?;
    let mut f = Figures::new("deliver", load, ended - started, &h);
    f.note = "submit to receipt verified and committed on the sender".into();
    Ok(f)
}

/// One alert to 30 agencies at a time; latency until all 30 receipts are
/// committed.
pub(crate) async fn fanout(load: &Load, width: usize) -> anyhow::Result<Figures> {
    let others = peers(width);
    let mut agencies = vec!["TR-MIT".to_owned()];
    agencies.extend(others.iter().cloned());
    let fed = TestFederation::builder().agencies(agencies).start().await?;
    let op = fed.operator("TR-MIT").await?;
    let events = EventWatch::start(op.clone()).await?;
    let recipients: Arc<Vec<String>> = Arc::new(others);
    // Warm every peer channel once, as a running federation has them.
    let warm = load.n.min(2);
    let all = move |op: OperatorClient<Channel>, recipients: Arc<Vec<String>>| async move {
        let r: Vec<&str> = recipients.iter().map(String::as_str).collect();
        submit(op, &r).await
    };
    for _ in 0..warm {
        let id = all(op.clone(), recipients.clone()).await?;
        events.wait(pb::EventKind::Delivered, &id, width).await?;
    }
    let (started, ended, h) = drive(load, move |_| {
        let (op, events, recipients, all) = (op.clone(), events.clone(), recipients.clone(), all);
        async move {
            let id = all(op, recipients).await?;
            events.wait(pb::EventKind::Delivered, &id, width).await?;
            Ok(())
        }
    })
    .await?;
    let mut f = Figures::new(&format!("fanout-{width}"), load, ended - started, &h);
    f.note = format!("one alert to {width} agencies, until all {width} receipts are committed");
    Ok(f)
}

/// `n` alerts queued while FR-DGSI is down; time to drain once it starts.
pub(crate) async fn backlog(load: &Load) -> anyhow::Result<Figures> {
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let op = fed.operator("TR-MIT").await?;
    // Follow the events from the start, so the drain does not begin with a
    // replay of every SUBMITTED event.
    let events = EventWatch::start(op.clone()).await?;
    let progress = Progress::new("queued", load.n);
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = ids.clone();
    let (q0, q1, _) = drive(load, move |_| {
        let (op, kept, progress) = (op.clone(), kept.clone(), progress.clone());
        async move {
            let id = submit(op, &["FR-DGSI"]).await?;
            kept.lock().await.push(id);
            progress.add(1);
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "  queued {} in {:.1}s; starting FR-DGSI",
        load.n,
        (q1 - q0).as_secs_f64()
    );
    let started = Instant::now();
    fed.start_node("FR-DGSI").await?;
    let mut ended = started;
    let ids = ids.lock().await;
    let progress = Progress::new("delivered", ids.len());
    for id in ids.iter() {
        ended = ended.max(events.wait(pb::EventKind::Delivered, id, 1).await?);
        progress.add(1);
    }
    let h = histogram()?;
    let mut f = Figures::new("backlog", load, ended - started, &h);
    f.concurrency = None;
    f.note = format!(
        "{} alerts queued for a peer that was down, drained after it starts",
        load.n
    );
    Ok(f)
}

/// The full cycle: deliver, acknowledge at the recipient, the originator
/// records the acknowledgement. Submissions and acknowledgements are
/// spread over each agency's front nodes.
pub(crate) async fn ack(fed: &TestFederation, load: &Load) -> anyhow::Result<Figures> {
    let senders = fed.operators("TR-MIT")?;
    let recipients = fed.operators("FR-DGSI")?;
    // Every front node's commits are in the one log: one watch sees all.
    let sent = EventWatch::start(senders[0].clone()).await?;
    let received = EventWatch::start(recipients[0].clone()).await?;
    let (started, ended, h) = drive(load, move |i| {
        let (sender, mut recipient, sent, received) = (
            senders[i % senders.len()].clone(),
            recipients[i % recipients.len()].clone(),
            sent.clone(),
            received.clone(),
        );
        async move {
            let id = submit(sender, &["FR-DGSI"]).await?;
            received.wait(pb::EventKind::Received, &id, 1).await?;
            recipient
                .acknowledge_alert(pb::AcknowledgeAlertRequest {
                    id: String::new(),
                    alert_id: id.clone(),
                    disposition: pb::Disposition::Noted as i32,
                    note: String::new(),
                })
                .await?;
            sent.wait(pb::EventKind::Acknowledged, &id, 1).await?;
            Ok(())
        }
    })
    .await?;
    let mut f = Figures::new("ack", load, ended - started, &h);
    f.note = "submit, deliver, acknowledge, until the originator has recorded the acknowledgement"
        .into();
    Ok(f)
}

/// TR-MIT floods FR-DGSI with deliveries straight from a peer client, as
/// fast as it can with `flood_c` in flight, while BE-VSSE's node sends at
/// the offered rate through its outbox. BE-VSSE's latency is what counts.
pub(crate) async fn flood(load: &Load, flood_c: usize) -> anyhow::Result<Vec<Figures>> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "BE-VSSE", "FR-DGSI"])
        .start()
        .await?;
    let steady = fed.operator("BE-VSSE").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, refused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let client = fed.peer_client("TR-MIT", "FR-DGSI")?;
    // Signed up front: a real flooder signs on its own machine, not with
    // the CPU of the node under test. When the pool runs out the flood
    // goes on with alerts already sent, which the node must still check.
    let seconds = load.n as f64 / load.rate.unwrap_or(100.0) + 1.0;
    let pool = ((seconds * 8_000.0) as usize).clamp(1_000, 200_000);
    eprintln!("  signing {pool} alerts for the flood");
    let signer = fed.signer("TR-MIT")?;
    let alerts: Arc<Vec<pb::Envelope>> = Arc::new(
        (0..pool)
            .map(|_| sign_as(&signer, draft(&["FR-DGSI"])).1)
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Everything runs in this process: its growth during the flood bounds
    // what the flooded node holds (the signed pool is already counted).
    let (rss_before, _) = tocsin_testkit::resident_mib(std::process::id())?;
    let flood_started = Instant::now();
    let mut flooders = Vec::new();
    for _ in 0..flood_c.max(1) {
        let (alerts, next, stop, mut client) =
            (alerts.clone(), next.clone(), stop.clone(), client.clone());
        let (accepted, refused, failed) = (accepted.clone(), refused.clone(), failed.clone());
        flooders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let alert = alerts[next.fetch_add(1, Ordering::Relaxed) % alerts.len()].clone();
                match client
                    .deliver(pb::DeliverRequest { alert: Some(alert) })
                    .await
                {
                    Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    // Let the flood build up before measuring the steady sender.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (started, ended, h) = submit_until_delivered(vec![steady], load).await?;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.await??;
    }
    let flood_elapsed = flood_started.elapsed();
    let (_, rss_peak) = tocsin_testkit::resident_mib(std::process::id())?;
    let mut steady_fig = Figures::new("flood: steady sender", load, ended - started, &h);
    steady_fig.note = "BE-VSSE at the offered rate, submit to receipt committed".into();
    let ok = accepted.load(Ordering::Relaxed);
    let no = refused.load(Ordering::Relaxed);
    let flood_load = Load {
        n: ok as usize,
        c: flood_c,
        rate: None,
        baseline_n: None,
    };
    let mut flood_fig = Figures::new("flood: flooder", &flood_load, flood_elapsed, &histogram()?);
    flood_fig.refused = Some(no);
    flood_fig.rss_mib = Some(rss_peak);
    flood_fig.note = format!(
        "TR-MIT delivering flat out with {flood_c} in flight: {ok} accepted, {no} refused with RESOURCE_EXHAUSTED, {} other errors; whole process {rss_before:.1} MiB before the flood, {rss_peak:.1} MiB at its peak",
        failed.load(Ordering::Relaxed)
    );
    Ok(vec![steady_fig, flood_fig])
}
