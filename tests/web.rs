//! The web desk in a real browser: Debian's Chromium, headless, driven
//! through chromedriver over WebDriver. The desk loads and shows what is
//! owed; an alert another node sends appears without a reload; an
//! acknowledgement clicked in the page reaches the originator; requests
//! without this start's token are refused. And the demo's federation view
//! (`tocsin-fedview`) on the paris-2015 scenario: its flags, its
//! post-mortem timeline, the scrubber and the records.
//!
//! Without `/usr/bin/chromedriver` the browser tests print SKIPPED and
//! pass, unless `TOCSIN_REQUIRE_BROWSER=1` (CI sets it), when they fail.
//! Screenshots go to `target/screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tocsin_proto::pb;
use tocsin_testkit::{AlertBuilder, Person, Screen, TestFederation, WatchEntry, wait_until};

const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(10);

/// A headless Chromium session, its driver, and its own profile.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session, or says why
    /// the test is skipped (`None`).
    async fn start(test: &str) -> anyhow::Result<Option<Self>> {
        if !std::path::Path::new(DRIVER).exists() {
            if std::env::var("TOCSIN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                bail!(
                    "TOCSIN_REQUIRE_BROWSER=1 but {DRIVER} is missing (apt-get install chromium chromium-driver)"
                );
            }
            println!(
                "SKIPPED {test}: {DRIVER} is missing (apt-get install chromium chromium-driver)"
            );
            return Ok(None);
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let driver = tokio::process::Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {DRIVER}"))?;
        wait_until(WAIT, "chromedriver to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await?;
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot open a Chromium session")?;
        Ok(Some(Self {
            client,
            _driver: driver,
            _profile: profile,
        }))
    }

    async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no {css} on the page within {WAIT:?}"))
    }

    /// Writes the page as it is to `target/screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) -> anyhow::Result<()> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let png = self.client.screenshot().await?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Ends the session (Chromium exits), whatever the test's outcome.
    async fn close<T>(self, outcome: anyhow::Result<T>) -> anyhow::Result<T> {
        let closed = self.client.close().await;
        let value = outcome?;
        closed?;
        Ok(value)
    }
}

fn about(name: &str) -> AlertBuilder {
    AlertBuilder::to(["FR-DGSI"]).person(Person::named(name))
}

#[tokio::test]
async fn the_desk_shows_what_is_owed_and_new_alerts_arrive_live() -> anyhow::Result<()> {
    let fed = TestFederation::builder().web().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let first = tr.send(about("Ismaël Omar Mostefaï")).await?;
    tr.wait_delivered(&first, "FR-DGSI").await?;
    let web = fed.web_desk("FR-DGSI").await?;
    let Some(browser) = Browser::start("the_desk_shows_what_is_owed").await? else {
        return Ok(());
    };
    let outcome = async {
        let b = &browser;
        b.client.goto(&web.login_url()).await?;
        // The token went into a cookie and out of the address bar.
        let url = b.client.current_url().await?;
        assert_eq!((url.path(), url.query()), ("/", None), "{url}");
        let row = b.find(&format!("tr[data-alert-id='{first}']")).await?;
        let text = row.text().await?;
        assert!(
            text.contains("TR-MIT") && text.contains("Ismaël Omar Mostefaï"),
            "{text}"
        );
        assert!(text.contains("PRIORITY"), "{text}");
        b.find("time[datetime]").await?;

        // The page stays; the next alert TR-MIT sends appears in it.
        b.client
            .execute("window.tocsinSamePage = true; return true;", vec![])
            .await?;
        let second = tr.send(about("Abdelhamid Abaaoud")).await?;
        let item = b
            .find(&format!("#events li[data-alert-id='{second}']"))
            .await?;
        let text = item.text().await?;
        assert!(
            text.contains("Received") && text.contains("TR-MIT"),
            "{text}"
        );
        let same = b
            .client
            .execute("return window.tocsinSamePage === true;", vec![])
            .await?;
        assert_eq!(same, serde_json::json!(true), "the page was reloaded");
        b.screenshot("desk-triage").await?;

        // The navigation leads to the list of everything, newest first.
        b.find("#nav a[href='/alerts']").await?.click().await?;
        let rows = b.find("#alerts tbody").await?.text().await?;
        let (newer, older) = (
            rows.find(&second.to_string()),
            rows.find(&first.to_string()),
        );
        assert!(newer.is_some() && newer < older, "{rows}");
        Ok(())
    }
    .await;
    browser.close(outcome).await
}

