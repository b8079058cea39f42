//! Scenario files replayed in tests: an in-process federation on a
//! `ManualClock`, and the post-mortem back as a typed value.
//!
//! ```
//! use tocsin_testkit::scenario::ScenarioTest;
//!
//! # #[tokio::main]
//! # async fn main() -> anyhow::Result<()> {
//! let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/demo");
//! let pm = ScenarioTest::load(
//!     format!("{demo}/scenarios/paris-2015.toml"),
//!     format!("{demo}/federation.toml"),
//! )?
//! .replay()
//! .await?;
//!
//! // Turkey's two notices about Mostefaï, never answered: flagged.
//! let flag = pm.flags_on("FR-DGSI").next().expect("a REPEATED_UNANSWERED flag");
//! assert_eq!(flag.alerts, ["mit-notice-1", "mit-notice-2"]);
//! // Iraq's warning, answered a day and 21 hours after its deadline.
//! let fr = pm.alert("inis-warning").unwrap().recipient("FR-DGSI").unwrap();
//! assert_eq!(fr.answer().unwrap().late_by_seconds, (24 + 21) * 3600);
//! # Ok(())
//! # }
//! ```
//!
//! [`ScenarioTest::start`] starts the federation file's agencies (its
//! observers, deadline policy and escalation ladder) as a
//! [`TestFederation`], every node on one `ManualClock` reading the
//! scenario's start; [`ScenarioFederation::replay`] replays the scenario
//! with [`tocsin_scenario::ManualDriver`]: the clock moves through every
//! deadline and ladder step in order, and after each step the replay waits
//! until the federation has settled (alerts delivered, acknowledgements
//! home, flags and ladder steps taken), so a year takes seconds and the
//! times in the post-mortem are exactly the scenario's.
//! `stop` and `start` steps stop and start the in-process nodes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use tocsin_core::AgencyId;
use tocsin_core::clock::ManualClock;
use tocsin_core::federation::Federation;
use tocsin_node::config::OutboxOptions;
pub use tocsin_scenario::{
    AckReport, AlertReport, AlertStatus, DeadlineFlag, FlagReport, HitReport, LadderStep,
    PostMortem, RecipientReport, Scenario, StepReport, Totals,
};
use tocsin_scenario::{
    AgencyClient, BoxError, Clients, ClockDriver, ManualDriver, NodeControl, Nodes, Observed,
    Observer, post_mortem, replay,
};

use crate::TestFederation;

/// A scenario and the federation to replay it against, before any node
/// starts.
#[derive(Debug, Clone)]
pub struct ScenarioTest {
    scenario: Scenario,
    federation: Federation,
    patience: Duration,
}

impl ScenarioTest {
    /// Reads a scenario file and a federation file (such as
    /// `deploy/demo/scenarios/paris-2015.toml` and
    /// `deploy/demo/federation.toml`); the scenario is checked against the
    /// federation. Relative paths are read from the working directory:
    /// under `cargo test`, the directory of the crate under test.
    pub fn load(scenario: impl AsRef<Path>, federation: impl AsRef<Path>) -> anyhow::Result<Self> {
        let federation = Federation::load(federation.as_ref())?;
        let scenario = Scenario::load(scenario.as_ref(), &federation)?;
        Ok(Self::new(scenario, federation))
    }

    /// `scenario` against `federation` (only its agencies, observers,
    /// deadlines and escalation ladder are used: nodes listen on ports of
    /// their own, with certificates of a federation of their own).
    pub fn new(scenario: Scenario, federation: Federation) -> Self {
        Self {
            scenario,
            federation,
            patience: Duration::from_secs(30),
        }
    }

    /// How long, in real time, the federation may take to settle after a
    /// step before the replay fails saying what is still going on (default
    /// 30 s).
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Starts the federation's agencies as in-process nodes on one manual
    /// clock reading the scenario's start, each watched by the replay's
    /// driver.
    pub async fn start(self) -> anyhow::Result<ScenarioFederation> {
        let clock = ManualClock::new(self.scenario.start);
        let mut driver = ManualDriver::new(clock).patience(self.patience);
        let ids: Vec<AgencyId> = self
            .federation
            .agencies
            .iter()
            .map(|a| a.id.clone())
            .collect();
        let names = || ids.iter().map(ToString::to_string);
        let mut builder = TestFederation::builder()
            .agencies(names())
            .observers(
                self.federation
                    .agencies
                    .iter()
                    .filter(|a| a.observer)
                    .map(|a| a.id.to_string()),
            )
            .escalation(self.federation.escalation)
            .deadlines(self.federation.deadlines)
            // Scenario time stands still while a peer is down; retries run
            // on real time, so keep them quick.
            .outbox(OutboxOptions {
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
                connect_timeout: Duration::from_secs(2),
                ..OutboxOptions::default()
            });
        for id in &ids {
            builder = builder.clock_for(id.as_str(), driver.clock_for(id));
        }
        let fed = builder.start().await?;
        let mut clients = Clients::new();
        for id in &ids {
            clients.insert(
                id.clone(),
                AgencyClient {
                    operator: fed.operator(id.as_str()).await?,
                    watchlist: fed.desk(id.as_str()).await?.watchlist()?,
                },
            );
        }
        // Connected (mutual TLS) and answering before the replay begins.
        for (id, client) in &clients {
            crate::wait_until(
                Duration::from_secs(10),
                &format!("{id}'s node answers its operator"),
                || {
                    let mut client = client.operator.clone();
                    async move {
                        client
                            .list_subject_flags(tocsin_proto::pb::ListSubjectFlagsRequest {})
                            .await
                            .ok()
                    }
                },
            )
            .await?;
        }
        Ok(ScenarioFederation {
            scenario: self.scenario,
            fed,
            driver,
            clients,
            narrative: Vec::new(),
            replayed: false,
        })
    }

