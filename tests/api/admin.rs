//! The admin API in process: off without `admin.token`, 401 with a wrong
//! one, and the operator's actions recorded in the order's history.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_app_with};

const TOKEN: &str = "operator-secret-token";

fn admin(req: TestRequest) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {TOKEN}")))
}

#[actix_web::test]
async fn without_admin_token_the_console_and_its_api_do_not_exist() {
    let app = spawn_app().await;
    let cases = [
        TestRequest::get().uri("/admin"),
        TestRequest::get().uri("/api/v1/admin/live"),
        admin(TestRequest::get().uri("/api/v1/admin/today")),
        admin(TestRequest::get().uri("/api/v1/admin/orders?q=x")),
        TestRequest::post()
            .uri("/api/v1/admin/orders/A1/refund")
            .insert_header(("Content-Type", "text/plain"))
            .set_payload("not json"),
        TestRequest::post().uri("/api/v1/admin/couriers/oX/offline"),
    ];
    for req in cases {
        let reply = app.send(req).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.code(), "not_found");
    }
}

#[actix_web::test]
async fn a_missing_or_wrong_admin_token_is_401() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (customer, _) = app.login("admin-401-customer").await;
    for auth in [
        None,
        Some("Bearer nope"),
        Some(format!("Bearer {customer}").as_str()),
    ] {
        let mut req = TestRequest::get().uri("/api/v1/admin/live");
        if let Some(a) = auth {
            req = req.insert_header(("Authorization", a.to_owned()));
        }
        let reply = app.send(req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(reply.code(), "unauthorized");
    }
    let ok = app
        .send(admin(TestRequest::get().uri("/api/v1/admin/live")))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let page =
        actix_web::test::call_service(&app.svc, TestRequest::get().uri("/admin").to_request())
            .await;
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("x-frame-options"), "DENY");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(header("content-type").starts_with("text/html"));
}

