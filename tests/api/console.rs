//! The operator console in a real browser: Debian's chromium, driven over
//! WebDriver by its chromedriver, against the release binary. Signs in,
//! sees the courier on the map, searches an order, refunds it, sees the
//! status change; screenshots (laptop and phone) land in `target/`. The
//! same browser renders `/docs` from the binary alone.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{eventually, free_port, BinaryApp};

const ADMIN_TOKEN: &str = "console-test-token-0123456789";

/// chromedriver on a free port in a process group of its own, killed on
/// drop with the browsers it started (a test that panics never closes its
/// browser).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Self {
        crate::helpers::ensure_tool("chromium", "chromium");
        crate::helpers::ensure_tool("chromedriver", "chromium-driver");
        crate::helpers::ensure_cjk_font();
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port };
        let status = format!("http://127.0.0.1:{port}/status");
        let up = eventually(Duration::from_secs(20), || {
            let req = reqwest::get(status.clone());
            async move { req.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(up, "chromedriver did not come up");
        driver
    }

    /// A headless chromium with nothing reaching out to the internet.
    async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that opens a connection per request: the browser part of a
/// test can outlast the server's keep-alive, and a pooled connection the
/// server is closing just then fails the next request.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client")
}

/// Waits for `css` to exist (and returns its text), up to `secs`.
async fn text_of(browser: &Client, css: &str, secs: u64) -> String {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(secs))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
    element.text().await.expect("text")
}

/// Waits until `css`'s text is one of `wanted`.
async fn text_becomes(browser: &Client, css: &str, wanted: &[&str], secs: u64) -> String {
    let mut last = String::new();
    for _ in 0..secs * 4 {
        if let Ok(e) = browser.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if wanted.contains(&last.as_str()) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{css} stayed {last:?}, wanted one of {wanted:?}");
}

fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).expect("target dir");
    target.join(name)
}

