//! Operators limited to campuses: what they may see and do of operators,
//! money, customers, couriers and photos on other campuses (nothing), and
//! that a courier's campus outlives a restart.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::StatusCode;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, order_body, spawn_app_with, BinaryApp, Reply, TestApp};

const ADMIN: &str = "scoping-admin-token-0123456789abcdef";

/// The shipped directory of two campuses, `main` and `east`.
fn two_campuses() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/campuses"))
}

/// An east order body.
fn east_errand() -> Value {
    let mut body = order_body();
    body["pickup"]["place_id"] = json!("east-station");
    body["dropoff"]["place_id"] = json!("east-dorm-1");
    body
}

/// Two campuses, the admin API on, no automatic dispatch.
async fn two_campus_app() -> TestApp<
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    spawn_app_with(|s| {
        s.campus.map = two_campuses();
        s.admin.token = Some(Secret::new(ADMIN));
        s.dispatch.auto = false;
    })
    .await
}

/// Adds an operator as `by`; answers the reply (its token on 201).
async fn add_operator<S, B>(app: &TestApp<S>, by: &str, body: Value) -> Reply
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    app.post_as(by, "/api/v1/admin/operators", Some(body)).await
}

/// Adds an operator as the bootstrap admin; answers their token.
async fn operator<S, B>(app: &TestApp<S>, name: &str, role: &str, campuses: &[&str]) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let added = add_operator(
        app,
        ADMIN,
        json!({"name": name, "role": role, "campuses": campuses}),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    added.body["token"].as_str().expect("token").to_owned()
}

/// The names of the operators `by` sees.
async fn names_seen_by<S, B>(app: &TestApp<S>, by: &str) -> Vec<String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let listed = app.get_as(by, "/api/v1/admin/operators").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body["operators"]
        .as_array()
        .expect("operators")
        .iter()
        .map(|o| o["name"].as_str().expect("name").to_owned())
        .collect()
}

#[actix_web::test]
async fn a_limited_admin_manages_only_operators_within_its_campuses() {
    let app = two_campus_app().await;
    let main_admin = operator(&app, "main.admin", "admin", &["main"]).await;
    let everywhere = operator(&app, "all.viewer", "viewer", &[]).await;
    operator(&app, "east.viewer", "viewer", &["east"]).await;

    for (body, why) in [
        (json!({"name": "escalated", "role": "admin"}), "no limit"),
        (
            json!({"name": "escalated", "role": "admin", "campuses": ["east"]}),
            "another campus",
        ),
        (
            json!({"name": "escalated", "role": "admin", "campuses": ["main", "east"]}),
            "beyond its own",
        ),
    ] {
        let refused = add_operator(&app, &main_admin, body).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{why}: {}",
            refused.body
        );
    }
    assert!(!names_seen_by(&app, ADMIN)
        .await
        .contains(&"escalated".to_owned()));
    let within = add_operator(
        &app,
        &main_admin,
        json!({"name": "main.viewer", "role": "viewer", "campuses": ["main"]}),
    )
    .await;
    assert_eq!(within.status, StatusCode::CREATED, "{}", within.body);
    assert_eq!(within.body["campuses"], json!(["main"]));

    // A campus nobody serves is refused, naming those served.
    for by in [ADMIN, main_admin.as_str()] {
        let nowhere = add_operator(
            &app,
            by,
            json!({"name": "ghost", "role": "viewer", "campuses": ["west"]}),
        )
        .await;
        assert_eq!(nowhere.status, StatusCode::BAD_REQUEST, "{}", nowhere.body);
        let message = nowhere.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("main, east"), "{message}");
    }

    let mut seen = names_seen_by(&app, &main_admin).await;
    seen.sort();
    assert_eq!(seen, ["main.admin", "main.viewer"]);
    assert_eq!(names_seen_by(&app, ADMIN).await.len(), 4);

    for other in ["all.viewer", "east.viewer"] {
        let revoked = app
            .post_as(
                &main_admin,
                &format!("/api/v1/admin/operators/{other}/revoke"),
                None,
            )
            .await;
        assert_eq!(
            revoked.status,
            StatusCode::NOT_FOUND,
            "{other}: {}",
            revoked.body
        );
    }
    let still = app.get_as(&everywhere, "/api/v1/admin/me").await;
    assert_eq!(still.status, StatusCode::OK, "all.viewer keeps its token");
    let revoked = app
        .post_as(
            &main_admin,
            "/api/v1/admin/operators/main.viewer/revoke",
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
}

