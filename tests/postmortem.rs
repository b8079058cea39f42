//! The federated post-mortem on real nodes: four agencies exchange alerts
//! and a hit report over mTLS, three export their audit bundles, one
//! bundle is tampered with, and the post-mortem, from the bundles and the
//! CA certificate alone, reports the tampered bundle, merges the rest,
//! states the missing agency as a limit, and finds the contradiction and
//! the gaps between the records.

use std::path::{Path, PathBuf};

use chrono::Utc;
use tocsin_audit::federated::{self, Area, FindingKind, Input, Options, RecordKind};
use tocsin_audit::{self as audit, Trust};
use tocsin_proto::pb;
use tocsin_testkit::{AlertBuilder, Person, Precedence, Screen, TestFederation, WatchEntry};

fn abdeslam() -> Person {
    Person::named("Salah Abdeslam").born("1989-09-15")
}

/// Exports `agency`'s store, running or stopped, to a bundle.
fn export(fed: &TestFederation, agency: &str) -> anyhow::Result<PathBuf> {
    let out = fed
        .scratch()
        .join(format!("{}.jsonl", agency.to_lowercase()));
    let report = audit::export(
        &fed.data_dir(agency)?,
        Trust::load(&fed.pki().ca_cert())?,
        fed.federation().id(),
        &fed.signer(agency)?,
        &out,
        Utc::now(),
        |_, _| {},
    )?;
    assert!(report.ok(), "{agency}: {:?}", report.findings);
    Ok(out)
}

/// Rewrites the detail of the first entry of the bundle at `path`, as
/// someone editing the file would.
fn tamper(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut entry: serde_json::Value = serde_json::from_str(&lines[1])?;
    assert_eq!(entry["type"], "entry");
    entry["detail"] = "nothing happened".into();
    lines[1] = serde_json::to_string(&entry)?;
    std::fs::write(path, lines.join("\n") + "\n")?;
    Ok(())
}

