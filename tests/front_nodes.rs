//! Agencies that run as two front nodes on one PostgreSQL database each
//! (issue 18): the federation file lists both endpoints, operators use
//! either node, and peers use whichever answers. Every alert is sent,
//! received, receipted and acknowledged exactly once, whichever node took
//! it; every deadline is flagged and every ladder step taken exactly once,
//! though both nodes' trackers wake; and when a front node stops, the
//! other carries its agency's traffic and its tracker's work.
//!
//! "Exactly once" is read from each agency's database itself: its event
//! log, where every send, receipt, flag and step is recorded.
//!
//! Without PostgreSQL binaries the test prints SKIPPED and passes, unless
//! `TOCSIN_REQUIRE_POSTGRES=1` (CI), when it fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_proto::pb;
use tocsin_store::{EventKind, Store};
use tocsin_testkit::{AlertBuilder, DeadlineFlag, Desk, Person, Precedence, TestFederation};

const TR: &str = "TR-MIT";
const FR: &str = "FR-DGSI";

fn flash() -> AlertBuilder {
    AlertBuilder::to([FR])
        .precedence(Precedence::Flash)
        .person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21"))
}

/// How many times `agency`'s database recorded each (kind's code, alert) event
/// for the alerts in `ids`.
async fn tally(
    fed: &TestFederation,
    agency: &str,
    ids: &[String],
) -> anyhow::Result<BTreeMap<(i64, String), usize>> {
    let url = fed
        .store_url(agency)?
        .expect("the agency's store is in PostgreSQL");
    let store = Store::connect(&url, Default::default()).await?;
    let events = store.events_after(0, u32::MAX).await?;
    store.close().await;
    let mut seen = BTreeMap::new();
    for e in events.into_iter().filter(|e| ids.contains(&e.alert_id)) {
        *seen.entry((e.kind.code(), e.alert_id)).or_default() += 1;
    }
    Ok(seen)
}

/// Every alert of `ids` was recorded once as `kind` in `agency`'s log.
async fn once_each(
    fed: &TestFederation,
    agency: &str,
    ids: &[String],
    kinds: &[EventKind],
) -> anyhow::Result<()> {
    let seen = tally(fed, agency, ids).await?;
    for kind in kinds {
        for id in ids {
            let n = seen.get(&(kind.code(), id.clone())).copied().unwrap_or(0);
            anyhow::ensure!(n == 1, "{agency} recorded {kind:?} {n} times for {id}");
        }
    }
    Ok(())
}