    /// Starts the federation, replays the scenario and returns its
    /// post-mortem.
    pub async fn replay(self) -> anyhow::Result<PostMortem> {
        self.start().await?.replay().await
    }
}

/// A [`TestFederation`] on a manual clock, ready to replay its scenario.
pub struct ScenarioFederation {
    scenario: Scenario,
    fed: TestFederation,
    driver: ManualDriver,
    clients: Clients,
    narrative: Vec<String>,
    replayed: bool,
}

impl ScenarioFederation {
    /// Replays the scenario from its start to its end and returns the
    /// post-mortem, read from the nodes. Nodes the scenario leaves down are
    /// started again at its end first (what waited for them is delivered
    /// then). Only once: the clock has run.
    pub async fn replay(&mut self) -> anyhow::Result<PostMortem> {
        self.replay_inner(None).await
    }

    /// As [`replay`](Self::replay), with `observer` (the demo's federation
    /// view) reading the federation each time the clock has reached a
    /// step's time and after each step settled, as the demo's refresh
    /// does on real time.
    pub async fn replay_observed(&mut self, observer: &dyn Observer) -> anyhow::Result<PostMortem> {
        self.replay_inner(Some(observer)).await
    }

    async fn replay_inner(
        &mut self,
        observer: Option<&dyn Observer>,
    ) -> anyhow::Result<PostMortem> {
        if self.replayed {
            anyhow::bail!("scenario {} was replayed already", self.scenario.name);
        }
        self.replayed = true;
        let Self {
            scenario,
            fed,
            driver,
            clients,
            narrative,
            ..
        } = self;
        let mut control = Control {
            fed,
            down: BTreeSet::new(),
        };
        let mut narrate = |line: &str| narrative.push(line.to_owned());
        let mut observed;
        let driving: &mut dyn ClockDriver = match observer {
            Some(o) => {
                observed = Observed::new(driver, o);
                &mut observed
            }
            None => driver,
        };
        let replayed = replay(
            scenario,
            clients,
            driving,
            Some(&mut control as &mut dyn NodeControl),
            &mut narrate,
        )
        .await
        .with_context(|| format!("replay of scenario {}", scenario.name))?;
        // Nodes the scenario left down still hold their side of the story:
        // they come back at its end, and what waited for them arrives then.
        let down = std::mem::take(&mut control.down);
        for id in &down {
            control.fed.start_node(id.as_str()).await?;
        }
        if !down.is_empty() {
            driver.settle(Nodes::new(clients, &BTreeSet::new())).await?;
        }
        Ok(post_mortem(scenario, clients, &replayed).await?)
    }

    /// The lines of the replay, one per step, as `tocsin demo` prints them.
    pub fn narrative(&self) -> &[String] {
        &self.narrative
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The federation.
    pub fn federation(&self) -> &TestFederation {
        &self.fed
    }

    /// The federation, to stop or start a node by hand.
    pub fn federation_mut(&mut self) -> &mut TestFederation {
        &mut self.fed
    }

    /// The clock every node runs on.
    pub fn clock(&self) -> &ManualClock {
        self.driver.clock()
    }

    /// Each agency's operator client.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }
}

/// Stops and starts the in-process nodes for `stop` and `start` steps.
struct Control<'f> {
    fed: &'f mut TestFederation,
    /// The nodes stopped and not started again.
    down: BTreeSet<AgencyId>,
}

impl NodeControl for Control<'_> {
    fn stop<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.fed.stop_node(agency.as_str()).await?;
            self.down.insert(agency.clone());
            Ok(())
        })
    }

    fn start<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.fed.start_node(agency.as_str()).await?;
            self.down.remove(agency);
            Ok(())
        })
    }
}
