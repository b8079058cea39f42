//! A fault-injecting TCP proxy, to put between two nodes.
//!
//! [`FaultProxy`] listens on a loopback port chosen by the OS and forwards
//! every connection to a target address, byte for byte: TLS stays end to
//! end between the two nodes, the proxy sees only ciphertext. What it does
//! to the traffic is a [`Fault`], switched at run time: pass, delay, drop,
//! black-hole, or reset after so many bytes. [`FaultProxy::heal`] goes back
//! to passing everything.
//!
//! ```no_run
//! # async fn demo(target: std::net::SocketAddr) -> std::io::Result<()> {
//! use tocsin_testkit::{Fault, FaultProxy};
//! let proxy = FaultProxy::start(target).await?;
//! // ... point a client at proxy.addr() ...
//! proxy.set(Fault::BlackHole); // the client hangs until its own timeouts
//! proxy.heal(); // what was held back flows again
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A direction of traffic through a [`FaultProxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// From the side that connected to the target: requests.
    ToTarget,
    /// From the target back to the side that connected: answers.
    FromTarget,
}

/// What a [`FaultProxy`] does to the traffic it carries. A new fault applies
/// at once to open connections as well as to new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Everything passes (a healed link).
    Pass,
    /// Every chunk read, in either direction, is held this long before it
    /// is passed on: a slow link.
    Delay(Duration),
    /// The link is down and says so: open connections are reset, and new
    /// ones are reset as soon as they are accepted, so callers fail at once.
    Drop,
    /// The link swallows everything and says nothing: connections are
    /// accepted and kept open but no byte passes, so callers hang until
    /// their own timeouts. Bytes are held back, not lost (as TCP
    /// retransmission would have it): when the fault is lifted they flow
    /// on, late.
    BlackHole,
    /// `bytes` more bytes pass in `flow` (counted over all connections from
    /// the moment the fault is set); the connection that carries one byte
    /// more is reset, as is any later one that carries anything in `flow`.
    /// `ResetAfter { flow: Flow::FromTarget, bytes: 0 }` lets requests
    /// through and cuts the link as the answer comes back.
    ResetAfter {
        /// The direction counted.
        flow: Flow,
        /// How many bytes pass before the reset.
        bytes: u64,
    },
}

/// What a [`FaultProxy`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections the proxy cut with a reset (by a fault or
    /// [`FaultProxy::reset_all`]).
    pub resets: u64,
    /// Bytes passed on to the target.
    pub to_target: u64,
    /// Bytes passed back from the target.
    pub from_target: u64,
}

#[derive(Debug, Clone, Copy)]
struct State {
    fault: Fault,
    /// Bumped by [`FaultProxy::reset_all`]: every connection older than the
    /// current value is cut.
    cuts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    resets: AtomicU64,
    to_target: AtomicU64,
    from_target: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    target: Mutex<SocketAddr>,
    state: watch::Sender<State>,
    /// What is left to pass under [`Fault::ResetAfter`].
    budget: Mutex<u64>,
    counters: Counters,
}

/// Why a relay ends with a reset rather than a clean close.
struct Cut;

impl Shared {
    /// Takes up to `n` bytes from the reset budget; returns how many may pass.
    fn take_budget(&self, n: u64) -> u64 {
        let mut left = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let pass = n.min(*left);
        *left -= pass;
        pass
    }

    fn count(&self, flow: Flow, n: usize) {
        let counter = match flow {
            Flow::ToTarget => &self.counters.to_target,
            Flow::FromTarget => &self.counters.from_target,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A TCP proxy on `127.0.0.1:0` that forwards to one target and injects
/// [`Fault`]s on command. It stops, closing its connections, when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target`, passing everything. The target need not
    /// be up: a connection to a target that refuses is reset.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State {
            fault: Fault::Pass,
            cuts: 0,
        });
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            state,
            budget: Mutex::new(0),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    /// Where the proxy listens: point the client here.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        *self.shared.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forwards new connections to `target` from now on (open ones keep
    /// theirs; [`Self::reset_all`] cuts them): to put another server, a
    /// node of an older version say, in a node's place.
    pub fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.shared.state.borrow().fault
    }

    /// Puts `fault` in force, for open connections and new ones.
    pub fn set(&self, fault: Fault) {
        if let Fault::ResetAfter { bytes, .. } = fault {
            *self.shared.budget.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
        }
        self.shared.state.send_modify(|s| s.fault = fault);
    }

    /// Lifts any fault: everything passes again, including what a black
    /// hole held back.
    pub fn heal(&self) {
        self.set(Fault::Pass);
    }

    /// Cuts every open connection now with a TCP reset, whatever the fault;
    /// new connections are not affected.
    pub fn reset_all(&self) {
        self.shared.state.send_modify(|s| s.cuts += 1);
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            connections: c.connections.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            to_target: c.to_target.load(Ordering::Relaxed),
            from_target: c.from_target.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The connections live in the accept loop's JoinSet, which aborts
        // them when it goes.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(relay(client, shared.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: try again
                    // shortly rather than spin.
                    tracing::warn!(error = %e, "fault proxy cannot accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Closes `stream` with a TCP reset instead of the orderly FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Resolves when a fault or [`FaultProxy::reset_all`] cuts a connection
/// that was opened when the cut count was `cuts`.
async fn cut(mut state: watch::Receiver<State>, cuts: u64) {
    let _ = state
        .wait_for(|s| s.cuts != cuts || s.fault == Fault::Drop)
        .await;
}

/// Waits while the link is a black hole; returns the fault that ended it.
async fn past_black_hole(state: &mut watch::Receiver<State>) -> Fault {
    match state.wait_for(|s| s.fault != Fault::BlackHole).await {
        Ok(s) => s.fault,
        // The proxy is gone; so is the connection, soon.
        Err(_) => Fault::Drop,
    }
}

async fn relay(mut client: TcpStream, shared: Arc<Shared>) {
    let mut state = shared.state.subscribe();
    let opened = *state.borrow_and_update();
    if opened.fault == Fault::Drop {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        reset(client);
        return;
    }
    let cut_now = cut(state.clone(), opened.cuts);
    tokio::pin!(cut_now);
    // Even the connection to the target waits out a black hole, as the
    // client's first packets would.
    let upstream = tokio::select! {
        _ = &mut cut_now => None,
        upstream = async {
            past_black_hole(&mut state).await;
            let target = *shared.target.lock().unwrap_or_else(|e| e.into_inner());
            TcpStream::connect(target).await.ok()
        } => upstream,
    };
    let Some(mut upstream) = upstream else {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let outcome = {
        let (client_in, client_out) = client.split();
        let (upstream_in, upstream_out) = upstream.split();
        let both = async {
            tokio::try_join!(
                pump(client_in, upstream_out, Flow::ToTarget, &shared),
                pump(upstream_in, client_out, Flow::FromTarget, &shared),
            )
        };
        tokio::select! {
            r = both => r.map(|_| ()),
            _ = &mut cut_now => Err(Cut),
        }
    };
    if outcome.is_err() {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        reset(client);
        reset(upstream);
    }
}

/// Carries one direction until end of stream (passed on as a half close),
/// or until an error or a fault cuts the connection.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    flow: Flow,
    shared: &Shared,
) -> Result<(), Cut> {
    let mut state = shared.state.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // In a black hole, stop reading: the sender's buffers fill and it
        // stalls, as behind a dead route.
        past_black_hole(&mut state).await;
        let n = from.read(&mut buf).await.map_err(|_| Cut)?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        // A chunk read just before the hole opened waits until it closes.
        let mut pass = n;
        let mut then_cut = false;
        match past_black_hole(&mut state).await {
            Fault::Pass | Fault::BlackHole => {}
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Drop => return Err(Cut),
            Fault::ResetAfter { flow: f, .. } => {
                if f == flow {
                    pass = shared.take_budget(n as u64) as usize;
                    then_cut = pass < n;
                }
            }
        }
        to.write_all(&buf[..pass]).await.map_err(|_| Cut)?;
        shared.count(flow, pass);
        if then_cut {
            return Err(Cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: writes back whatever it reads, until EOF.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await?;
        Ok(back)
    }

    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn passes_bytes_both_ways_and_counts_them() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"hello").await.unwrap(), b"hello");
        let stats = proxy.stats();
        assert_eq!(
            (stats.connections, stats.to_target, stats.from_target),
            (1, 5, 5)
        );
        // A half close passes through: the echo server sees EOF and closes.
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
        assert_eq!(proxy.stats().resets, 0);
    }

    #[tokio::test]
    async fn a_black_hole_holds_bytes_until_healed() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        proxy.set(Fault::BlackHole);
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"held").await.unwrap();
        new.write_all(b"also").await.unwrap();
        let mut buf = [0u8; 4];
        for s in [&mut open, &mut new] {
            let waited =
                tokio::time::timeout(Duration::from_millis(200), s.read_exact(&mut buf)).await;
            assert!(waited.is_err(), "nothing comes out of a black hole");
        }
        proxy.heal();
        for (s, want) in [(&mut open, b"held"), (&mut new, b"also")] {
            tokio::time::timeout(PATIENCE, s.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf, want);
        }
    }

    #[tokio::test]
    async fn drop_resets_open_and_new_connections() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        proxy.set(Fault::Drop);
        let mut buf = [0u8; 1];
        let err = tokio::time::timeout(PATIENCE, open.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        let failed = tokio::time::timeout(PATIENCE, round_trip(&mut new, b"x"))
            .await
            .unwrap();
        assert!(failed.is_err());
        assert_eq!(proxy.stats().resets, 2);

        proxy.heal();
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");
    }

    #[tokio::test]
    async fn reset_after_passes_so_many_bytes_then_cuts() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.set(Fault::ResetAfter {
            flow: Flow::FromTarget,
            bytes: 3,
        });
        s.write_all(b"abcdef").await.unwrap();
        // The request reaches the target whole; the answer is cut short.
        let mut got = Vec::new();
        let err = tokio::time::timeout(PATIENCE, s.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        let stats = proxy.stats();
        assert_eq!((stats.to_target, stats.from_target), (6, 3));
        assert_eq!(stats.resets, 1);
        assert!(got.len() <= 3, "{got:?}");
    }

    #[tokio::test]
    async fn reset_all_cuts_open_connections_only() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut open, b"warm").await.unwrap();
        proxy.reset_all();
        let mut buf = [0u8; 1];
        let err = tokio::time::timeout(PATIENCE, open.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut new, b"new").await.unwrap(), b"new");
    }

    #[tokio::test]
    async fn a_delay_slows_each_chunk_both_ways() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        proxy.set(Fault::Delay(Duration::from_millis(100)));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(round_trip(&mut s, b"slow").await.unwrap(), b"slow");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_target_that_is_down_means_a_reset() {
        let gone = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let proxy = FaultProxy::start(gone).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .unwrap();
        assert!(r.is_err(), "{r:?}");
        assert_eq!(proxy.stats().resets, 1);
    }
}