#[tokio::test]
async fn an_acknowledgement_clicked_in_the_page_reaches_the_originator() -> anyhow::Result<()> {
    let fed = TestFederation::builder().web().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(about("Salah Abdeslam")).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    let web = fed.web_desk("FR-DGSI").await?;
    let Some(browser) = Browser::start("an_acknowledgement_clicked_in_the_page").await? else {
        return Ok(());
    };
    let outcome = async {
        let b = &browser;
        b.client.goto(&web.login_url()).await?;
        b.find(&format!("a[href='/alerts/{id}']"))
            .await?
            .click()
            .await?;
        b.find("#disposition")
            .await?
            .select_by_value("ACTIONED")
            .await?;
        b.find("#note")
            .await?
            .send_keys("border posts told")
            .await?;
        b.find("#acknowledge-button").await?.click().await?;
        // Back on the alert, which shows our signed acknowledgement.
        let ack = b.find("li.ack").await?.text().await?;
        assert!(
            ack.contains("ACTIONED") && ack.contains("border posts told"),
            "{ack}"
        );
        // Each signed record says, in words, whether it verifies now.
        assert!(
            ack.contains("signature verifies: signed by FR-DGSI"),
            "{ack}"
        );
        let envelope = b.find("#envelope-signature").await?.text().await?;
        assert_eq!(envelope, "signature verifies: signed by TR-MIT");
        let received = b.find("#received").await?.text().await?;
        assert!(
            received.contains(
                "receipt when it stored the alert (signature verifies: signed by FR-DGSI)"
            ),
            "{received}"
        );
        b.screenshot("desk-alert").await
    }
    .await;
    browser.close(outcome).await?;

    let ack = tr.wait_acknowledged(&id, "FR-DGSI").await?;
    let ack = ack.acknowledgement.context("no acknowledgement")?;
    assert_eq!(ack.disposition, pb::Disposition::Actioned as i32);
    assert_eq!(ack.note, "border posts told");
    assert_eq!(ack.operator, "web-desk");
    Ok(())
}