#[tokio::test]
async fn an_operator_signs_in_sees_the_courier_and_refunds_an_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let http = http_client();

    // A courier online at the station, and two paid orders there: the
    // dispatcher hands both to them.
    let (courier, courier_id) = app.login(&http, "console-courier").await;
    for (path, body) in [
        (
            "/api/v1/couriers/me",
            json!({"name": "李雷", "phone": "13800138000"}),
        ),
        (
            "/api/v1/couriers/me/online",
            json!({"place_id": "cainiao-north"}),
        ),
    ] {
        let r = http
            .post(app.url(path))
            .bearer_auth(&courier)
            .json(&body)
            .send()
            .await
            .expect("courier call");
        assert!(r.status().is_success(), "{path}");
    }
    let (_, first) = app.sandbox_paid_order(&http, "console-customer-1").await;
    app.sandbox_paid_order(&http, "console-customer-2").await;

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    // A panic in here still kills chromedriver (and its browser) on unwind.
    async {
        browser
            .goto(&app.url("/admin"))
            .await
            .expect("console loads");
        browser
            .find(Locator::Id("token"))
            .await
            .expect("token field")
            .send_keys(ADMIN_TOKEN)
            .await
            .expect("typed");
        browser
            .find(Locator::Id("signin"))
            .await
            .expect("button")
            .click()
            .await
            .expect("clicked");

        // The courier is on the map, online, with a planned route.
        let marker = format!(".courier.online[data-openid='{courier_id}']");
        let label = text_of(&browser, &format!("#map-svg {marker} text"), 20).await;
        assert!(label.starts_with("李雷"), "{label}");
        text_of(
            &browser,
            &format!("#map-svg .route[data-courier='{courier_id}']"),
            20,
        )
        .await;
        let created = text_of(&browser, "#fig-created b", 10).await;
        assert_eq!(created, "2");

        // Search the first order: assigned to the courier.
        browser
            .find(Locator::Id("search-q"))
            .await
            .expect("search")
            .send_keys(&first)
            .await
            .expect("typed");
        browser
            .find(Locator::Id("search-go"))
            .await
            .expect("go")
            .click()
            .await
            .expect("clicked");
        let status = format!(".order[data-id='{first}'] .status");
        text_becomes(&browser, &status, &["已接单"], 20).await;
        browser
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .expect("scrolled");
        std::fs::write(
            screenshot_path("console.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");

        // Refund it, with a reason, confirmed in the dialog.
        browser
            .find(Locator::Css(&format!(".order[data-id='{first}'] .refund")))
            .await
            .expect("refund button")
            .click()
            .await
            .expect("clicked");
        browser
            .find(Locator::Id("dialog-input"))
            .await
            .expect("reason")
            .send_keys("顾客投诉")
            .await
            .expect("typed");
        browser
            .find(Locator::Id("dialog-ok"))
            .await
            .expect("ok")
            .click()
            .await
            .expect("clicked");
        text_becomes(&browser, &status, &["退款中", "已退款"], 20).await;
        let history = text_of(&browser, &format!(".order[data-id='{first}'] .history"), 5).await;
        assert!(
            history.contains("运营退款") && history.contains("顾客投诉"),
            "{history}"
        );
        std::fs::write(
            screenshot_path("console-refunded.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");

        // /docs renders the document offline (Swagger UI from the binary).
        browser.goto(&app.url("/docs/")).await.expect("docs load");
        let operations = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(".opblock-summary-path"))
            .await
            .map(|_| ());
        assert!(operations.is_ok(), "Swagger UI rendered no operation");
        let count = browser
            .find_all(Locator::Css(".opblock"))
            .await
            .expect("operations")
            .len();
        assert!(count >= 35, "Swagger UI shows only {count} operations");
        std::fs::write(
            screenshot_path("docs.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
        browser
            .goto(&app.url("/admin"))
            .await
            .expect("console again");
        text_of(&browser, "#fig-created b", 10).await;

        // The same page on a phone.
        browser.set_window_size(390, 844).await.expect("resized");
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(
            screenshot_path("console-phone.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
    }
    .await;
    browser.close().await.ok();
    drop(driver);

    // The refund is the API's truth too, recorded with the operator.
    let found: Value = http
        .get(app.url(&format!("/api/v1/admin/orders?q={first}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("JSON");
    let history = found["orders"][0]["history"].as_array().expect("history");
    let refund = history
        .iter()
        .find(|h| h["event"] == "operator_refund")
        .expect("refund in history");
    assert_eq!(refund["by"], "operator");
    assert_eq!(refund["note"], "顾客投诉");
}

/// Opens the console and signs in with the admin token.
async fn sign_in(browser: &Client, app: &BinaryApp) {
    sign_in_with(browser, app, ADMIN_TOKEN).await;
}

/// Opens the console and signs in with `token`.
async fn sign_in_with(browser: &Client, app: &BinaryApp, token: &str) {
    browser
        .goto(&app.url("/admin"))
        .await
        .expect("console loads");
    browser
        .find(Locator::Id("token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("typed");
    click(browser, "#signin").await;
}

/// Clicks what `css` finds. The console redraws its lists as it refreshes
/// them, so an element found a moment ago may be gone (stale) by the
/// click: it is found again and clicked again, within 20 s.
async fn click(browser: &Client, css: &str) {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let element = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > until => panic!("{css}: click: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A customer's sandbox order of 3 yuan, grabbed, delivered and confirmed
/// by a new courier `name` (2.70 yuan earned), who then asks to withdraw
/// 2 yuan: their token and the withdrawal's id.
async fn courier_withdrawing(
    app: &BinaryApp,
    http: &reqwest::Client,
    tag: &str,
    name: &str,
) -> (String, String) {
    let (customer, order) = app
        .sandbox_paid_order(http, &format!("{tag}-customer"))
        .await;
    let (courier, _) = app.login(http, &format!("{tag}-courier")).await;
    for (token, path, body) in [
        (
            &courier,
            "/api/v1/couriers/me".to_owned(),
            json!({"name": name, "phone": "13800138000"}),
        ),
        (
            &courier,
            "/api/v1/couriers/me/online".to_owned(),
            json!({"place_id": "cainiao-north"}),
        ),
        (&courier, format!("/api/v1/orders/{order}/grab"), json!({})),
        (
            &courier,
            format!("/api/v1/orders/{order}/pickup"),
            json!({}),
        ),
        (
            &courier,
            format!("/api/v1/orders/{order}/deliver"),
            json!({}),
        ),
        (
            &customer,
            format!("/api/v1/orders/{order}/confirm"),
            json!({}),
        ),
    ] {
        let r = http
            .post(app.url(&path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("step");
        assert!(r.status().is_success(), "{path}");
    }
    let made: Value = http
        .post(app.url("/api/v1/couriers/me/withdrawals"))
        .bearer_auth(&courier)
        .json(&json!({"amount_fen": 200}))
        .send()
        .await
        .expect("withdraw")
        .json()
        .await
        .expect("JSON");
    let withdrawal = made["id"].as_str().expect("id").to_owned();
    (courier, withdrawal)
}

#[actix_web::test]
async fn an_operator_approves_and_pays_a_withdrawal_and_reconciles_in_the_console() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__MONEY__PAYOUT", "manual"),
        ],
    )
    .await;
    let http = http_client();
    let (courier, withdrawal) = courier_withdrawing(&app, &http, "money", "韩梅梅").await;

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in(&browser, &app).await;

        // The day's commission, the courier's balances, the queue.
        assert_eq!(text_of(&browser, "#money-commission b", 20).await, "¥0.30");
        let row = format!("#withdrawals tr[data-id='{withdrawal}']");
        text_becomes(&browser, &format!("{row} .wstatus"), &["待审核"], 20).await;
        let balances = text_of(&browser, "#balances", 10).await;
        assert!(
            balances.contains("韩梅梅") && balances.contains("¥0.70") && balances.contains("¥2.00"),
            "{balances}"
        );

        click(&browser, &format!("{row} .approve")).await;
        click(&browser, "#dialog-ok").await;
        text_becomes(&browser, &format!("{row} .wstatus"), &["转账中"], 20).await;
        click(&browser, &format!("{row} .paid")).await;
        click(&browser, "#dialog-ok").await;
        let gone = eventually(Duration::from_secs(20), || async {
            browser.find(Locator::Css(&row)).await.is_err()
        })
        .await;
        assert!(gone, "a paid withdrawal leaves the queue");

        // Reconcile yesterday from the console.
        click(&browser, "#reconciliations tr:first-child button").await;
        text_becomes(
            &browser,
            "#reconciliations tr:first-child td:nth-child(2)",
            &["0"],
            20,
        )
        .await;
        browser
            .execute("document.getElementById('money').scrollIntoView()", vec![])
            .await
            .expect("scrolled");
        std::fs::write(
            screenshot_path("console-money.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
    }
    .await;
    browser.close().await.ok();
    drop(driver);

    let mine: Value = http
        .get(app.url("/api/v1/couriers/me/withdrawals"))
        .bearer_auth(&courier)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(mine["withdrawals"][0]["status"], "succeeded", "{mine}");
}

#[actix_web::test]
async fn an_operator_cancels_a_transfer_waiting_for_its_courier_in_the_console() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__MONEY__WITHDRAWAL_REVIEW", "false"),
        ],
    )
    .await;
    let http = http_client();
    let (courier, withdrawal) = courier_withdrawing(&app, &http, "cancel", "李雷").await;

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in(&browser, &app).await;

        // The sandbox took the transfer; the courier has not confirmed it.
        let row = format!("#withdrawals tr[data-id='{withdrawal}']");
        text_becomes(&browser, &format!("{row} .wstatus"), &["待骑手确认"], 20).await;
        click(&browser, &format!("{row} .cancel")).await;
        browser
            .find(Locator::Id("dialog-input"))
            .await
            .expect("reason")
            .send_keys("收款账户有误")
            .await
            .expect("typed");
        click(&browser, "#dialog-ok").await;
        // WeChat Pay (simulated) cancels and calls back: the row leaves.
        let gone = eventually(Duration::from_secs(20), || async {
            browser.find(Locator::Css(&row)).await.is_err()
        })
        .await;
        assert!(gone, "a cancelled withdrawal leaves the queue");
    }
    .await;
    browser.close().await.ok();
    drop(driver);

    let mine: Value = http
        .get(app.url("/api/v1/couriers/me/withdrawals"))
        .bearer_auth(&courier)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(mine["withdrawals"][0]["status"], "cancelled", "{mine}");
    let wallet: Value = http
        .get(app.url("/api/v1/couriers/me/wallet"))
        .bearer_auth(&courier)
        .send()
        .await
        .expect("wallet")
        .json()
        .await
        .expect("JSON");
    assert_eq!(wallet["available_fen"], 270, "{wallet}");
}

/// `POST` as `token` with a JSON body; the answer's JSON.
async fn post_json(
    http: &reqwest::Client,
    app: &BinaryApp,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let r = http
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("JSON")
}

#[actix_web::test]
async fn an_operator_reviews_an_application_with_its_card_and_suspends_a_courier_in_the_console() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__COURIERS__REVIEW", "true"),
        ],
    )
    .await;
    let http = http_client();
    let (applicant, applicant_id) = app.login(&http, "console-applicant").await;
    let card = crate::uploads::upload_over_http(&http, &app, &applicant).await;
    let applied = post_json(
        &http,
        &app,
        &applicant,
        "/api/v1/couriers/me",
        json!({"name": "林涛", "phone": "13800138005", "student_no": "2024110", "card_photo": card}),
    )
    .await;
    assert_eq!(applied["review"], "pending");

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in(&browser, &app).await;
        // The queue shows the application with the card photo, loaded
        // through the private uploads route.
        let row = format!("#applications tr[data-openid='{applicant_id}']");
        let text = text_of(&browser, &row, 20).await;
        assert!(text.contains("林涛") && text.contains("2024110"), "{text}");
        let loaded = eventually(Duration::from_secs(10), || async {
            let width = browser
                .execute(
                    &format!("const i = document.querySelector(\"{row} img.photo\"); return i && i.complete ? i.naturalWidth : 0;"),
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            width == 64
        })
        .await;
        assert!(loaded, "the student card photo did not show");
        browser
            .execute("document.getElementById('review').scrollIntoView()", vec![])
            .await
            .expect("scrolled");
        std::fs::write(
            screenshot_path("console-review.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
        click(&browser, &format!("{row} .approve")).await;
        click(&browser, "#dialog-ok").await;
        let gone = eventually(Duration::from_secs(20), || async {
            browser.find(Locator::Css(&row)).await.is_err()
        })
        .await;
        assert!(gone, "an approved application leaves the queue");
    }
    .await;

    // Approved: the courier goes online and takes an order.
    post_json(
        &http,
        &app,
        &applicant,
        "/api/v1/couriers/me/online",
        json!({"place_id": "cainiao-north"}),
    )
    .await;
    let (customer, order) = app
        .sandbox_paid_order(&http, "console-review-customer")
        .await;
    post_json(
        &http,
        &app,
        &applicant,
        &format!("/api/v1/orders/{order}/grab"),
        json!({}),
    )
    .await;

    async {
        // Suspend them from the courier list, for 3 days.
        let courier = format!("#couriers tr[data-openid='{applicant_id}']");
        // The list redraws every 3 s; the page clicks its own button.
        let script = format!("const b = document.querySelector(\"{courier} .suspend\"); if (b) b.click(); return !!b;");
        let clicked = eventually(Duration::from_secs(20), || async {
            browser.execute(&script, vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true)
        })
        .await;
        assert!(clicked, "no suspend button for the courier");
        browser
            .find(Locator::Id("dialog-input"))
            .await
            .expect("reason")
            .send_keys("多次超时")
            .await
            .expect("typed");
        click(&browser, "#dialog-ok").await;
        browser
            .execute(
                "document.getElementById('dialog-select').value = '3'",
                vec![],
            )
            .await
            .expect("chose");
        click(&browser, "#dialog-ok").await;
        let suspended = format!("#suspended tr[data-openid='{applicant_id}']");
        let text = text_of(&browser, &suspended, 20).await;
        assert!(text.contains("多次超时"), "{text}");
    }
    .await;
    browser.close().await.ok();
    drop(driver);

    let order: Value = http
        .get(app.url(&format!("/api/v1/orders/{order}")))
        .bearer_auth(&customer)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        order["status"], "paid",
        "the suspended courier's task went back: {order}"
    );
    let refused = http
        .post(app.url("/api/v1/couriers/me/online"))
        .bearer_auth(&applicant)
        .json(&json!({"place_id": "cainiao-north"}))
        .send()
        .await
        .expect("online");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    let profile = post_json(
        &http,
        &app,
        ADMIN_TOKEN,
        &format!("/api/v1/admin/couriers/{applicant_id}/reinstate"),
        json!({}),
    )
    .await;
    assert_eq!(profile["review"], "approved");
}

#[actix_web::test]
async fn the_console_shows_who_is_signed_in_and_hides_what_their_role_cannot_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let http = http_client();
    let viewer = post_json(
        &http,
        &app,
        ADMIN_TOKEN,
        "/api/v1/admin/operators",
        json!({"name": "zhao.viewer", "role": "viewer"}),
    )
    .await;
    let token = viewer["token"].as_str().expect("token").to_owned();
    let (_, order) = app
        .sandbox_paid_order(&http, "console-viewer-customer")
        .await;

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in_with(&browser, &app, &token).await;
        text_becomes(&browser, "#who", &["zhao.viewer（只读）"], 20).await;
        browser
            .find(Locator::Id("search-q"))
            .await
            .expect("search")
            .send_keys(&order)
            .await
            .expect("typed");
        click(&browser, "#search-go").await;
        let card = format!(".order[data-id='{order}']");
        text_of(&browser, &card, 20).await;
        let refund = browser
            .find(Locator::Css(&format!("{card} .refund")))
            .await
            .expect("the button is in the page");
        assert!(
            !refund.is_displayed().await.expect("displayed?"),
            "a viewer is offered a refund"
        );
    }
    .await;
    browser.close().await.ok();
    drop(driver);
    // And the API itself refuses it, whatever a page shows.
    let refused = http
        .post(app.url(&format!("/api/v1/admin/orders/{order}/refund")))
        .bearer_auth(&token)
        .json(&json!({"reason": "try"}))
        .send()
        .await
        .expect("refund");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_operator_resolves_a_dispute_with_a_partial_refund_in_the_console() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__COURIERS__REVIEW", "false"),
        ],
    )
    .await;
    let http = http_client();
    let (customer, id) = app
        .sandbox_paid_order(&http, "console-dispute-customer")
        .await;
    let (courier, _) = app.login(&http, "console-dispute-courier").await;
    let proof = crate::uploads::upload_over_http(&http, &app, &courier).await;
    for (path, body) in [
        (
            "/api/v1/couriers/me".to_owned(),
            json!({"name": "周杰", "phone": "13800138006"}),
        ),
        (
            "/api/v1/couriers/me/online".to_owned(),
            json!({"place_id": "cainiao-north"}),
        ),
        (format!("/api/v1/orders/{id}/grab"), json!({})),
        (format!("/api/v1/orders/{id}/pickup"), json!({})),
        (
            format!("/api/v1/orders/{id}/deliver"),
            json!({"photo": proof}),
        ),
    ] {
        post_json(&http, &app, &courier, &path, body).await;
    }
    let evidence = crate::uploads::upload_over_http(&http, &app, &customer).await;
    let disputed = post_json(
        &http,
        &app,
        &customer,
        &format!("/api/v1/orders/{id}/dispute"),
        json!({"reason": "damaged", "text": "汤洒了一半", "photos": [evidence]}),
    )
    .await;
    assert_eq!(disputed["status"], "disputed");

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in(&browser, &app).await;
        let card = format!("#disputes .dispute[data-id='{id}']");
        let text = text_of(&browser, &card, 20).await;
        assert!(text.contains("损坏") && text.contains("汤洒了一半") && text.contains("周杰"), "{text}");
        // Both photos load through the private uploads route.
        let loaded = eventually(Duration::from_secs(10), || async {
            let widths = browser
                .execute(
                    &format!("return [...document.querySelectorAll(\"{card} img.photo\")].map(i => i.complete ? i.naturalWidth : 0);"),
                    vec![],
                )
                .await
                .ok();
            widths == Some(json!([64, 64]))
        })
        .await;
        assert!(loaded, "the dispute and delivery photos did not show");
        browser
            .execute("document.getElementById('dispute-queue').scrollIntoView()", vec![])
            .await
            .expect("scrolled");
        std::fs::write(
            screenshot_path("console-dispute.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
        // 1.20 yuan back of 3.00.
        browser
            .execute(
                &format!("document.querySelector(\"{card} .refund-yuan\").value = '1.20';"),
                vec![],
            )
            .await
            .expect("amount");
        browser
            .find(Locator::Css(&format!("{card} .resolve-note")))
            .await
            .expect("note")
            .send_keys("汤洒了，退 1.2 元")
            .await
            .expect("typed");
        // The queue refreshes itself every 15 s, maybe while an operator
        // types: what they typed stays.
        browser
            .execute_async("refreshDisputes().then(arguments[0]);", vec![])
            .await
            .expect("refreshed");
        let kept = browser
            .execute(
                &format!("return [document.querySelector(\"{card} .refund-yuan\").value, document.querySelector(\"{card} .resolve-note\").value];"),
                vec![],
            )
            .await
            .expect("read back");
        assert_eq!(kept, json!(["1.20", "汤洒了，退 1.2 元"]));
        click(&browser, &format!("{card} .resolve")).await;
        let asked = text_of(&browser, "#dialog-text", 10).await;
        assert!(asked.contains("¥1.20") && asked.contains("¥1.80"), "{asked}");
        click(&browser, "#dialog-ok").await;
        let gone = eventually(Duration::from_secs(20), || async {
            browser.find(Locator::Css(&card)).await.is_err()
        })
        .await;
        assert!(gone, "a resolved dispute leaves the queue");
    }
    .await;
    browser.close().await.ok();
    drop(driver);

    // The sandbox refunds the part and notifies; the rest is the courier's.
    let done = eventually(Duration::from_secs(20), || {
        let req = http
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(&customer);
        async move {
            let order: Value = req.send().await.expect("get").json().await.expect("json");
            order["status"] == "completed"
        }
    })
    .await;
    assert!(done, "the partly refunded order did not complete");
    let wallet: Value = http
        .get(app.url("/api/v1/couriers/me/wallet"))
        .bearer_auth(&courier)
        .send()
        .await
        .expect("wallet")
        .json()
        .await
        .expect("JSON");
    // 180 left of 300: 10 % commission (18) to the platform, 162 earned.
    assert_eq!(wallet["available_fen"], 162, "{wallet}");
}

#[actix_web::test]
async fn the_campus_switcher_shows_the_other_campus_when_clicked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/config/campuses");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN_TOKEN),
            ("LASTMILE__CAMPUS__MAP", map),
        ],
    )
    .await;
    let http = http_client();
    let mut couriers = Vec::new();
    for (code, name, place) in [
        ("switch-main", "李雷", "library"),
        ("switch-east", "韩梅梅", "east-station"),
    ] {
        let (_, openid) = app.online_courier(&http, code, name, place).await;
        couriers.push(openid);
    }
    let marker = |openid: &str| format!("#map-svg .courier.online[data-openid='{openid}']");

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("profile")).await;
    async {
        sign_in(&browser, &app).await;
        // The default campus first: main's courier, not east's.
        let label = text_of(&browser, &format!("{} text", marker(&couriers[0])), 20).await;
        assert!(label.starts_with("李雷"), "{label}");
        assert!(browser
            .find(Locator::Css(&marker(&couriers[1])))
            .await
            .is_err());

        browser
            .find(Locator::Id("campus"))
            .await
            .expect("the switcher")
            .select_by_value("east")
            .await
            .expect("east chosen");
        let label = text_of(&browser, &format!("{} text", marker(&couriers[1])), 20).await;
        assert!(label.starts_with("韩梅梅"), "{label}");
        let gone = eventually(Duration::from_secs(10), || async {
            browser
                .find(Locator::Css(&marker(&couriers[0])))
                .await
                .is_err()
        })
        .await;
        assert!(gone, "main's courier is not on east's map");
        let place = browser
            .find(Locator::Css("#map-svg .place[data-place='east-station']"))
            .await;
        assert!(place.is_ok(), "east's places are drawn");
        std::fs::write(
            screenshot_path("console-east.png"),
            browser.screenshot().await.expect("screenshot"),
        )
        .expect("screenshot saved");
    }
    .await;
    browser.close().await.ok();
    drop(driver);
}
