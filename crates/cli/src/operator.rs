//! The operator commands: a client of one's own node's operator service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::alert::{AlertDraft, Document, Person, Subject};
use tocsin_core::{AgencyId, AlertId, FederationId, Identity};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_trust::tls::{self, TlsMaterial};
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use crate::args::{
    AckArgs, CancelArgs, ConnectArgs, ListArgs, SendArgs, ShowArgs, SubjectArgs, WatchArgs,
};
use crate::output;

/// How an operator reaches its node; written by `tocsin pki issue-operator`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperatorProfile {
    pub(crate) federation: FederationId,
    pub(crate) agency: AgencyId,
    pub(crate) endpoint: String,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl OperatorProfile {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read operator profile {}", path.display()))?;
        let mut p: OperatorProfile = tocsin_core::toml_file::from_str(&text)
            .with_context(|| format!("invalid operator profile {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in [&mut p.ca, &mut p.cert, &mut p.key] {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        Ok(p)
    }
}

/// Where `profile`'s node listens, and a connector that speaks mutual TLS
/// to it as the profile's operator and accepts only that agency's node.
/// Reads the TLS material once; the connector can be cloned to reconnect.
fn endpoint(
    profile: &OperatorProfile,
) -> anyhow::Result<(
    Endpoint,
    impl Service<Uri, Response = tls::ClientIo, Error = std::io::Error, Future = tls::Connecting>
    + Clone
    + Send
    + 'static,
)> {
    let material = TlsMaterial::load(
        &profile.ca,
        &profile.cert,
        &profile.key,
        &profile.federation,
    )?;
    let config = tls::client_config(&material, Identity::Agency(profile.agency.clone()))?;
    let endpoint = Endpoint::from_shared(format!("http://{}", profile.endpoint))
        .with_context(|| format!("bad endpoint {:?}", profile.endpoint))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30));
    Ok((endpoint, tls::connector(config)))
}

/// Says which node could not be reached, and why; when another agency's
/// node answered at the profile's endpoint, whose it is.
fn unreachable(profile: &OperatorProfile, e: tonic::transport::Error) -> anyhow::Error {
    if let Some(wrong) = tls::unexpected_server(&e) {
        let found = match &wrong.presented {
            tls::Presented::Identity(Identity::Agency(agency)) => {
                format!("the node at {} is {agency}'s", wrong.address)
            }
            other => format!("the server at {} is {other}", wrong.address),
        };
        return anyhow::anyhow!(
            "{found}, but this profile is for {}'s node (check the endpoint in the operator profile)",
            profile.agency
        );
    }
    // Transport errors repeat their cause at each layer; the root says it all.
    let mut root: &dyn std::error::Error = &e;
    while let Some(next) = root.source() {
        root = next;
    }
    anyhow::anyhow!(
        "cannot connect to {}'s node at {}: {root}",
        profile.agency,
        profile.endpoint
    )
}

/// A channel to the node of the operator profile at `path`, connecting on
/// first use (and again after the node restarts), for clients of several
/// of its services.
pub(crate) fn lazy_channel(path: &Path) -> anyhow::Result<Channel> {
    let profile = OperatorProfile::load(path)?;
    let (endpoint, connector) = endpoint(&profile)?;
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The operator profile named by `--operator` or `TOCSIN_OPERATOR`.
pub(crate) fn profile(args: &ConnectArgs) -> anyhow::Result<OperatorProfile> {
    let Some(path) = &args.operator else {
        bail!(
            "no operator profile: pass --operator FILE or set TOCSIN_OPERATOR (see `tocsin pki issue-operator`)"
        );
    };
    OperatorProfile::load(path)
}

pub(crate) async fn connect(args: &ConnectArgs) -> anyhow::Result<OperatorClient<Channel>> {
    connect_profile(&profile(args)?).await
}

/// Connects to `profile`'s node now.
pub(crate) async fn connect_profile(
    profile: &OperatorProfile,
) -> anyhow::Result<OperatorClient<Channel>> {
    let (endpoint, connector) = endpoint(profile)?;
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| unreachable(profile, e))?;
    Ok(OperatorClient::new(channel))
}

/// Connects to the node of the profile `args` name now; returns the
/// profile and the channel, for the services besides `Operator`.
pub(crate) async fn connect_channel(
    args: &ConnectArgs,
) -> anyhow::Result<(OperatorProfile, Channel)> {
    let profile = profile(args)?;
    let (endpoint, connector) = endpoint(&profile)?;
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| unreachable(&profile, e))?;
    Ok((profile, channel))
}

