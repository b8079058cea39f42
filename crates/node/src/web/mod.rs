//! The web desk: this node's triage list, alerts and live events in a
//! browser, served only when the node is configured with `web_listen`.
//!
//! A thin adapter over the domain, like the gRPC handlers: it checks the
//! token, calls `Node` methods (`triage`, `get`, `acknowledge`, `watch`)
//! and renders their views as HTML (`pages`) or server-sent events. No
//! SQL, no protocol logic.
//!
//! Access, in this first increment: the listener must be on loopback, and
//! every request carries the token drawn at start (a cookie set by
//! `GET /?token=...`, or `Authorization: Bearer`), checked by the guard
//! the federation view shares ([`crate::web_access`]). The token is logged
//! once, when the desk starts, and written to `<data_dir>/web.token`
//! (mode 0600) for local tools and tests; it is never logged again. Forms
//! carry the token as well, so another site cannot post through the
//! browser's cookie.

mod pages;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tocsin_core::Identity;
use tocsin_core::alert::Disposition;
use tocsin_trust::Signer;
use tocsin_trust::live::LiveTls;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::domain::Node;
use crate::outbox::LinkBoard;
use crate::server::StartError;
use crate::skew::SkewMonitor;
use crate::watchlist::Watchlists;
use crate::web_access::{Access, guard, loopback_only};

/// The name the desk's acknowledgements are signed under, as the
/// operator's name: the token says "someone at this node's console", not
/// who.
pub(crate) const OPERATOR: &str = "web-desk";

/// The file the token is written to, in the data directory.
pub const TOKEN_FILE: &str = "web.token";

/// The pinned script and style, served from the binary.
const SCRIPT: &str = include_str!("desk.js");
const STYLE: &str = include_str!("desk.css");

/// A web desk listener, checked to be on loopback.
#[derive(Debug)]
pub(crate) struct Desk {
    listener: TcpListener,
    addr: SocketAddr,
}

/// What the desk reads besides the `Node`: the other components whose
/// state it shows.
#[derive(Clone)]
pub(crate) struct Sources {
    /// Entries held and each owner's sync lag.
    pub(crate) watchlists: Watchlists,
    /// Each peer's link as the outbox last found it.
    pub(crate) links: LinkBoard,
    /// Each peer's clock skew as last measured.
    pub(crate) skew: SkewMonitor,
    /// The TLS certificate now presented (it may be reloaded).
    pub(crate) tls: Arc<LiveTls>,
    /// The envelope signer, for its certificate's expiry.
    pub(crate) signer: Arc<Signer>,
}

/// What every handler shares.
#[derive(Clone)]
struct Shared {
    node: Node,
    sources: Sources,
    access: Access,
}

impl Desk {
    /// Refuses a listener that is not on loopback: the token is the desk's
    /// only guard, and it travels in clear HTTP.
    pub(crate) fn check(listener: TcpListener) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(StartError::Listener)?;
        loopback_only(addr, "web_listen").map_err(StartError::Invalid)?;
        Ok(Self { listener, addr })
    }

    /// Draws this start's token, writes it to `<data_dir>/web.token` (mode
    /// 0600, replacing the last start's) and logs it, this once.
    pub(crate) fn issue_token(&self, data_dir: &Path) -> Result<Access, StartError> {
        let access = Access::draw(
            self.addr,
            "tocsin_desk",
            "Open the address the node printed when it started (with \
             <code>?token=</code>), or send <code>Authorization: Bearer</code> \
             with the token from <code>web.token</code> in its data directory.",
        );
        let path = data_dir.join(TOKEN_FILE);
        write_private(&path, access.token()).map_err(|e| {
            StartError::Invalid(format!(
                "cannot write the web token {}: {e}",
                path.display()
            ))
        })?;
        tracing::info!(
            url = %access.login_url(self.addr),
            token_file = %path.display(),
            "web desk serving (the token is shown this once)"
        );
        Ok(access)
    }

    /// Serves the desk until `shutdown` turns true.
    pub(crate) async fn serve(
        self,
        node: Node,
        sources: Sources,
        access: Access,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let shared = Shared {
            node,
            sources,
            access: access.clone(),
        };
        let app = Router::new()
            .route("/", get(triage))
            .route("/alerts", get(alerts))
            .route("/alerts/{id}", get(alert))
            .route("/alerts/{id}/ack", post(acknowledge))
            .route("/watchlists", get(watchlists))
            .route("/peers", get(peers))
            .route("/events", get(events))
            .route("/desk.js", get(script))
            .route("/desk.css", get(style))
            .layer(middleware::from_fn_with_state(access, guard))
            .with_state(shared);
        let stopped = async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        };
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(error = %e, "web desk stopped");
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode when reopened.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// A domain error as a page, with the status it calls for.
fn failed(e: crate::Error) -> Response {
    let status = match &e {
        crate::Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        crate::Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
        crate::Error::NotFound(_) => StatusCode::NOT_FOUND,
        crate::Error::AlreadyExists(_) => StatusCode::CONFLICT,
        crate::Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "web desk request failed");
    }
    (status, Html(pages::error(status, &e.to_string()))).into_response()
}

