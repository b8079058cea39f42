//! Screening: a partner's operator screens a person against every entry
//! its node holds and gets the owner's entry, with owner, ref, score and
//! reasons, for names written differently; a common part or a namesake is
//! not a hit; what is not releasable (or no longer), removed or expired
//! never matches;
//! an update is reflected once synced; bad input is refused naming the
//! field.

use std::sync::Arc;

use tocsin_proto::pb;
use tocsin_testkit::{Desk, ManualClock, Person, Screen, TestFederation, WatchEntry, match_of};

/// The seeds: three persons listed by TR-MIT for FR-DGSI, one also for
/// DE-BKA, and a namesake of one for nobody but DE-BKA.
async fn seed(tr: &Desk) -> anyhow::Result<()> {
    tr.publish_all(vec![
        WatchEntry::of(
            "W-MOSTEFAI",
            Person::named("Omar Ismaïl MOSTEFAÏ")
                .born("1985-11-21")
                .nationality("FR"),
        )
        .to(["FR-DGSI"])
        .action(pb::WatchlistAction::Arrest)
        .reason("suspected of planning an attack")
        .into(),
        WatchEntry::of(
            "W-ABAAOUD",
            Person::named("Abdelhamid Abaaoud").born("1987-04-08"),
        )
        .to(["FR-DGSI", "DE-BKA"])
        .into(),
        WatchEntry::of("W-ABDESLAM", Person::named("Salah Abdeslam"))
            .to(["FR-DGSI"])
            .into(),
        WatchEntry::of("W-ABRINI", Person::named("Mohamed Abrini"))
            .to(["FR-DGSI"])
            .into(),
        WatchEntry::of("W-SECRET", Person::named("Bilal Hadfi"))
            .to(["DE-BKA"])
            .into(),
    ])
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_partner_finds_the_owners_entries_under_variant_spellings() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    seed(&tr).await?;
    fr.wait_synced("TR-MIT", 5).await?;

    let m = fr
        .wait_hit(
            Screen::of(Person::named("MOSTEFAI Omar Ismail").born("1985"))
                .reference("case-1")
                .seen("CDG terminal 2", chrono::Utc::now()),
            "TR-MIT",
            "W-MOSTEFAI",
        )
        .await?;
    assert!(m.score > 0.8 && m.score <= 1.0, "{m:?}");
    let entry = m.entry.as_ref().expect("the entry comes with the match");
    assert_eq!(entry.action, pb::WatchlistAction::Arrest as i32);
    assert_eq!(entry.reason, "suspected of planning an attack");
    assert!(
        m.reasons
            .iter()
            .any(|r| r.kind == pb::match_reason::Kind::Name as i32
                && r.query == "MOSTEFAI"
                && r.candidate == "MOSTEFAÏ"),
        "{m:?}"
    );
    assert!(
        m.reasons
            .iter()
            .any(|r| r.kind == pb::match_reason::Kind::DobAgrees as i32),
        "{}",
        m.reasons_text
    );

    // The result keeps what was screened, where and when, and its ref.
    let result = fr
        .screen(Screen::of(Person::named("Abdel-Hamid Abaaoud")).reference("case-2"))
        .await?;
    assert_eq!(result.r#ref, "case-2");
    assert_eq!(
        result.screened.as_ref().map(|s| s.r#ref.as_str()),
        Some("case-2")
    );
    let m = match_of(&result, "TR-MIT", "W-ABAAOUD").expect("found");
    assert!(m.hit, "{}", m.reasons_text);
    for name in ["Abaaoud Abdelhamid", "ABAAOUD Abdel-Hamid"] {
        let result = fr.screen(Person::named(name)).await?;
        let m = match_of(&result, "TR-MIT", "W-ABAAOUD").expect(name);
        assert!(m.hit, "{name}: {}", m.reasons_text);
    }
    let result = fr.screen(Person::named("Salah ABDESLAM")).await?;
    assert!(match_of(&result, "TR-MIT", "W-ABDESLAM").is_some_and(|m| m.hit));

    // One common part is not a hit, nor a different person with a similar
    // name.
    let result = fr.screen(Person::named("Mohamed")).await?;
    assert!(result.matches.iter().all(|m| !m.hit), "{result:?}");
    let result = fr.screen(Person::named("Mohamed Amri")).await?;
    assert!(
        match_of(&result, "TR-MIT", "W-ABRINI").is_none_or(|m| !m.hit),
        "{result:?}"
    );
    let result = fr.screen(Person::named("Brahim Abdeslam")).await?;
    assert!(
        match_of(&result, "TR-MIT", "W-ABDESLAM").is_none_or(|m| !m.hit),
        "{result:?}"
    );

    // An entry not releasable to FR-DGSI is never matched, even exactly.
    let result = fr.screen(Person::named("Bilal Hadfi")).await?;
    assert!(
        match_of(&result, "TR-MIT", "W-SECRET").is_none(),
        "{result:?}"
    );
    // The owner screens its own entries too.
    tr.wait_hit(Person::named("Bilal HADFI"), "TR-MIT", "W-SECRET")
        .await?;

    // Narrowed to DE-BKA only: withdrawn from FR-DGSI, so no longer
    // matched there, and still matched at DE-BKA.
    let de = fed.desk("DE-BKA").await?;
    de.wait_hit(Person::named("Abaaoud Abdelhamid"), "TR-MIT", "W-ABAAOUD")
        .await?;
    tr.update_entry(
        WatchEntry::of(
            "W-ABAAOUD",
            Person::named("Abdelhamid Abaaoud").born("1987-04-08"),
        )
        .to(["DE-BKA"]),
    )
    .await?;
    fr.wait_no_match(Person::named("Abaaoud Abdelhamid"), "TR-MIT", "W-ABAAOUD")
        .await?;
    de.wait_hit(Person::named("Abaaoud Abdelhamid"), "TR-MIT", "W-ABAAOUD")
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_batch_keeps_the_order_and_refs_and_bad_input_names_the_field() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    seed(&tr).await?;
    fr.wait_hit(Person::named("Salah Abdeslam"), "TR-MIT", "W-ABDESLAM")
        .await?;

    let results = fr
        .screen_batch(vec![
            Screen::of(Person::named("Jean Dupont"))
                .reference("a")
                .into(),
            Screen::of(Person::named("Salah Abdeslam"))
                .reference("b")
                .into(),
            Screen::of(Person::named("Abaaoud Abdelhamid")).into(),
        ])
        .await?;
    let refs: Vec<&str> = results.iter().map(|r| r.r#ref.as_str()).collect();
    assert_eq!(refs, ["a", "b", ""]);
    assert!(results[0].matches.iter().all(|m| !m.hit));
    assert!(match_of(&results[1], "TR-MIT", "W-ABDESLAM").is_some_and(|m| m.hit));
    assert!(match_of(&results[2], "TR-MIT", "W-ABAAOUD").is_some_and(|m| m.hit));

    // Nothing to screen on.
    let err = fr
        .screen(Screen::of(Person::default()))
        .await
        .expect_err("nothing to screen on");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("person.names"), "{}", err.message());
    let err = fr
        .screen(Screen::of(
            Person::named("Salah Abdeslam").born("15/09/1989"),
        ))
        .await
        .expect_err("a bad date");
    assert!(
        err.message().contains("person.date_of_birth"),
        "{}",
        err.message()
    );
    // More matches than a screen may ask for.
    let err = fr
        .screen(Screen::of(Person::named("Salah Abdeslam")).limit(101))
        .await
        .expect_err("over the most");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{}", err.message());
    // One asked for: the best, the hit.
    let one = fr
        .screen(Screen::of(Person::named("Abdeslam Salah")).limit(1))
        .await?;
    assert_eq!(one.matches.len(), 1);
    assert!(match_of(&one, "TR-MIT", "W-ABDESLAM").is_some_and(|m| m.hit));
    // In a batch, the bad request is named by its place, and nothing is
    // screened.
    let err = fr
        .screen_batch(vec![
            Screen::of(Person::named("Salah Abdeslam")).into(),
            Screen::default().into(),
        ])
        .await
        .expect_err("the second is empty");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("requests[1].person.names"),
        "{}",
        err.message()
    );
    Ok(())
}

#[tokio::test]
async fn an_identifier_or_document_alone_is_a_hit() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    tr.publish(WatchEntry::identifier("W-PHONE", "phone", "+33 6 12 34 56 78").to(["FR-DGSI"]))
        .await?;
    tr.publish(
        WatchEntry::of(
            "W-DOC",
            Person::named("Chakib Akrouh").document("passport", "EH123456", "BE"),
        )
        .to(["FR-DGSI"]),
    )
    .await?;
    let m = fr
        .wait_hit(
            Screen::identifier("phone", "+33612345678"),
            "TR-MIT",
            "W-PHONE",
        )
        .await?;
    assert_eq!(m.reasons[0].kind, pb::match_reason::Kind::Identifier as i32);
    fr.wait_hit(
        Screen::of(Person::default().document("passport", "eh 123456", "BE")),
        "TR-MIT",
        "W-DOC",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn updates_and_removals_are_reflected_once_synced() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    tr.publish(WatchEntry::of("W-1", Person::named("Salah Abdeslam")).to(["FR-DGSI"]))
        .await?;
    fr.wait_hit(Person::named("Salah Abdeslam"), "TR-MIT", "W-1")
        .await?;
    let alias = Person::named("Yassine Benali");
    let result = fr.screen(alias.clone()).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_none(), "{result:?}");

    // A new alias: found under it once the update is synced.
    tr.update_entry(
        WatchEntry::of(
            "W-1",
            Person::named("Salah Abdeslam").alias("Yassine Benali"),
        )
        .to(["FR-DGSI"]),
    )
    .await?;
    let m = fr.wait_hit(alias.clone(), "TR-MIT", "W-1").await?;
    assert!(m.reasons_text.contains("Benali"), "{}", m.reasons_text);

    // Removed: found under no name.
    tr.remove_entry("W-1").await?;
    fr.wait_no_match(Person::named("Salah Abdeslam"), "TR-MIT", "W-1")
        .await?;
    let result = fr.screen(alias).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_none(), "{result:?}");
    // And by the owner, at once.
    let result = tr.screen(Person::named("Salah Abdeslam")).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_none(), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn an_expired_entry_is_not_matched_by_the_screeners_clock() -> anyhow::Result<()> {
    let start = chrono::Utc::now();
    let tr_clock = Arc::new(ManualClock::new(start));
    let fr_clock = Arc::new(ManualClock::new(start));
    let fed = TestFederation::builder()
        .clock_for("TR-MIT", tr_clock.clone())
        .clock_for("FR-DGSI", fr_clock.clone())
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    tr.publish(
        WatchEntry::of("W-1", Person::named("Salah Abdeslam"))
            .to(["FR-DGSI"])
            .expires(start + chrono::Duration::hours(1)),
    )
    .await?;
    fr.wait_hit(Person::named("Salah Abdeslam"), "TR-MIT", "W-1")
        .await?;
    tr.wait_hit(Person::named("Salah Abdeslam"), "TR-MIT", "W-1")
        .await?;

    // The holder's clock passes the expiry before the owner says anything:
    // the holder no longer matches it, the owner (whose clock has not
    // moved) still does.
    fr_clock.advance(chrono::Duration::hours(2));
    let result = fr.screen(Person::named("Salah Abdeslam")).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_none(), "{result:?}");
    let result = tr.screen(Person::named("Salah Abdeslam")).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_some_and(|m| m.hit));
    // The owner's clock passes it too.
    tr_clock.advance(chrono::Duration::hours(2));
    let result = tr.screen(Person::named("Salah Abdeslam")).await?;
    assert!(match_of(&result, "TR-MIT", "W-1").is_none(), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn a_restarted_node_screens_what_its_store_holds_at_once() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    tr.publish(WatchEntry::of("W-1", Person::named("Salah Abdeslam")).to(["FR-DGSI"]))
        .await?;
    fed.desk("FR-DGSI")
        .await?
        .wait_hit(Person::named("Salah Abdeslam"), "TR-MIT", "W-1")
        .await?;

    // With the owner down, nothing can be synced: the holder's index is
    // built from its store as it starts.
    fed.stop_node("TR-MIT").await?;
    fed.restart_node("FR-DGSI").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let result = fr.screen(Person::named("ABDESLAM Salah")).await?;
    assert!(
        match_of(&result, "TR-MIT", "W-1").is_some_and(|m| m.hit),
        "{result:?}"
    );
    // And the owner's own entries, when it is back.
    fed.start_node("TR-MIT").await?;
    let tr = fed.desk("TR-MIT").await?;
    let result = tr.screen(Person::named("Salah Abdeslam")).await?;
    assert!(
        match_of(&result, "TR-MIT", "W-1").is_some_and(|m| m.hit),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn only_the_agencys_operators_screen_on_its_node() -> anyhow::Result<()> {
    use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
    let fed = TestFederation::builder().start().await?;
    let tr = tocsin_core::AgencyId::new("TR-MIT")?;
    let addr = fed.addr("TR-MIT")?;
    let request: pb::ScreenRequest = Person::named("Salah Abdeslam").into();

    // A peer agency's node is refused by the handler; another agency's
    // operator already by the handshake.
    let peer = tocsin_testkit::channel(addr, &fed.node_material("FR-DGSI")?, &tr)?;
    let refused = WatchlistDeskClient::new(peer)
        .screen(request.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let stranger =
        tocsin_testkit::channel(addr, &fed.operator_material("FR-DGSI", "analyst")?, &tr)?;
    let refused = WatchlistDeskClient::new(stranger)
        .screen(request.clone())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("AccessDenied"),
        "{refused:?}"
    );
    // The agency's own operator is answered.
    let channel = tocsin_testkit::channel(addr, &fed.operator_material("TR-MIT", "analyst")?, &tr)?;
    let result = WatchlistDeskClient::new(channel)
        .screen(request)
        .await?
        .into_inner();
    assert!(result.matches.is_empty());
    Ok(())
}