/// Every event `client`'s node has stored, oldest first: they come at once,
/// and the first quiet moment ends the list.
pub(crate) async fn stored_events(
    client: &mut OperatorClient<Channel>,
) -> Result<Vec<pb::Event>, tonic::Status> {
    let mut stream = client
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Ok(Some(e))) =
        tokio::time::timeout(Duration::from_millis(300), stream.message()).await
    {
        out.push(e);
    }
    Ok(out)
}

/// The node's clock reading in an answer's `tocsin-time` header, which
/// every node's answer carries: deadlines are counted from it, since a node
/// may run on a scenario's clock far from this workstation's. This
/// workstation's clock if the node sent none (a node from before the
/// header).
pub(crate) fn node_time(metadata: &tonic::metadata::MetadataMap) -> DateTime<Utc> {
    metadata
        .get(tocsin_proto::TIME_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}

/// Turns a refusal into a message that says who refused what.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("node refused: {:?}: {}", status.code(), status.message())
}

fn parse_time(field: &str, value: &Option<String>) -> anyhow::Result<Option<DateTime<Utc>>> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .with_context(|| {
                    format!("--{field} {v:?} is not an RFC 3339 time such as 2026-12-31T00:00:00Z")
                })
        })
        .transpose()
}

fn draft_from_flags(args: &SendArgs) -> anyhow::Result<AlertDraft> {
    let mut subjects = Vec::new();
    if let Some(name) = &args.person {
        let documents = args
            .document
            .iter()
            .map(|d| {
                let parts: Vec<&str> = d.splitn(3, ':').collect();
                match parts.as_slice() {
                    [kind, number] => Ok(Document {
                        kind: (*kind).into(),
                        number: (*number).into(),
                        issuing_country: String::new(),
                    }),
                    [kind, number, country] => Ok(Document {
                        kind: (*kind).into(),
                        number: (*number).into(),
                        issuing_country: (*country).into(),
                    }),
                    _ => bail!("--document {d:?} is not KIND:NUMBER[:COUNTRY]"),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let date_of_birth = args
            .dob
            .as_deref()
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .with_context(|| format!("--dob {d:?} is not a date YYYY-MM-DD"))
            })
            .transpose()?;
        subjects.push(Subject::Person(Person {
            names: vec![name.clone()],
            aliases: args.alias.clone(),
            date_of_birth,
            nationalities: args.nationality.clone(),
            documents,
        }));
    }
    for ident in &args.identifier {
        let Some((kind, value)) = ident.split_once(':') else {
            bail!("--identifier {ident:?} is not KIND:VALUE");
        };
        subjects.push(Subject::Identifier {
            kind: kind.into(),
            value: value.into(),
        });
    }
    if subjects.is_empty() {
        bail!("an alert needs a subject: --person NAME or --identifier KIND:VALUE (or --file)");
    }
    if args.to.is_empty() {
        bail!("an alert needs recipients: --to AGENCY[,AGENCY...]");
    }
    let Some(text) = args.text.clone() else {
        bail!("an alert needs --text");
    };
    Ok(AlertDraft {
        id: args
            .id
            .as_deref()
            .map(|i| i.parse::<AlertId>())
            .transpose()?,
        precedence: args.precedence.parse()?,
        category: args.category.clone(),
        recipients: args
            .to
            .iter()
            .map(|r| AgencyId::new(r.trim()))
            .collect::<Result<_, _>>()?,
        subjects,
        text,
        source_reliability: args.reliability.parse()?,
        information_credibility: args.credibility.parse()?,
        tlp: args.tlp.parse()?,
        references: references(args)?,
        expires_at: parse_time("expires", &args.expires)?,
        respond_by: parse_time("respond-by", &args.respond_by)?,
    })
}

fn references(args: &SendArgs) -> anyhow::Result<Vec<tocsin_core::alert::Reference>> {
    use tocsin_core::alert::{Reference, ReferenceKind};
    let mut out = Vec::new();
    for (ids, kind) in [
        (&args.updates, ReferenceKind::Update),
        (&args.supersedes, ReferenceKind::Supersede),
    ] {
        for id in ids {
            out.push(Reference {
                alert_id: id.parse()?,
                kind,
            });
        }
    }
    Ok(out)
}

fn draft_from_file(path: &Path) -> anyhow::Result<AlertDraft> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read alert file {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(&text)
            .with_context(|| format!("invalid alert file {}", path.display()))
    } else {
        toml::from_str(&text).with_context(|| format!("invalid alert file {}", path.display()))
    }
}