/// How many items a list page shows.
const PAGE_SIZE: usize = 50;

/// The last page a list goes to: the domain's lists take a limit, not an
/// offset, so a page is cut from the first `page * PAGE_SIZE + 1` items,
/// and this bounds what one request reads.
const MAX_PAGE: usize = 100;

/// `?page=`, counted from 1.
#[derive(Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

impl PageQuery {
    fn number(&self) -> usize {
        self.page.unwrap_or(1).clamp(1, MAX_PAGE)
    }
}

/// How many items to ask the domain for to show `page`, and whether
/// there is a next one.
fn limit_for(page: usize) -> u32 {
    u32::try_from(page * PAGE_SIZE + 1).unwrap_or(u32::MAX)
}

/// Page `page` of `items` (the first `limit_for(page)` of a list), and
/// whether more follow.
fn cut<T>(mut items: Vec<T>, page: usize) -> (Vec<T>, bool) {
    let more = items.len() > page * PAGE_SIZE && page < MAX_PAGE;
    items.truncate(page * PAGE_SIZE);
    let skip = ((page - 1) * PAGE_SIZE).min(items.len());
    (items.split_off(skip), more)
}

/// `/`: what this agency owes, ranked, and the live event list.
async fn triage(State(shared): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    // Read the cursor first: an event committed after it reaches the page
    // through /events even if it happens while the page renders.
    let after = match shared.node.last_event_id().await {
        Ok(id) => id,
        Err(e) => return failed(e),
    };
    let page = q.number();
    match shared.node.triage(limit_for(page)).await {
        Ok(items) => {
            let (items, more) = cut(items, page);
            Html(pages::triage(
                shared.node.agency(),
                &items,
                shared.node.now(),
                after,
                pages::Pager::new("/", page, more),
            ))
            .into_response()
        }
        Err(e) => failed(e),
    }
}

/// `/alerts`: every alert and hit report, sent and received, newest first.
async fn alerts(State(shared): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let page = q.number();
    match shared.node.list(None, limit_for(page)).await {
        Ok(items) => {
            let (items, more) = cut(items, page);
            Html(pages::alerts(
                shared.node.agency(),
                &items,
                pages::Pager::new("/alerts", page, more),
            ))
            .into_response()
        }
        Err(e) => failed(e),
    }
}

/// `/alerts/{id}`: one alert or hit report, and the acknowledge form.
async fn alert(State(shared): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    match shared.node.get(&id).await {
        Ok(Some(view)) => Html(pages::alert(
            shared.node.agency(),
            &view,
            shared.node.now(),
            shared.access.token(),
            &|envelope, kind, expected| shared.node.check_signature(envelope, kind, expected),
        ))
        .into_response(),
        Ok(None) => failed(crate::Error::NotFound(format!(
            "no alert {id:?} on {}",
            shared.node.agency()
        ))),
        Err(e) => failed(e),
    }
}

/// How many alerts `/watchlists` reads to find its recent hit reports.
const HIT_SCAN: u32 = 500;
/// How many recent hit reports it shows.
const RECENT_HITS: usize = 20;

