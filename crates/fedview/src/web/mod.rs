//! The federation view in a browser: a thin axum adapter over [`View`].
//!
//! Server-rendered pages (`pages`), one pinned script and one stylesheet
//! embedded in the binary, and server-sent events (`/events`) carrying the
//! live part of the page whenever the view changes; a browser that
//! reconnects sends `Last-Event-ID` and gets the current state if it is
//! newer. Without the script the page still works: reload to follow, and
//! the scrubber is a form.
//!
//! Access: loopback only, and the per-start token of the node desk's
//! guard (`tocsin_node::web_access`). Read-only: no route changes
//! anything, on the view or on a node.

mod pages;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tocsin_node::web_access::{Access, guard, loopback_only};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::View;

const SCRIPT: &str = include_str!("fedview.js");
const STYLE: &str = include_str!("fedview.css");

/// Why the view could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not on loopback.
    #[error("{0}")]
    NotLoopback(String),
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The federation view's listener and this start's token.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    access: Access,
}

impl Server {
    /// Listens on `addr`, which must be on loopback (port 0 picks one),
    /// and draws this start's token.
    pub async fn bind(addr: SocketAddr) -> Result<Self, Error> {
        loopback_only(addr, "the federation view's address").map_err(Error::NotLoopback)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let access = Access::draw(
            addr,
            "tocsin_fedview",
            "Open the address <code>tocsin demo --web</code> printed when it \
             started (with <code>?token=</code>), or send \
             <code>Authorization: Bearer</code> with that token.",
        );
        Ok(Self {
            listener,
            addr,
            access,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This start's token.
    pub fn token(&self) -> &str {
        self.access.token()
    }

    /// The address to open first (it carries the token, and sets its
    /// cookie): to show once.
    pub fn login_url(&self) -> String {
        self.access.login_url(self.addr)
    }

    /// Serves `view` until `shutdown` resolves; open event streams end
    /// then too, so a browser left open does not hold the server.
    pub async fn serve(
        self,
        view: View,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let shared = Shared { view, stopping };
        let app = Router::new()
            .route("/", get(live))
            .route("/scrub", get(scrub))
            .route("/state.json", get(state))
            .route("/records/{agency}/{seq}", get(record))
            .route("/events", get(events))
            .route("/fedview.js", get(script))
            .route("/fedview.css", get(style))
            .layer(middleware::from_fn_with_state(self.access, guard))
            .with_state(shared);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await
    }
}

/// What every handler shares: the view, and whether the server stops.
#[derive(Clone)]
struct Shared {
    view: View,
    stopping: watch::Receiver<bool>,
}

/// `?at=`: a place on the post-mortem's timeline, from 0.
#[derive(Deserialize)]
struct At {
    at: Option<usize>,
}

/// `/`: the federation now, and the post-mortem once there is one.
async fn live(State(Shared { view, .. }): State<Shared>, Query(q): Query<At>) -> Html<String> {
    Html(pages::live(&view, &view.snapshot(), q.at))
}

/// `/scrub?at=`: the federation at one place of the timeline, for the
/// script to put in the page.
async fn scrub(State(Shared { view, .. }): State<Shared>, Query(q): Query<At>) -> Response {
    let snapshot = view.snapshot();
    match &snapshot.timeline {
        Some(tl) => Html(pages::scrubbed(&view, tl, q.at.unwrap_or(0))).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(pages::error(
                "no post-mortem yet: the scenario is still playing",
            )),
        )
            .into_response(),
    }
}

/// `/state.json`: the latest picture, for tools.
async fn state(State(Shared { view, .. }): State<Shared>) -> Response {
    match serde_json::to_string(&view.latest()) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `/records/{agency}/{seq}`: one signed record of the post-mortem.
async fn record(
    State(Shared { view, .. }): State<Shared>,
    UrlPath((agency, seq)): UrlPath<(String, usize)>,
) -> Response {
    let snapshot = view.snapshot();
    let found = snapshot
        .timeline
        .as_ref()
        .and_then(|tl| tl.record(&agency, seq).map(|r| (tl, r)));
    match found {
        Some((tl, r)) => Html(pages::record(&snapshot.title, tl, r)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(pages::error(&format!(
                "no record {seq} signed by {agency} in the post-mortem"
            ))),
        )
            .into_response(),
    }
}

/// `/events`: the live part of the page each time the view changes. Each
/// event's id is the view's version: a browser that reconnects with
/// `Last-Event-ID` gets the current state only if it is newer.
async fn events(State(Shared { view, stopping }): State<Shared>, headers: HeaderMap) -> Response {
    let seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let changes = view.subscribe();
    let stream = futures::stream::unfold(
        (view, changes, stopping, seen),
        |(view, mut changes, mut stopping, seen)| async move {
            loop {
                if *stopping.borrow_and_update() {
                    return None;
                }
                let version = *changes.borrow_and_update();
                if seen.is_none_or(|s| version > s) {
                    let snapshot = view.snapshot();
                    let data = serde_json::json!({
                        "version": snapshot.version,
                        "live": pages::now(&snapshot),
                        "concluded": snapshot.timeline.is_some(),
                    });
                    let event = Event::default()
                        .id(snapshot.version.to_string())
                        .data(data.to_string());
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (view, changes, stopping, Some(snapshot.version)),
                    ));
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return None },
                    stopped = stopping.changed() => if stopped.is_err() { return None },
                }
            }
        },
    );
    Sse::new(stream)
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

    #[tokio::test]
    async fn the_view_listens_on_loopback_only() {
        let err = Server::bind("0.0.0.0:0".parse().unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a loopback address"), "{err}");
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(server.addr().port(), 0);
        assert!(server.login_url().contains(server.token()));
    }

    /// An open event stream gets the current state at once, the next on
    /// a change, and ends when the server stops: a browser left open
    /// does not keep `tocsin demo --web` from stopping.
    #[tokio::test]
    async fn events_follow_the_view_and_end_when_the_server_stops() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (addr, token) = (server.addr(), server.token().to_owned());
        let view = View::new("test");
        view.show(crate::Picture::empty(
            "2015-01-01T00:00:00Z".parse().unwrap(),
            ["TR-MIT".parse().unwrap()],
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server.serve(view.clone(), async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Last-Event-ID: 0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 65536];
        let wait = std::time::Duration::from_secs(10);
        while !seen.contains("id: 1") {
            let n = tokio::time::timeout(wait, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.contains("TR-MIT"), "{seen}");
        view.show(crate::Picture::empty(
            "2015-01-02T00:00:00Z".parse().unwrap(),
            ["TR-MIT".parse().unwrap()],
        ));
        while !seen.contains("id: 2") {
            let n = tokio::time::timeout(wait, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        stop.send(()).unwrap();
        tokio::time::timeout(wait, served)
            .await
            .expect("the server stopped with a stream open")
            .unwrap()
            .unwrap();
    }
}
