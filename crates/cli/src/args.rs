//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Tocsin: signed, receipted, acknowledged warnings between agencies.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run an agency node.
    Node(NodeArgs),
    /// Issue the federation's certificates.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Send or show one alert (as an operator).
    #[command(subcommand)]
    Alert(AlertCommand),
    /// List alerts (as an operator).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Follow this node's events as they happen (as an operator).
    Watch(WatchArgs),
    /// What this node holds about a subject (as an operator).
    #[command(subcommand)]
    Subject(SubjectCommand),
    /// Start a demo federation of real nodes, replay a scenario on it live,
    /// and tell what happened.
    Demo(DemoArgs),
    /// Replay scenarios against a federation already running.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// The verified history of an alert, or of every alert about a subject,
    /// as this node saw it, gaps included (as an operator).
    Timeline(TimelineArgs),
    /// Check or export a node's tamper-evident record (its hash-chained
    /// audit log and the signed envelopes it commits to).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Merge several agencies' exported audit bundles into one verified
    /// timeline, cross-check them, and name every gap: who was told what,
    /// and who answered.
    Postmortem(PostmortemArgs),
    /// Publish this agency's watchlist entries, and see those held from
    /// other agencies (as an operator).
    #[command(subcommand)]
    Watchlist(crate::watchlist_cmd::WatchlistCommand),
    /// Screen a person against every watchlist entry this node holds
    /// (as an operator).
    Screen(Box<crate::screen_cmd::ScreenArgs>),
    /// Write this agency's alerts, hit reports and watchlist entries as a
    /// STIX 2.1 bundle, for MISP, OpenCTI and other STIX tools (as an
    /// operator).
    Export(crate::stix_cmd::ExportArgs),
    /// Move an agency's store between backends.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy a SQLite store (a node's data directory) into an empty
    /// PostgreSQL database, in one transaction; the audit chain is checked
    /// before and after. The SQLite store is not changed. Stop the node
    /// first.
    Migrate(StoreMigrateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreMigrateArgs {
    /// The node's data directory (its SQLite store).
    #[arg(long)]
    pub(crate) from: PathBuf,
    /// The empty PostgreSQL database (a connection string, as for
    /// `[store] url`).
    #[arg(long)]
    pub(crate) to: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the chain, every event and every stored envelope's signature,
    /// in a node's store or in an exported bundle; report the first entry
    /// changed, removed or inserted. Exits non-zero on any problem.
    Verify(AuditVerifyArgs),
    /// Write the audit log with its envelopes and a head signed by the
    /// agency to a bundle that others check offline with the CA
    /// certificate alone.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditVerifyArgs {
    /// The node's configuration file: its data directory, federation and
    /// CA certificate.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// The node's data directory (default: the configuration's).
    #[arg(long, conflicts_with = "bundle")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The node's PostgreSQL store, a connection string (default: the
    /// configuration's `[store] url`).
    #[arg(long, conflicts_with_all = ["bundle", "data_dir"])]
    pub(crate) store_url: Option<String>,
    /// Check this exported bundle instead of a store.
    #[arg(long)]
    pub(crate) bundle: Option<PathBuf>,
    /// The federation CA certificate (default: the configuration's).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// An earlier bundle of this node: the store must still hold every
    /// entry up to the head it signed.
    #[arg(long, conflicts_with = "bundle")]
    pub(crate) against: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuditExportArgs {
    /// The node's configuration file: its data directory, federation, CA
    /// certificate and signing key.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// The node's data directory (default: the configuration's).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The node's PostgreSQL store, a connection string (default: the
    /// configuration's `[store] url`).
    #[arg(long, conflicts_with = "data_dir")]
    pub(crate) store_url: Option<String>,
    /// The bundle to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PostmortemArgs {
    /// An audit bundle (`tocsin audit export`); give one per agency.
    #[arg(long = "bundle", required = true)]
    pub(crate) bundles: Vec<PathBuf>,
    /// The federation CA certificate every record is checked against.
    #[arg(long)]
    pub(crate) ca: PathBuf,
    /// The federation file: its id, and the deadlines late
    /// acknowledgements are judged by (default: the protocol's).
    #[arg(long)]
    pub(crate) federation: Option<PathBuf>,
    /// Only the records linked to this subject (alert id, document number
    /// or name).
    #[arg(long)]
    pub(crate) subject: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TimelineArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// One alert.
    #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
    pub(crate) alert: Option<String>,
    /// Every alert about a subject (alert id, document number or name).
    #[arg(long)]
    pub(crate) subject: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// A scenario name from deploy/demo/scenarios (paris-2015,
    /// paris-2015-answered, outage) or a scenario file.
    pub(crate) scenario: Option<String>,
    /// Scenario seconds per real second (default: the scenario's own).
    #[arg(long)]
    pub(crate) speed: Option<f64>,
    /// Where to keep certificates, stores and logs (default: a new
    /// temporary directory, kept and printed at the end).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Print the post-mortem as JSON, and nothing else.
    #[arg(long)]
    pub(crate) json: bool,
    /// Where federation.toml and scenarios/ are (default: deploy/demo).
    #[arg(long)]
    pub(crate) demo_dir: Option<PathBuf>,
    /// Open the federation view in a browser while the scenario plays,
    /// and the post-mortem's timeline after it (its address and token are
    /// printed once, on stderr); then serve until Ctrl-C.
    #[arg(long)]
    pub(crate) web: bool,
    /// Where the federation view listens: loopback only.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        requires = "web"
    )]
    pub(crate) web_listen: std::net::SocketAddr,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScenarioCommand {
    /// Replay a scenario against running nodes, with progress and a
    /// post-mortem.
    Run(ScenarioRunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ScenarioRunArgs {
    /// The scenario file.
    pub(crate) file: PathBuf,
    /// The federation file the nodes run with.
    #[arg(long)]
    pub(crate) federation: PathBuf,
    /// A directory with one subdirectory of operator profiles per agency
    /// (as `tocsin pki issue-operator` writes them).
    #[arg(long)]
    pub(crate) operators: PathBuf,
    /// Scenario seconds per real second (default: the scenario's own).
    #[arg(long)]
    pub(crate) speed: Option<f64>,
    /// The real instant the nodes were given as --clock-origin (default:
    /// now).
    #[arg(long)]
    pub(crate) clock_origin: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the post-mortem as JSON, and nothing else.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubjectCommand {
    /// The alerts about a subject, who answered, and its flags.
    Show(SubjectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SubjectArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// An alert id, a document number, or a name (case, diacritics and
    /// word order do not matter).
    pub(crate) query: String,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Replay stored events after this id first (0 for all of them).
    #[arg(long)]
    pub(crate) from: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The node's configuration file (TOML).
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// How long to wait for connections to drain on shutdown.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) grace: std::time::Duration,
    /// Run on scenario time starting at this instant (RFC 3339), instead of
    /// real time; overrides the configuration's [clock].
    #[arg(long)]
    pub(crate) clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// How many times faster than real time scenario time runs.
    #[arg(long, requires = "clock_start")]
    pub(crate) clock_speed: Option<f64>,
    /// The real instant (RFC 3339) at which scenario time reads
    /// --clock-start; give every node of a federation the same one.
    #[arg(long, requires = "clock_start")]
    pub(crate) clock_origin: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the federation CA and every agency's node and signing certificates.
    Init(PkiInitArgs),
    /// Issue an operator certificate and connection profile.
    IssueOperator(IssueOperatorArgs),
    /// Revoke an agency's or operator's certificates and rewrite the CRL;
    /// nodes pick it up without a restart.
    Revoke(RevokeArgs),
    /// Issue an agency a new node certificate and key in place of the old
    /// ones; its running node picks them up without a restart.
    Renew(RenewArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The PKI directory made by `tocsin pki init`.
    #[arg(long, default_value = "pki")]
    pub(crate) dir: PathBuf,
    /// The agency whose certificates (node and signing, or the operator's
    /// with --operator-name) are revoked.
    #[arg(long, required_unless_present = "cert")]
    pub(crate) agency: Option<String>,
    /// Revoke this operator of --agency rather than the agency itself.
    #[arg(long, requires = "agency")]
    pub(crate) operator_name: Option<String>,
    /// Revoke these certificate files instead (PEM, issued by this CA).
    #[arg(long, conflicts_with = "agency")]
    pub(crate) cert: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RenewArgs {
    /// The PKI directory made by `tocsin pki init`.
    #[arg(long, default_value = "pki")]
    pub(crate) dir: PathBuf,
    /// The agency whose node certificate is renewed.
    #[arg(long)]
    pub(crate) agency: String,
}

#[derive(Debug, Args)]
pub(crate) struct PkiInitArgs {
    /// The federation file.
    #[arg(long)]
    pub(crate) federation: PathBuf,
    /// The directory to create.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IssueOperatorArgs {
    /// The PKI directory made by `tocsin pki init`.
    #[arg(long, default_value = "pki")]
    pub(crate) dir: PathBuf,
    /// The operator's agency.
    #[arg(long)]
    pub(crate) agency: String,
    /// The operator's name (letters, digits, '.', '_', '-').
    #[arg(long)]
    pub(crate) name: String,
}

/// How an operator command reaches its node.
#[derive(Debug, Args, Clone)]
pub(crate) struct ConnectArgs {
    /// Operator profile written by `tocsin pki issue-operator`.
    #[arg(long, env = "TOCSIN_OPERATOR", global = true)]
    pub(crate) operator: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertCommand {
    /// Send an alert, from flags or from a TOML/JSON file.
    Send(Box<SendArgs>),
    /// Show one alert with its deliveries and receipts.
    Show(ShowArgs),
    /// Acknowledge an alert this agency received, with a disposition.
    Ack(AckArgs),
    /// Cancel an alert this agency sent: a new alert to the same
    /// recipients that stops the original's clock and must itself be
    /// acknowledged.
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// The alert to cancel.
    pub(crate) id: String,
    /// Why (becomes the cancel's text).
    #[arg(long, default_value = tocsin_core::alert::DEFAULT_CANCEL_NOTE)]
    pub(crate) note: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCommand {
    /// List alerts, newest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Read the alert from this TOML or JSON file instead of flags.
    #[arg(long, conflicts_with_all = ["to", "person", "identifier", "text"])]
    pub(crate) file: Option<PathBuf>,
    /// Recipient agencies, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) to: Vec<String>,
    /// FLASH, IMMEDIATE, PRIORITY or ROUTINE.
    #[arg(long, default_value = "ROUTINE")]
    pub(crate) precedence: String,
    /// Short category, such as "terrorism".
    #[arg(long, default_value = "general")]
    pub(crate) category: String,
    /// A person's full name (the alert's person subject).
    #[arg(long)]
    pub(crate) person: Option<String>,
    /// Another name of the person.
    #[arg(long, requires = "person")]
    pub(crate) alias: Vec<String>,
    /// The person's date of birth, YYYY-MM-DD.
    #[arg(long, requires = "person")]
    pub(crate) dob: Option<String>,
    /// The person's nationality (country code); repeatable.
    #[arg(long, requires = "person")]
    pub(crate) nationality: Vec<String>,
    /// A document, KIND:NUMBER[:COUNTRY]; repeatable.
    #[arg(long, requires = "person")]
    pub(crate) document: Vec<String>,
    /// Another subject, KIND:VALUE (e.g. phone:+33612345678); repeatable.
    #[arg(long)]
    pub(crate) identifier: Vec<String>,
    /// Free text.
    #[arg(long)]
    pub(crate) text: Option<String>,
    /// TLP label: CLEAR, GREEN, AMBER, AMBER+STRICT, RED.
    #[arg(long, default_value = "AMBER")]
    pub(crate) tlp: String,
    /// Source reliability, A-F.
    #[arg(long, default_value = "F")]
    pub(crate) reliability: String,
    /// Information credibility, 1-6.
    #[arg(long, default_value = "6")]
    pub(crate) credibility: String,
    /// Expiry, RFC 3339 (e.g. 2026-12-31T00:00:00Z).
    #[arg(long)]
    pub(crate) expires: Option<String>,
    /// Requested acknowledgement deadline, RFC 3339.
    #[arg(long)]
    pub(crate) respond_by: Option<String>,
    /// A client-chosen alert id (ULID), to make resubmission idempotent.
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// An earlier alert of ours this one adds to or corrects; repeatable.
    #[arg(long)]
    pub(crate) updates: Vec<String>,
    /// An earlier alert of ours this one replaces; repeatable.
    #[arg(long)]
    pub(crate) supersedes: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// The alert id.
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct AckArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// The alert id.
    pub(crate) id: String,
    /// ACTIONED, NOTED, NO_ACTION, NEEDS_INFO or DECLINED.
    #[arg(long)]
    pub(crate) disposition: String,
    /// A note for the originator (at most 4 KiB).
    #[arg(long, default_value = "")]
    pub(crate) note: String,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Only alerts received.
    #[arg(long, conflicts_with_all = ["outbox", "awaiting", "owed"])]
    pub(crate) inbox: bool,
    /// Only alerts sent.
    #[arg(long, conflicts_with_all = ["awaiting", "owed"])]
    pub(crate) outbox: bool,
    /// Sent alerts a recipient has not acknowledged yet (what others owe
    /// us), soonest deadline first.
    #[arg(long, conflicts_with = "owed")]
    pub(crate) awaiting: bool,
    /// Received alerts this agency has not acknowledged (what we owe),
    /// soonest deadline first.
    #[arg(long, conflicts_with = "overdue")]
    pub(crate) owed: bool,
    /// Unanswered alerts, either way, whose deadline has passed.
    #[arg(long, conflicts_with_all = ["inbox", "outbox", "awaiting"])]
    pub(crate) overdue: bool,
    /// What this agency owes (alerts and hit reports), ranked by risk with
    /// the reasons for each place: precedence and time left, the Admiralty
    /// grading, corroboration by independent agencies, watchlist hits and
    /// REPEATED_UNANSWERED on the subject (see README, "Triage").
    #[arg(long, conflicts_with_all = ["inbox", "outbox", "awaiting", "overdue"])]
    pub(crate) triage: bool,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
}