#[actix_web::test]
async fn operator_actions_land_in_the_order_history() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (customer, customer_id) = app.login("admin-customer").await;
    let (first, _) = app.online_courier("admin-courier-a", "cainiao-north").await;
    let id = app.paid_order(&customer, &customer_id).await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(10))
            .await
    );
    let (_, second_id) = app.online_courier("admin-courier-b", "dorm-3").await;

    // Reassign to the second courier.
    let moved = app
        .send(admin(
            TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{id}/reassign"))
                .set_json(json!({"courier": second_id})),
        ))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["courier"], second_id.as_str());
    // The first courier lost it, and is told so.
    let lost = eventually(Duration::from_secs(5), || async {
        let tasks = app.get_as(&first, "/api/v1/couriers/me/tasks").await;
        tasks.body["orders"].as_array().is_some_and(Vec::is_empty)
            && tasks.body["withdrawn"][0]["order_id"] == id.as_str()
            && tasks.body["withdrawn"][0]["reason"] == "reassigned"
    })
    .await;
    assert!(lost, "the first courier still holds the reassigned order");

    // Take the second courier offline: their order notes it.
    let off = app
        .send(admin(
            TestRequest::post().uri(&format!("/api/v1/admin/couriers/{second_id}/offline")),
        ))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["online"], false);

    // Refund with a reason; a second refund is refused and changes nothing.
    let refund = |reason: Value| {
        admin(
            TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{id}/refund"))
                .set_json(reason),
        )
    };
    let no_reason = app.send(refund(json!({}))).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let refunded = app.send(refund(json!({"reason": "顾客投诉"}))).await;
    assert_eq!(refunded.status, StatusCode::OK, "{}", refunded.body);
    assert_eq!(refunded.body["status"], "refunding");
    let again = app.send(refund(json!({"reason": "twice"}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // The history, found by the customer's openid, says who did what.
    let found = app
        .send(admin(
            TestRequest::get().uri(&format!("/api/v1/admin/orders?q={customer_id}")),
        ))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    let order = &found.body["orders"][0];
    assert_eq!(order["id"], id.as_str());
    let steps: Vec<(String, String, String)> = order["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["event"].as_str().unwrap_or("note").to_owned(),
                h["by"].as_str().unwrap_or("").to_owned(),
                h["by_openid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |e: &str, by: &str, who: &str| (e.to_owned(), by.to_owned(), who.to_owned());
    assert_eq!(
        steps[..7],
        [
            expect("create", "customer", &customer_id),
            expect("payment_confirmed", "wechat_pay", ""),
            expect("assign", "dispatcher", ""),
            expect("unassign", "operator", ""),
            expect("assign", "operator", ""),
            expect("note", "operator", ""),
            expect("operator_refund", "operator", ""),
        ],
        "{:#?}",
        order["history"]
    );
    assert_eq!(order["history"][6]["note"], "顾客投诉");
    // Every operator step names the operator (admin.token signs in as `admin`).
    for step in &order["history"].as_array().expect("history")[3..7] {
        assert_eq!(step["operator"], "admin", "{step}");
    }
    for action in ["refund", "reassign", "force_offline"] {
        let series =
            format!("lastmile_admin_actions_total{{action=\"{action}\",operator=\"admin\"}}");
        assert!(app.metric(&series).await >= 1.0, "{series}");
    }

    // Today's figures count it: created, paid, refunded, no revenue.
    let today = app
        .send(admin(TestRequest::get().uri("/api/v1/admin/today")))
        .await;
    assert_eq!(today.status, StatusCode::OK);
    assert_eq!(
        (
            &today.body["created"],
            &today.body["paid"],
            &today.body["refunded"],
            &today.body["revenue_yuan"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!("0.00"))
    );
}

#[actix_web::test]
async fn the_board_shows_couriers_routes_and_waiting_orders() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (customer, customer_id) = app.login("board-customer").await;
    let waiting = app.paid_order(&customer, &customer_id).await;
    let board = app
        .send(admin(TestRequest::get().uri("/api/v1/admin/live")))
        .await;
    assert_eq!(board.body["waiting"][0]["order_id"], waiting.as_str());
    let (_, courier) = app.online_courier("board-courier", "cainiao-north").await;
    let planned = eventually(Duration::from_secs(10), || async {
        let board = app
            .send(admin(TestRequest::get().uri("/api/v1/admin/live")))
            .await;
        let me = &board.body["couriers"][0];
        me["openid"] == courier.as_str()
            && me["online"] == true
            && me["route"].as_array().is_some_and(|r| r.len() == 2)
            && board.body["waiting"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert!(planned, "the courier's route never showed");
    let map = app
        .send(admin(TestRequest::get().uri("/api/v1/admin/map")))
        .await;
    assert!(map.body["places"].as_array().is_some_and(|p| p.len() > 10));
}

#[actix_web::test]
async fn notes_are_capped_but_every_status_change_is_kept() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (customer, customer_id) = app.login("history-customer").await;
    let (courier, courier_id) = app.online_courier("history-courier", "cainiao-north").await;
    let id = app.paid_order(&customer, &customer_id).await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(10))
            .await
    );
    let force_offline =
        || admin(TestRequest::post().uri(&format!("/api/v1/admin/couriers/{courier_id}/offline")));
    for _ in 0..30 {
        let online = app
            .post_as(
                &courier,
                "/api/v1/couriers/me/online",
                Some(json!({"place_id": "cainiao-north"})),
            )
            .await;
        assert_eq!(online.status, StatusCode::OK, "{}", online.body);
        assert_eq!(app.send(force_offline()).await.status, StatusCode::OK);
    }
    let history = |body: &Value| {
        body["orders"][0]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let search = || admin(TestRequest::get().uri(&format!("/api/v1/admin/orders?q={id}")));
    let before = history(&app.send(search()).await.body);
    // Offline already: nothing changes, nothing is noted.
    for _ in 0..5 {
        let again = app.send(force_offline()).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["online"], false);
    }
    let after = history(&app.send(search()).await.body);
    assert_eq!(
        before.len(),
        after.len(),
        "an offline courier forced offline is noted"
    );

    let events: Vec<&str> = after.iter().filter_map(|h| h["event"].as_str()).collect();
    assert_eq!(
        events,
        ["create", "payment_confirmed", "assign"],
        "{after:#?}"
    );
    let notes = after.iter().filter(|h| h["event"].is_null()).count();
    assert_eq!(notes, 20, "notes are capped at 20");

    // Reassigning to someone who is not a courier: no such courier.
    let nobody = app
        .send(admin(
            TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{id}/reassign"))
                .set_json(json!({"courier": customer_id})),
        ))
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);
    assert_eq!(nobody.code(), "not_found");
}

#[actix_web::test]
async fn admin_answers_are_never_cached_or_sniffed() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    for uri in [
        "/api/v1/admin/today",
        "/api/v1/admin/live",
        "/api/v1/admin/map",
    ] {
        let res = actix_web::test::call_service(
            &app.svc,
            admin(TestRequest::get().uri(uri)).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(header("cache-control"), "no-store", "{uri}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
    }
    // The console runs only its own script, by hash: no inline injection.
    let page =
        actix_web::test::call_service(&app.svc, TestRequest::get().uri("/admin").to_request())
            .await;
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let scripts = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or("");
    assert!(scripts.starts_with("script-src 'sha256-"), "{csp}");
    assert!(!scripts.contains("unsafe-inline"), "{csp}");
}