#[tokio::test]
async fn requests_without_this_starts_token_are_refused() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().web().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(about("Chakib Akrouh")).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    let web = fed.web_desk("FR-DGSI").await?;
    let token = web.token.as_str();

    for path in ["/", "/events", "/desk.js", &format!("/alerts/{id}")] {
        let answer = web.get(path, None).await?;
        assert_eq!(answer.status, 401, "{path}: {}", answer.head);
        let answer = web.get(path, Some("not-the-token")).await?;
        assert_eq!(answer.status, 401, "{path}: {}", answer.head);
    }
    assert_eq!(web.get("/?token=guess", None).await?.status, 401);
    let login = web.get(&web.login_url()[web.url("").len()..], None).await?;
    assert_eq!(login.status, 303, "{}", login.head);
    let head = login.head.to_ascii_lowercase();
    assert!(
        head.contains("set-cookie: tocsin_desk_") && head.contains("httponly"),
        "{head}"
    );
    let page = web.get("/", Some(token)).await?;
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.body.contains(&id), "{}", page.body);
    // One item fits on the first page: the second is empty and links back.
    assert!(!page.body.contains("page-next"), "{}", page.body);
    let second = web.get("/?page=2", Some(token)).await?;
    assert!(!second.body.contains(&id), "{}", second.body);
    assert!(
        second.body.contains("href=\"/?page=1\">Previous page</a>"),
        "{}",
        second.body
    );

    // A form without the token is refused, and acknowledges nothing.
    let forged = web
        .post(
            &format!("/alerts/{id}/ack"),
            Some(token),
            "csrf=guess&disposition=ACTIONED&note=",
        )
        .await?;
    assert_eq!(forged.status, 403, "{}", forged.head);
    let alert = web.get(&format!("/alerts/{id}"), Some(token)).await?;
    assert!(
        alert.body.contains("No acknowledgement yet"),
        "{}",
        alert.body
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = fed.data_dir("FR-DGSI")?.join(tocsin_node::WEB_TOKEN_FILE);
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    // Each start draws its own token: the last one no longer opens the desk.
    let old = web.token.clone();
    fed.restart_node("FR-DGSI").await?;
    let web = fed.web_desk("FR-DGSI").await?;
    assert_ne!(web.token, old);
    assert_eq!(web.get("/", Some(&old)).await?.status, 401);
    assert_eq!(web.get("/", Some(&web.token)).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn the_watchlists_page_shows_another_owners_entry_and_the_hit() -> anyhow::Result<()> {
    let fed = TestFederation::builder().web().start().await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    tr.publish(
        WatchEntry::of(
            "TR-2015-044",
            Person::named("Salah Abdeslam").born("1989-09-15"),
        )
        .to(["FR-DGSI"])
        .reason("travelled to Syria"),
    )
    .await?;
    fr.wait_synced("TR-MIT", 1).await?;
    let seen = chrono::Utc::now();
    let hit = fr
        .wait_hit_report(
            Screen::of(Person::named("ABDESLAM Salah").born("1989-09-15"))
                .seen("A2 near Cambrai", seen)
                .reference("GN-59-0914"),
            "TR-MIT",
            "TR-2015-044",
        )
        .await?;
    let id = hit.hit_report_id.clone();
    let web = fed.web_desk("FR-DGSI").await?;
    let Some(browser) = Browser::start("the_watchlists_page").await? else {
        return Ok(());
    };
    let outcome = async {
        let b = &browser;
        b.client.goto(&web.login_url()).await?;
        b.find("#nav a[href='/watchlists']").await?.click().await?;
        let entry = b
            .find("#entries tr[data-owner='TR-MIT'][data-ref='TR-2015-044']")
            .await?
            .text()
            .await?;
        assert!(
            entry.contains("Salah Abdeslam") && entry.contains("TLP_AMBER"),
            "{entry}"
        );
        let lag = b.find("#lag tr[data-owner='TR-MIT']").await?.text().await?;
        assert!(lag.contains("caught up"), "{lag}");
        let item = b.find(&format!("#hits li[data-alert-id='{id}']")).await?;
        let text = item.text().await?;
        assert!(
            text.contains("sent to TR-MIT") && text.contains("TR-2015-044"),
            "{text}"
        );
        b.screenshot("desk-watchlists").await?;
        // The hit links to its alert page.
        b.find(&format!("#hits a[href='/alerts/{id}']"))
            .await?
            .click()
            .await?;
        b.find("#sighting").await?;
        Ok(())
    }
    .await;
    browser.close(outcome).await
}

#[tokio::test]
async fn the_peers_page_names_each_peer_its_link_and_skew() -> anyhow::Result<()> {
    let fed = TestFederation::builder().web().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(about("Bilal Hadfi")).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    let web = fed.web_desk("TR-MIT").await?;
    let Some(browser) = Browser::start("the_peers_page").await? else {
        return Ok(());
    };
    let outcome = async {
        let b = &browser;
        b.client.goto(&web.login_url()).await?;
        b.find("#nav a[href='/peers']").await?.click().await?;
        let row = b
            .find("#peers tr[data-peer='FR-DGSI']")
            .await?
            .text()
            .await?;
        // The delivery reached FR-DGSI's node and measured its clock.
        assert!(
            row.contains("127.0.0.1:") && row.contains("REACHED at"),
            "{row}"
        );
        assert!(row.contains("within tolerance"), "{row}");
        // TR-MIT dialled FR-DGSI's node: the certificate it presented.
        assert!(row.contains("expires 20"), "{row}");
        let certificates = b.find("#certificates").await?.text().await?;
        assert!(
            certificates.contains("TLS (node) certificate: expires")
                && certificates.contains("envelope signing certificate: expires"),
            "{certificates}"
        );
        b.screenshot("desk-peers").await
    }
    .await;
    browser.close(outcome).await
}

/// The demo's federation view, fed as `tocsin demo --web` feeds it (the
/// view observes the replay; the federated post-mortem of the agencies'
/// exported bundles concludes it), on the shipped paris-2015 scenario
/// replayed on a manual clock in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_view_shows_the_paris_2015_flags_and_its_post_mortem() -> anyhow::Result<()>
{
    use tocsin_audit::Trust;
    use tocsin_audit::federated::{self, Input, Options};
    use tocsin_fedview::{Server, Timeline, View};
    use tocsin_testkit::web::WebDesk;

    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo");
    let test = tocsin_testkit::scenario::ScenarioTest::load(
        demo.join("scenarios/paris-2015.toml"),
        demo.join("federation.toml"),
    )?;
    let title = format!("{}: {}", test.scenario().name, test.scenario().title);
    let server = Server::bind("127.0.0.1:0".parse()?).await?;
    let http = WebDesk {
        addr: server.addr(),
        token: server.token().to_owned(),
    };
    let login = server.login_url();
    let view = View::new(title);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server.serve(view.clone(), async {
        let _ = stopped.await;
    }));

    // Nothing without this start's token; the view is read-only.
    for path in [
        "/",
        "/events",
        "/state.json",
        "/fedview.js",
        "/records/TR-MIT/0",
    ] {
        assert_eq!(http.get(path, None).await?.status, 401, "{path}");
        assert_eq!(http.get(path, Some("guess")).await?.status, 401, "{path}");
    }
    assert_eq!(http.get("/?token=guess", None).await?.status, 401);
    assert_eq!(http.get("/", Some(&http.token)).await?.status, 200);
    let post = http.post("/", Some(&http.token), "at=1").await?;
    assert_eq!(post.status, 405, "{}", post.head);

    let Some(browser) = Browser::start("the_federation_view").await? else {
        let _ = stop.send(());
        return Ok(());
    };
    let mut run = test.start().await?;
    let outcome = async {
        let b = &browser;
        b.client.goto(&login).await?;
        b.find("#live").await?;
        b.client
            .execute("window.tocsinSamePage = true; return true;", vec![])
            .await?;

        let pm = run.replay_observed(&view).await?;
        // The flags rose in the page as the scenario played, no reload:
        // Mostefaï at FR-DGSI (Turkey's two notices), and Abdeslam at
        // BE-VSSE (two hit reports on its entry).
        let flags = b.find("#live ol.flags").await?;
        b.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("#live li.flag[data-recipient='BE-VSSE']"))
            .await?;
        let text = flags.text().await?;
        assert!(
            text.contains("REPEATED_UNANSWERED") && text.contains("Mostefaï"),
            "{text}"
        );
        assert!(text.contains("FR-DGSI left"), "{text}");
        assert!(text.contains("Salah Abdeslam"), "{text}");
        let same = b
            .client
            .execute("return window.tocsinSamePage === true;", vec![])
            .await?;
        assert_eq!(same, serde_json::json!(true), "the page was reloaded");
        // Turkey's notices to FR-DGSI ran the whole ladder: LAPSED, in
        // words on the edge and in the table.
        for notice in ["mit-notice-1", "mit-notice-2"] {
            let id = &pm.alert(notice).context(notice)?.id;
            let row = b
                .find(&format!(
                    "#live tr[data-alert-id='{id}'][data-to='FR-DGSI']"
                ))
                .await?;
            assert_eq!(row.attr("data-state").await?.as_deref(), Some("LAPSED"));
            assert!(row.text().await?.contains("LAPSED"));
        }
        let pair = b
            .find("#live g.pair[data-from='TR-MIT'][data-to='FR-DGSI']")
            .await?
            .text()
            .await?;
        assert!(pair.contains("2 LAPSED"), "{pair}");
        // Iraq's warning, answered late by FR-DGSI.
        let inis = &pm.alert("inis-warning").context("inis-warning")?.id;
        let late = b
            .find(&format!(
                "#live tr[data-alert-id='{inis}'][data-to='FR-DGSI']"
            ))
            .await?
            .text()
            .await?;
        assert!(late.contains("ACKNOWLEDGED (late)"), "{late}");
        b.screenshot("federation-view").await?;

        // Each agency exports its signed audit bundle; the federated
        // post-mortem of the bundles concludes the view.
        let fed = run.federation();
        let trust = Trust::load(&fed.pki().ca_cert())?;
        let mut inputs = Vec::new();
        for a in &fed.federation().agencies {
            let out = fed.scratch().join(format!("{}.jsonl", a.id));
            let report = tocsin_audit::export(
                &fed.data_dir(a.id.as_str())?,
                trust.clone(),
                fed.federation().id(),
                &fed.signer(a.id.as_str())?,
                &out,
                chrono::Utc::now(),
                |_, _| {},
            )?;
            assert!(report.ok(), "{}: {:?}", a.id, report.findings);
            inputs.push(Input::read(&out)?);
        }
        let federated =
            federated::post_mortem(&inputs, &trust, &Options::for_federation(fed.federation()))?;
        assert!(!federated.findings.is_empty());
        view.conclude(Timeline::of(&federated));

        // The page fetches the post-mortem by itself; the scrubber moves
        // the picture, from the keyboard.
        let scrub = b.find("#postmortem input#scrub[type='range']").await?;
        scrub
            .send_keys(&char::from(fantoccini::key::Key::Home).to_string())
            .await?;
        let first = b
            .find("#scrubbed p.scrub-item[data-at='0']")
            .await?
            .text()
            .await?;
        assert!(first.starts_with("Item 1 of"), "{first}");
        let lapsed = "#scrubbed tr[data-state='LAPSED']";
        assert!(
            b.client.find_all(Locator::Css(lapsed)).await?.is_empty(),
            "nothing had lapsed at the first record"
        );
        scrub
            .send_keys(&char::from(fantoccini::key::Key::End).to_string())
            .await?;
        b.find(lapsed).await?;
        let last = b.find("#scrubbed p.scrub-item").await?.text().await?;
        assert!(!last.starts_with("Item 1 of"), "{last}");
        b.client
            .execute(
                "document.getElementById('scrubber').scrollIntoView(); return true;",
                vec![],
            )
            .await?;
        b.screenshot("federation-view-timeline").await?;

        // A finding links to the records it rests on; one opens.
        let finding = b
            .find("#findings li.finding[data-kind='NeverAcknowledged']")
            .await?;
        let link = finding
            .find(Locator::Css("a.record-link"))
            .await
            .context("a finding without a record link")?;
        let href = link.attr("href").await?.context("no href")?;
        link.click().await?;
        let record = b.find("#record").await?.text().await?;
        assert!(record.contains("Signed by"), "{record}");
        let url = b.client.current_url().await?;
        assert_eq!(url.path(), href);
        let page = http.get(&href, Some(&http.token)).await?;
        assert_eq!(page.status, 200, "{href}");
        let missing = http
            .get("/records/TR-MIT/999999", Some(&http.token))
            .await?;
        assert_eq!(missing.status, 404);
        Ok(())
    }
    .await;
    let closed = browser.close(outcome).await;
    let _ = stop.send(());
    served.await??;
    closed
}
