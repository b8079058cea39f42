//! `tocsin node`.

use anyhow::Context;
use tocsin_node::{NodeConfig, NodeOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::args::NodeArgs;

pub(crate) async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let mut config = NodeConfig::load(&args.config)?;
    if let Some(start) = args.clock_start {
        config.clock = Some(tocsin_node::config::ClockOptions {
            start,
            origin: args.clock_origin,
            speed: args.clock_speed.unwrap_or(1.0),
            pace: Vec::new(),
        });
    }
    let mut options = NodeOptions::from_config(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    if let Some(addr) = config.metrics_listen {
        options.metrics = Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?,
        );
    }
    if let Some(addr) = config.web_listen {
        options.web = Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve the web desk on {addr}"))?,
        );
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(tocsin_node::serve(options, listener, async move {
        let _ = stopped.await;
    }));
    tokio::select! {
        result = &mut server => return Ok(result.context("node task failed")??),
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "shutting down");
        }
    }
    let _ = stop.send(());
    match tokio::time::timeout(args.grace, &mut server).await {
        Ok(result) => Ok(result.context("node task failed")??),
        Err(_) => {
            tracing::warn!(grace = ?args.grace, "connections did not drain in time; exiting");
            server.abort();
            Ok(())
        }
    }
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        Ok("Ctrl-C")
    }
}