/// An east customer's order, delivered by an east courier and confirmed;
/// answers (customer openid, courier token, courier openid).
async fn east_earning<S, B>(app: &TestApp<S>) -> (String, String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let (customer, customer_openid) = app.login("scoped-east-customer").await;
    let created = app.create_order(&customer, &east_errand()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &customer_openid, &id).await;
    let (courier, courier_openid) = app
        .online_courier("scoped-east-courier", "east-station")
        .await;
    for step in ["grab", "pickup", "deliver"] {
        let r = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
    }
    let done = app
        .post_as(&customer, &format!("/api/v1/orders/{id}/confirm"), None)
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    let earned = eventually(Duration::from_secs(5), || async {
        let w = app.get_as(&courier, "/api/v1/couriers/me/wallet").await;
        w.body["available_fen"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert!(earned, "the ledger posted the completion");
    (customer_openid, courier, courier_openid)
}

#[actix_web::test]
async fn money_customers_and_the_whole_book_answer_a_limited_operator_only_for_its_campuses() {
    let app = two_campus_app().await;
    let (customer, courier, courier_openid) = east_earning(&app).await;
    let asked = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/withdrawals",
            Some(json!({"amount_fen": 100})),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.body);
    let withdrawal = asked.body["id"].as_str().expect("id").to_owned();
    let main_viewer = operator(&app, "main.viewer", "viewer", &["main"]).await;
    let main_finance = operator(&app, "main.finance", "finance", &["main"]).await;
    let main_dispatcher = operator(&app, "main.dispatcher", "dispatcher", &["main"]).await;
    let east_finance = operator(&app, "east.finance", "finance", &["east"]).await;
    let east_dispatcher = operator(&app, "east.dispatcher", "dispatcher", &["east"]).await;

    // The queue and the balances: east's courier is not there for main.
    let queue = |who: String| {
        let app = &app;
        async move { app.get_as(&who, "/api/v1/admin/withdrawals").await.body }
    };
    assert_eq!(queue(main_viewer.clone()).await["withdrawals"], json!([]));
    assert_eq!(
        queue(ADMIN.into()).await["withdrawals"][0]["courier"],
        json!(courier_openid)
    );
    assert_eq!(
        queue(east_finance.clone()).await["withdrawals"][0]["id"],
        json!(withdrawal)
    );
    let theirs = app.get_as(&main_viewer, "/api/v1/admin/money").await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(theirs.body["couriers"], json!([]), "{}", theirs.body);
    assert_eq!(theirs.body["payments_fen"], 0, "main took no payment");
    let east = app.get_as(&east_finance, "/api/v1/admin/money").await;
    assert_eq!(east.body["couriers"][0]["openid"], json!(courier_openid));
    assert_eq!(east.body["payments_fen"], 300, "{}", east.body);
    let all = app.get_as(ADMIN, "/api/v1/admin/money").await;
    assert_eq!(all.body["payments_fen"], 300, "{}", all.body);

    // Acting on it: not found for main, and nothing changes.
    for (action, body) in [
        ("approve", None),
        ("reject", Some(json!({"reason": "not yours"}))),
        ("cancel", Some(json!({"reason": "not yours"}))),
    ] {
        let uri = format!("/api/v1/admin/withdrawals/{withdrawal}/{action}");
        let refused = app.post_as(&main_finance, &uri, body).await;
        assert_eq!(
            refused.status,
            StatusCode::NOT_FOUND,
            "{action}: {}",
            refused.body
        );
    }
    let mine = app
        .get_as(&courier, "/api/v1/couriers/me/withdrawals")
        .await;
    assert_eq!(mine.body["withdrawals"][0]["status"], "reviewing");
    let approved = app
        .post_as(
            &east_finance,
            &format!("/api/v1/admin/withdrawals/{withdrawal}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);

    // The whole book is for operators without a limit.
    for uri in [
        "/api/v1/admin/ledger/check",
        "/api/v1/admin/reconciliation?date=2026-12-01",
    ] {
        let refused = app.get_as(&main_viewer, uri).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{uri}: {}",
            refused.body
        );
        assert_ne!(app.get_as(ADMIN, uri).await.status, StatusCode::FORBIDDEN);
    }
    let refused = app
        .post_as(
            &main_finance,
            "/api/v1/admin/reconciliation?date=2026-12-01",
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // Customers: an east customer is not main's to block.
    let uri = format!("/api/v1/admin/users/{customer}/block");
    let refused = app
        .post_as(&main_dispatcher, &uri, Some(json!({"reason": "spam"})))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let refused = app
        .post_as(
            &main_dispatcher,
            &format!("/api/v1/admin/users/{customer}/unblock"),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let (customer_token, _) = app.login("scoped-east-customer").await;
    let still = app.create_order(&customer_token, &east_errand()).await;
    assert_eq!(
        still.status,
        StatusCode::CREATED,
        "not blocked: {}",
        still.body
    );
    let blocked = app
        .post_as(&east_dispatcher, &uri, Some(json!({"reason": "spam"})))
        .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
}

#[actix_web::test]
async fn a_courier_card_photo_is_seen_only_by_operators_of_their_campus() {
    let app = two_campus_app().await;
    let (courier, _) = app
        .online_courier("scoped-card-courier", "east-station")
        .await;
    let uri = format!("/api/v1/uploads/{}", app.upload_photo(&courier).await);
    let main_viewer = operator(&app, "main.viewer", "viewer", &["main"]).await;
    let east_viewer = operator(&app, "east.viewer", "viewer", &["east"]).await;
    assert_eq!(
        app.get_as(&main_viewer, &uri).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_as(&east_viewer, &uri).await.status, StatusCode::OK);
    assert_eq!(app.get_as(ADMIN, &uri).await.status, StatusCode::OK);
    assert_eq!(app.get_as(&courier, &uri).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn wrong_tokens_on_the_photo_route_are_struck_like_any_operator_sign_in() {
    let app = two_campus_app().await;
    let (user, _) = app.login("scoped-photo-owner").await;
    let uri = format!("/api/v1/uploads/{}", app.upload_photo(&user).await);
    let mut statuses = Vec::new();
    for guess in 0..15 {
        statuses.push(app.get_as(&format!("guess-{guess}"), &uri).await.status);
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((refused, throttled), (10, 5), "{statuses:?}");
    // The right operator token from that address waits out the bar too,
    // as on the admin API.
    assert_eq!(
        app.get_as(ADMIN, &uri).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Users are not operators: their own photo still answers them.
    assert_eq!(app.get_as(&user, &uri).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_couriers_campus_is_stored_and_holds_across_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let map = two_campuses().display().to_string();
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__CAMPUS__MAP", map.as_str()),
            ("LASTMILE__ADMIN__TOKEN", ADMIN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let (_, openid) = app
        .online_courier(&http, "restart-east-courier", "东区小王", "east-station")
        .await;
    let added: Value = http
        .post(app.url("/api/v1/admin/operators"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "main.ops", "role": "dispatcher", "campuses": ["main"]}))
        .send()
        .await
        .expect("add")
        .json()
        .await
        .expect("json");
    let main_ops = added["token"].as_str().expect("token").to_owned();
    app.kill9();
    app.launch().await;

    for (action, body) in [
        ("suspend", json!({"reason": "no-show"})),
        ("offline", json!({})),
        ("reinstate", json!({})),
        ("approve", json!({})),
    ] {
        let status = http
            .post(app.url(&format!("/api/v1/admin/couriers/{openid}/{action}")))
            .bearer_auth(&main_ops)
            .json(&body)
            .send()
            .await
            .expect("action")
            .status();
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{action}");
    }
    let listed =
        crate::helpers::get_json(&http, app.url("/api/v1/admin/couriers"), &main_ops).await;
    assert_eq!(listed["couriers"], json!([]), "{listed}");
    let all = crate::helpers::get_json(&http, app.url("/api/v1/admin/couriers"), ADMIN).await;
    assert_eq!(all["couriers"][0]["openid"], json!(openid), "{all}");
    assert_eq!(all["couriers"][0]["campus"], "east", "{all}");
    assert_eq!(all["couriers"][0]["review"], "approved", "nothing changed");
    app.kill9();
}