/// Sends `n` alerts, alternating between `desks`; returns their ids.
async fn send_alternately(desks: &[&Desk], n: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(desks[i % desks.len()].send(flash()).await?);
    }
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_front_nodes_per_agency_deliver_flag_and_fail_over_exactly_once() -> anyhow::Result<()>
{
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = TestFederation::builder()
        .postgres(server)
        .front_nodes(TR, 2)
        .front_nodes(FR, 2)
        .clock(Arc::new(clock.clone()))
        .escalation(Escalation {
            remind: 0.5,
            escalate: 1000.0,
            lapse: 1000.0,
        })
        .start()
        .await?;
    // The federation lists both of each agency's front nodes.
    let listed = fed
        .federation()
        .agency(&tocsin_core::AgencyId::new(FR)?)
        .map(|a| a.all_endpoints().len());
    assert_eq!(listed, Some(2));
    let tr = [fed.desk_on(TR, 0).await?, fed.desk_on(TR, 1).await?];
    let fr = [fed.desk_on(FR, 0).await?, fed.desk_on(FR, 1).await?];

    // Alerts submitted on either of TR-MIT's nodes: each delivered once,
    // received once, and seen alike from both nodes of either agency.
    let ids = send_alternately(&[&tr[0], &tr[1]], 12).await?;
    for (i, id) in ids.iter().enumerate() {
        tr[(i + 1) % 2].wait_delivered(id, FR).await?;
    }
    for desk in &fr {
        assert_eq!(desk.owed().await?.len(), ids.len(), "{}", desk.agency());
    }
    once_each(
        &fed,
        TR,
        &ids,
        &[EventKind::Submitted, EventKind::Delivered],
    )
    .await?;
    once_each(&fed, FR, &ids, &[EventKind::Received]).await?;

    // Deadlines: both trackers of each agency wake, one flags. Half the
    // deadline later, one reminder each, sent once and received once.
    clock.advance(Duration::minutes(11));
    for id in &ids {
        tr[0].wait_flag(id, FR, DeadlineFlag::Overdue).await?;
        fr[1].wait_inbound_flag(id, DeadlineFlag::Overdue).await?;
    }
    clock.advance(Duration::minutes(5));
    for id in &ids {
        tr[1].wait_step(id, FR, pb::LadderStep::Reminded).await?;
        tocsin_testkit::wait_until(
            tocsin_testkit::PATIENCE,
            "FR-DGSI holds the reminder",
            || {
                let desk = &fr[0];
                async move { desk.alert(id).await.ok().filter(|r| r.reminders >= 1) }
            },
        )
        .await?;
    }
    once_each(&fed, TR, &ids, &[EventKind::Overdue, EventKind::Reminded]).await?;
    once_each(&fed, FR, &ids, &[EventKind::Overdue, EventKind::Reminded]).await?;

    // Answers from either of FR-DGSI's nodes reach TR-MIT once.
    for (i, id) in ids.iter().enumerate() {
        fr[i % 2].ack(id, pb::Disposition::Noted, "seen").await?;
    }
    for id in &ids {
        tr[0].wait_acknowledged(id, FR).await?;
    }
    once_each(&fed, FR, &ids, &[EventKind::Acknowledged]).await?;
    once_each(&fed, TR, &ids, &[EventKind::Acknowledged]).await?;

    // One node of each agency stops. The other carries on: TR-MIT's
    // second node sends, finds FR-DGSI at its first node's address gone
    // and its second there, and its tracker takes over the deadlines.
    fed.stop_front(TR, 0).await?;
    fed.stop_front(FR, 0).await?;
    let later = send_alternately(&[&tr[1]], 4).await?;
    for id in &later {
        tr[1].wait_delivered(id, FR).await?;
    }
    clock.advance(Duration::minutes(11));
    for id in &later {
        tr[1].wait_flag(id, FR, DeadlineFlag::Overdue).await?;
        fr[1].wait_inbound_flag(id, DeadlineFlag::Overdue).await?;
    }
    // The stopped nodes come back; nothing is sent or flagged again.
    fed.start_front(TR, 0).await?;
    fed.start_front(FR, 0).await?;
    clock.advance(Duration::minutes(5));
    for id in &later {
        tr[0].wait_step(id, FR, pb::LadderStep::Reminded).await?;
    }
    once_each(
        &fed,
        TR,
        &later,
        &[
            EventKind::Submitted,
            EventKind::Delivered,
            EventKind::Overdue,
            EventKind::Reminded,
        ],
    )
    .await?;
    once_each(&fed, FR, &later, &[EventKind::Received, EventKind::Overdue]).await?;
    let all: Vec<String> = ids.iter().chain(&later).cloned().collect();
    let sent = tally(&fed, TR, &all).await?;
    let submitted = sent
        .keys()
        .filter(|(k, _)| *k == EventKind::Submitted.code())
        .count();
    assert_eq!(submitted, all.len());
    Ok(())
}

/// Watchlists on an agency of two front nodes: whichever node pulls an
/// owner's page or publishes an entry, both nodes' screening finds it, and
/// peers following either node's log get it; a removal on one node leaves
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_front_nodes_screen_what_either_synced_or_published() -> anyhow::Result<()> {
    use tocsin_testkit::{Screen, WatchEntry};
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", FR])
        .postgres(server)
        .front_nodes(FR, 2)
        .start()
        .await?;
    let be = fed.desk("BE-VSSE").await?;
    let fr = [fed.desk_on(FR, 0).await?, fed.desk_on(FR, 1).await?];
    let abdeslam = || Screen::of(Person::named("ABDESLAM Salah").born("1989-09-15"));
    let abaaoud = || Screen::of(Person::named("ABAAOUD Abdelhamid").born("1987-04-08"));

    // BE-VSSE's entry: both of FR-DGSI's front nodes pull, one stores it
    // first; both screen it.
    be.publish(
        WatchEntry::of(
            "BE-2015-017",
            Person::named("Salah Abdeslam").born("1989-09-15"),
        )
        .to([FR]),
    )
    .await?;
    for desk in &fr {
        desk.wait_hit(abdeslam(), "BE-VSSE", "BE-2015-017").await?;
    }

    // FR-DGSI's own entry, published on its first node: its second node
    // screens it, and BE-VSSE, whichever node it follows, holds it.
    fr[0]
        .publish(
            WatchEntry::of(
                "FR-2015-001",
                Person::named("Abdelhamid Abaaoud").born("1987-04-08"),
            )
            .to(["BE-VSSE"]),
        )
        .await?;
    fr[1].wait_hit(abaaoud(), FR, "FR-2015-001").await?;
    be.wait_held(FR, "FR-2015-001").await?;

    // Removed on the second node: gone from both, and from BE-VSSE.
    fr[1].remove_entry("FR-2015-001").await?;
    for desk in &fr {
        desk.wait_no_match(abaaoud(), FR, "FR-2015-001").await?;
    }
    be.wait_not_held(FR, "FR-2015-001").await?;

    // BE-VSSE withdraws its entry: both front nodes stop finding it.
    be.remove_entry("BE-2015-017").await?;
    for desk in &fr {
        desk.wait_no_match(abdeslam(), "BE-VSSE", "BE-2015-017")
            .await?;
    }
    Ok(())
}