pub(crate) async fn send(args: Box<SendArgs>) -> anyhow::Result<()> {
    let draft = match &args.file {
        Some(path) => draft_from_file(path)?,
        None => draft_from_flags(&args)?,
    };
    let mut client = connect(&args.connect).await?;
    let answer = client
        .submit_alert(pb::SubmitAlertRequest {
            alert: Some(draft.to_proto()),
        })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    let answer = answer.into_inner();
    let record = answer
        .record
        .context("the node answered without a record")?;
    output::print_record(&record, args.connect.json, Some(&answer.warnings), now)
}

pub(crate) async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.connect).await?;
    let answer = client
        .get_alert(pb::GetAlertRequest {
            id: args.id.clone(),
        })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    output::print_record(&answer.into_inner(), args.connect.json, None, now)
}

pub(crate) async fn ack(args: AckArgs) -> anyhow::Result<()> {
    let disposition: tocsin_core::alert::Disposition = args.disposition.parse()?;
    let mut client = connect(&args.connect).await?;
    let ack = client
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            id: String::new(),
            alert_id: args.id.clone(),
            disposition: disposition.to_wire(),
            note: args.note.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .acknowledgement
        .context("the node answered without an acknowledgement")?;
    output::print_ack(&ack, args.connect.json)
}

pub(crate) async fn list(args: ListArgs) -> anyhow::Result<()> {
    if args.triage {
        return crate::triage_cmd::run(args).await;
    }
    let direction = if args.inbox {
        pb::Direction::Inbound
    } else if args.outbox {
        pb::Direction::Outbound
    } else {
        pb::Direction::Unspecified
    };
    let mut client = connect(&args.connect).await?;
    let answer = client
        .list_alerts(pb::ListAlertsRequest {
            direction: direction as i32,
            limit: args.limit,
            filter: if args.overdue {
                pb::list_alerts_request::Filter::Overdue
            } else if args.awaiting {
                pb::list_alerts_request::Filter::Awaiting
            } else if args.owed {
                pb::list_alerts_request::Filter::Owed
            } else {
                pb::list_alerts_request::Filter::Unspecified
            } as i32,
        })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    let alerts = answer.into_inner().alerts;
    // REPEATED_UNANSWERED comes first: it is what nobody may miss.
    if !args.connect.json {
        let flags = client
            .list_subject_flags(pb::ListSubjectFlagsRequest {})
            .await
            .map_err(refused)?
            .into_inner()
            .flags;
        output::print_flags(&flags);
    }
    output::print_list(&alerts, args.connect.json, args.owed || args.overdue, now)
}

/// Follows the event stream, one line (or JSON object) per event. If the
/// connection drops, reconnects and resumes after the last event printed,
/// so nothing is missed or shown twice.
pub(crate) async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    // The profile and TLS material are read once; reconnecting reuses them.
    let profile = profile(&args.connect)?;
    let (endpoint, connector) = endpoint(&profile)?;
    let mut after = args.from;
    let mut retry = Duration::from_millis(500);
    loop {
        let connected = endpoint
            .connect_with_connector(connector.clone())
            .await
            .map_err(|e| unreachable(&profile, e));
        let mut client = match connected {
            Ok(c) => OperatorClient::new(c),
            Err(e) if after.is_some() => {
                eprintln!("watch: {e:#}; retrying in {retry:?}");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut stream = client
            .watch_events(pb::WatchEventsRequest { after_id: after })
            .await
            .map_err(refused)?
            .into_inner();
        loop {
            match stream.message().await {
                Ok(Some(event)) => {
                    after = Some(event.id);
                    retry = Duration::from_millis(500);
                    output::print_event(&event, args.connect.json)?;
                }
                Ok(None) => {
                    eprintln!("watch: the node closed the stream; reconnecting");
                    break;
                }
                Err(status) => {
                    eprintln!("watch: {}; reconnecting", status.message());
                    break;
                }
            }
        }
        // Resume after the last event printed (from the moment of
        // reconnection if none was printed yet).
        tokio::time::sleep(retry).await;
    }
}

pub(crate) async fn subject(args: SubjectArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.connect).await?;
    let answer = client
        .get_subject(pb::GetSubjectRequest {
            query: args.query.clone(),
        })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    output::print_subject(&answer.into_inner(), args.connect.json, now)
}

pub(crate) async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.connect).await?;
    let record = client
        .get_alert(pb::GetAlertRequest {
            id: args.id.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if record.direction != pb::Direction::Outbound as i32 {
        bail!(
            "alert {} was not sent by this agency: only its originator can cancel it",
            args.id
        );
    }
    let original = record
        .alert
        .context("the node answered without the alert")?;
    let alert = tocsin_core::alert::cancel_of(original, &args.id, &args.note);
    let answer = client
        .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    let answer = answer.into_inner();
    let record = answer
        .record
        .context("the node answered without a record")?;
    output::print_record(&record, args.connect.json, Some(&answer.warnings), now)
}
