//! Reaching a peer agency at any of its front nodes: the federation file
//! may list several endpoints for one agency (`endpoints`), all of which
//! present the agency's certificate, so any that answers will do.
//!
//! Not tonic's `Channel::balance_list`: it dials with tonic's own
//! connector, and every connection here must go through the node's TLS
//! connector (the peer's identity checked, the connection tracked for
//! revocation). Instead the channel's connector is wrapped: each time the
//! channel (re)connects, it tries the endpoints in order, starting from
//! the one that answered last, each for at most the connect timeout, and
//! takes the first that completes the TLS handshake. A channel stays on
//! the front node it reached until that connection breaks (HTTP/2
//! multiplexes every request on it); then it fails over. Spreading load
//! across front nodes is not the point: surviving the loss of one is.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tower::{Service, ServiceExt};

/// Wraps `inner` (a connector) so that it ignores the URI it is asked
/// for and tries each of `endpoints` instead, as the module says.
pub(crate) fn failover<C>(
    inner: C,
    endpoints: Vec<http::Uri>,
    attempt_timeout: Duration,
) -> impl Service<
    http::Uri,
    Response = C::Response,
    Error = io::Error,
    Future = BoxFuture<'static, io::Result<C::Response>>,
> + Clone
where
    C: Service<http::Uri, Error = io::Error> + Clone + Send + 'static,
    C::Response: Send + 'static,
    C::Future: Send + 'static,
{
    let endpoints: Arc<[http::Uri]> = endpoints.into();
    let answered = Arc::new(AtomicUsize::new(0));
    tower::service_fn(move |_asked: http::Uri| {
        let inner = inner.clone();
        let endpoints = endpoints.clone();
        let answered = answered.clone();
        Box::pin(async move {
            let n = endpoints.len();
            let start = answered.load(Ordering::Relaxed);
            let mut last = io::Error::new(io::ErrorKind::NotConnected, "no endpoint to try");
            for k in 0..n {
                let i = (start + k) % n;
                let uri = endpoints[i].clone();
                let mut connector = inner.clone();
                let attempt = async move { connector.ready().await?.call(uri).await };
                match tokio::time::timeout(attempt_timeout, attempt).await {
                    Ok(Ok(io)) => {
                        answered.store(i, Ordering::Relaxed);
                        return Ok(io);
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(endpoint = %endpoints[i], error = %e, "front node did not answer; trying the next");
                        last = e;
                    }
                    Err(_) => {
                        tracing::debug!(endpoint = %endpoints[i], "front node timed out; trying the next");
                        last = io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("{} did not answer in time", endpoints[i]),
                        );
                    }
                }
            }
            Err(last)
        }) as BoxFuture<'static, io::Result<C::Response>>
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain TCP connector, standing in for the TLS one.
    fn tcp() -> impl Service<
        http::Uri,
        Response = tokio::net::TcpStream,
        Error = io::Error,
        Future = BoxFuture<'static, io::Result<tokio::net::TcpStream>>,
    > + Clone {
        tower::service_fn(|uri: http::Uri| {
            Box::pin(async move {
                let authority = uri.authority().expect("host:port").to_string();
                tokio::net::TcpStream::connect(authority).await
            }) as BoxFuture<'static, _>
        })
    }

    /// A port nothing listens on.
    async fn closed_port() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn uri(addr: std::net::SocketAddr) -> http::Uri {
        format!("http://{addr}").parse().unwrap()
    }

    /// The first front node is down: the second answers, and is tried
    /// first next time; with both down the last error is returned.
    #[tokio::test]
    async fn a_connection_goes_to_whichever_front_node_answers() {
        let down = closed_port().await;
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        let mut connector = failover(
            tcp(),
            vec![uri(down), uri(up_addr)],
            Duration::from_secs(10),
        );
        for _ in 0..2 {
            let stream = connector
                .ready()
                .await
                .unwrap()
                .call(uri(down))
                .await
                .unwrap();
            assert_eq!(stream.peer_addr().unwrap(), up_addr);
            up.accept().await.unwrap();
        }
        drop(up);
        let err = connector
            .ready()
            .await
            .unwrap()
            .call(uri(down))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