/// `/watchlists`: entries held by owner, each owner's lag, recent hits.
async fn watchlists(State(shared): State<Shared>) -> Response {
    let w = &shared.sources.watchlists;
    let entries = match w.entries("").await {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let lags = match w.sync_status().await {
        Ok(l) => l,
        Err(e) => return failed(e),
    };
    let hits: Vec<_> = match shared.node.list(None, HIT_SCAN).await {
        Ok(all) => all
            .into_iter()
            .filter(|v| v.alert.hit.is_some())
            .take(RECENT_HITS)
            .collect(),
        Err(e) => return failed(e),
    };
    Html(pages::watchlists(
        shared.node.agency(),
        &entries,
        &lags,
        &hits,
    ))
    .into_response()
}

/// `/peers`: each other member's endpoint, link and clock skew, and
/// this node's certificates' expiry.
async fn peers(State(shared): State<Shared>) -> Response {
    let s = &shared.sources;
    let skews: std::collections::BTreeMap<_, _> = s.skew.snapshot().into_iter().collect();
    let certificates = s.tls.peer_certificates();
    let peers: Vec<pages::Peer<'_>> = s
        .watchlists
        .federation
        .agencies
        .iter()
        .filter(|a| &a.id != shared.node.agency())
        .map(|a| pages::Peer {
            agency: a,
            link: s.links.get(&a.id),
            skew: skews.get(&a.id).copied(),
            certificate: certificates
                .get(&tocsin_core::Identity::Agency(a.id.clone()))
                .copied(),
        })
        .collect();
    let expiry = |der: &[u8]| tocsin_trust::identity::not_after(der).map_err(|e| e.to_string());
    let tls = s
        .tls
        .chain()
        .first()
        .map(|c| expiry(c.as_ref()))
        .unwrap_or_else(|| Err("no certificate presented".into()));
    let certificates = [
        ("TLS (node) certificate", tls),
        ("envelope signing certificate", expiry(s.signer.cert_der())),
    ];
    Html(pages::peers(
        shared.node.agency(),
        &peers,
        s.skew.tolerance(),
        &certificates,
        shared.node.now(),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct AckForm {
    csrf: String,
    disposition: String,
    #[serde(default)]
    note: String,
}

/// `POST /alerts/{id}/ack`: the same domain call as the operator
/// service's AcknowledgeAlert, then back to the alert.
async fn acknowledge(
    State(shared): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<AckForm>,
) -> Response {
    if !shared.access.matches(&form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            Html(pages::error(
                StatusCode::FORBIDDEN,
                "the form did not carry this desk's token",
            )),
        )
            .into_response();
    }
    let disposition: Disposition = match form.disposition.parse() {
        Ok(d) => d,
        Err(e) => return failed(crate::Error::InvalidArgument(e.to_string())),
    };
    let operator = Identity::Operator {
        agency: shared.node.agency().clone(),
        name: OPERATOR.to_owned(),
    };
    let node = shared.node.clone();
    let path = format!("/alerts/{id}");
    // Detached, as in the gRPC handler: a browser that goes away does not
    // cancel a signed acknowledgement half-way.
    let done = tokio::spawn(async move {
        node.acknowledge(&operator, &id, disposition, form.note, None)
            .await
    })
    .await;
    match done {
        Ok(Ok(_)) => Redirect::to(&path).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => {
            tracing::error!(error = %e, "web desk acknowledgement failed");
            failed(crate::Error::Unavailable(
                "the acknowledgement failed".into(),
            ))
        }
    }
}

#[derive(Deserialize)]
struct After {
    after: Option<u64>,
}

/// `/events`: the node's event stream as server-sent events, each with
/// its id, so that a browser that reconnects resumes after the last one
/// it saw (`Last-Event-ID`, which wins over `?after=`).
async fn events(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<After>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let stream = match shared.node.watch(resume.or(query.after)).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let events = stream.map(|event| {
        event.map(|e| {
            Event::default()
                .id(e.id.to_string())
                .data(pages::event_json(&e).to_string())
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_cut_from_the_first_items_and_says_whether_more_follow() {
        let items: Vec<usize> = (0..limit_for(2) as usize).collect();
        let (first, more) = cut(items.clone(), 1);
        assert_eq!(
            (first.first(), first.len(), more),
            (Some(&0), PAGE_SIZE, true)
        );
        let (second, more) = cut(items[..2 * PAGE_SIZE].to_vec(), 2);
        assert_eq!(
            (second.first(), second.len(), more),
            (Some(&PAGE_SIZE), PAGE_SIZE, false)
        );
        let (past, more) = cut(vec![1, 2, 3], 2);
        assert!(past.is_empty() && !more);
        let q = PageQuery { page: Some(0) };
        assert_eq!(q.number(), 1);
        let q = PageQuery { page: Some(10_000) };
        assert_eq!(q.number(), MAX_PAGE);
    }

    #[tokio::test]
    async fn a_desk_off_loopback_is_refused() {
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
        let err = Desk::check(listener).unwrap_err().to_string();
        assert!(err.contains("is not a loopback address"), "{err}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(Desk::check(listener).is_ok());
    }
}
