//! `tocsin`: run an agency node, issue the federation's certificates, and
//! send and inspect alerts and watchlists, and screen against them, as an
//! operator.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not the system allocator: a screen chases pointers across an
/// index of hundreds of MB and allocates per match, and mimalloc did both
/// faster and in less memory (docs/benchmarks.md, "Screening through the
/// node").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod audit_cmd;
mod demo;
mod json_lines;
mod live;
mod node_cmd;
mod operator;
mod output;
mod pki_cmd;
mod postmortem_cmd;
mod screen_cmd;
mod stix_cmd;
mod store_cmd;
mod timeline;
mod triage_cmd;
mod watchlist_cmd;

use args::{
    AlertCommand, AlertsCommand, AuditCommand, Cli, Command, PkiCommand, ScenarioCommand,
    StoreCommand, SubjectCommand,
};

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: node logs usually go to files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tocsin_trust::install_crypto_provider();
    init_tracing(match cli.command {
        Command::Node(_) => "info",
        _ => "warn",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node_cmd::run(args).await,
            Command::Pki(PkiCommand::Init(args)) => pki_cmd::init(args),
            Command::Pki(PkiCommand::IssueOperator(args)) => pki_cmd::issue_operator(args),
            Command::Pki(PkiCommand::Revoke(args)) => pki_cmd::revoke(args),
            Command::Pki(PkiCommand::Renew(args)) => pki_cmd::renew(args),
            Command::Alert(AlertCommand::Send(args)) => operator::send(args).await,
            Command::Alert(AlertCommand::Show(args)) => operator::show(args).await,
            Command::Alert(AlertCommand::Ack(args)) => operator::ack(args).await,
            Command::Alert(AlertCommand::Cancel(args)) => operator::cancel(args).await,
            Command::Alerts(AlertsCommand::List(args)) => operator::list(args).await,
            Command::Watch(args) => operator::watch(args).await,
            Command::Subject(SubjectCommand::Show(args)) => operator::subject(args).await,
            Command::Demo(args) => demo::demo(args).await,
            Command::Timeline(args) => timeline::timeline(args).await,
            Command::Scenario(ScenarioCommand::Run(args)) => demo::run(args).await,
            Command::Audit(AuditCommand::Verify(args)) => audit_cmd::verify(args).await,
            Command::Audit(AuditCommand::Export(args)) => audit_cmd::export(args).await,
            Command::Postmortem(args) => postmortem_cmd::run(args).await,
            Command::Watchlist(command) => watchlist_cmd::run(command).await,
            Command::Screen(args) => screen_cmd::run(*args).await,
            Command::Export(args) => stix_cmd::export(args).await,
            Command::Store(StoreCommand::Migrate(args)) => store_cmd::migrate(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