#[tokio::test]
async fn bundles_of_several_agencies_merge_into_one_checked_timeline() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE", "NL-AIVD"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let be = fed.desk("BE-VSSE").await?;

    // BE-VSSE lists him for FR-DGSI; FR-DGSI's screen hits and reports.
    be.publish(WatchEntry::of("BE-2015-017", abdeslam()).to(["FR-DGSI"]))
        .await?;
    fr.wait_synced("BE-VSSE", 1).await?;
    let hit = fr
        .wait_hit_report(
            Screen::of(Person::named("ABDESLAM Salah").born("1989-09-15"))
                .seen("A2 near Cambrai", Utc::now()),
            "BE-VSSE",
            "BE-2015-017",
        )
        .await?
        .hit_report_id;
    fr.wait_delivered(&hit, "BE-VSSE").await?;

    // TR-MIT warns three agencies; only FR-DGSI answers.
    let warning = tr
        .send(
            AlertBuilder::to(["FR-DGSI", "BE-VSSE", "NL-AIVD"])
                .precedence(Precedence::Priority)
                .person(abdeslam())
                .text("Crossing into Turkey; travelling with two others."),
        )
        .await?;
    let second = tr
        .send(
            AlertBuilder::to(["FR-DGSI"])
                .precedence(Precedence::Routine)
                .identifier("phone", "+32 470 00 00 00"),
        )
        .await?;
    for r in ["FR-DGSI", "BE-VSSE", "NL-AIVD"] {
        tr.wait_delivered(&warning, r).await?;
    }
    tr.wait_delivered(&second, "FR-DGSI").await?;
    fr.ack(&warning, pb::Disposition::Actioned, "Watching the border.")
        .await?;
    tr.wait_acks(&warning, "FR-DGSI", 1).await?;

    // TR-MIT goes down; FR-DGSI's answer to the second alert never
    // reaches it, though FR-DGSI's record says it was given.
    fed.stop_node("TR-MIT").await?;
    fr.ack(&second, pb::Disposition::Noted, "No trace here.")
        .await?;
    fed.stop_node("FR-DGSI").await?;
    fed.stop_node("BE-VSSE").await?;

    // NL-AIVD exports nothing; BE-VSSE's bundle is edited after export.
    let bundles = [
        export(&fed, "TR-MIT")?,
        export(&fed, "FR-DGSI")?,
        export(&fed, "BE-VSSE")?,
    ];
    tamper(&bundles[2])?;
    let inputs = bundles
        .iter()
        .map(|p| Input::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let trust = Trust::load(&fed.pki().ca_cert())?;
    let options = Options::for_federation(fed.federation());
    let pm = federated::post_mortem(&inputs, &trust, &options)?;
    let text = pm.to_string();
    let name = |i: usize| bundles[i].display().to_string();

    // The tampered bundle is reported, naming the entry; the rest merge.
    let verified: Vec<bool> = pm.bundles.iter().map(|b| b.verified).collect();
    assert_eq!(verified, [true, true, false], "{text}");
    let failed: Vec<_> = pm.of_kind(FindingKind::BundleFailed).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert_eq!(failed[0].bundles, [name(2)]);
    assert!(failed[0].detail.contains("entry 1"), "{}", failed[0].detail);
    // The records of TR-MIT and FR-DGSI, once each, in signed time order.
    assert!(pm.timeline.windows(2).all(|p| p[0].at <= p[1].at), "{text}");
    let warned = pm
        .timeline
        .iter()
        .find(|t| t.alert_id == warning && t.kind == RecordKind::Alert)
        .expect("the warning");
    assert_eq!(warned.held_by, [name(0), name(1)]);
    assert!(
        pm.timeline
            .iter()
            .any(|t| t.alert_id == hit && t.kind == RecordKind::HitReport),
        "{text}"
    );
    // What cannot be known is said, not hidden.
    assert!(
        pm.limits
            .iter()
            .any(|l| l.starts_with("no bundle from NL-AIVD")),
        "{text}"
    );
    assert!(
        pm.limits
            .iter()
            .any(|l| l.starts_with("BE-VSSE's bundle fails")),
        "{text}"
    );

    // FR-DGSI's signed acknowledgement is not in TR-MIT's record.
    let contradictions: Vec<_> = pm.of_kind(FindingKind::Contradiction).collect();
    assert_eq!(contradictions.len(), 1, "{text}");
    let c = contradictions[0];
    assert_eq!(c.alert_id.as_deref(), Some(second.as_str()));
    assert_eq!(c.bundles, [name(1), name(0)]);
    assert!(
        c.detail.contains("has no such acknowledgement"),
        "{}",
        c.detail
    );

    // The gaps: BE-VSSE and NL-AIVD never answered the warning, and the
    // hit report went unanswered.
    let mut unanswered: Vec<String> = pm
        .of_kind(FindingKind::NeverAcknowledged)
        .filter(|f| f.alert_id.as_deref() == Some(warning.as_str()))
        .map(|f| f.agencies[0].clone())
        .collect();
    unanswered.sort();
    assert_eq!(unanswered, ["BE-VSSE", "NL-AIVD"], "{text}");
    // Twelve hours to answer, exported at once: not yet late, and said so.
    assert!(
        pm.of_kind(FindingKind::NeverAcknowledged)
            .all(|f| f.detail.contains("had not passed")),
        "{text}"
    );
    let surveillance: Vec<_> = pm.in_area(Area::Surveillance).collect();
    assert_eq!(surveillance.len(), 1, "{text}");
    assert_eq!(surveillance[0].kind, FindingKind::HitNotAnswered);
    assert_eq!(surveillance[0].alert_id.as_deref(), Some(hit.as_str()));
    for area in Area::ALL {
        assert!(text.contains(area.title()), "{text}");
    }

    // About him only: the second alert (a phone number) drops out.
    let about = federated::post_mortem(
        &inputs,
        &trust,
        &Options {
            subject: Some("abdeslam".into()),
            ..options.clone()
        },
    )?;
    assert!(
        about.timeline.iter().all(|t| t.alert_id != second),
        "{about}"
    );
    assert!(about.timeline.iter().any(|t| t.alert_id == hit), "{about}");
    assert!(
        about.timeline.iter().any(|t| t.alert_id == warning),
        "{about}"
    );
    assert_eq!(about.of_kind(FindingKind::Contradiction).count(), 0);
    Ok(())
}
