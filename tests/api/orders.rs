//! Customer orders over HTTP, in process.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::helpers::{eventually, order_body, spawn_app, spawn_app_with};

#[actix_web::test]
async fn create_get_list_round_trip() {
    let app = spawn_app().await;
    let (token, openid) = app.login("customer-1").await;

    let created = app.create_order(&token, &order_body()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order = &created.body;
    let id = order["id"].as_str().expect("id");
    assert!(id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(order["customer"], openid.as_str());
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["courier"], Value::Null);
    assert_eq!(order["fee_fen"], 300);
    assert_eq!(order["pickup"]["place_id"], "cainiao-north");
    assert_eq!(order["pickup_code"], "5-3-2201");
    assert_eq!(order["note"], "请放门口");
    assert!(order["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let fetched = app.get_order(&token, id).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(&fetched.body, order, "GET returns what POST acknowledged");

    let listed = app.list_orders(&token, "").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["orders"][0], *order);
    assert_eq!(listed.body["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn list_is_newest_first_with_cursor_paging_and_status_filter() {
    let app = spawn_app().await;
    let (token, _) = app.login("pager").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let reply = app.create_order(&token, &order_body()).await;
        ids.push(reply.body["id"].as_str().expect("id").to_owned());
        // Ids carry millisecond time; keep creations in distinct milliseconds.
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
    let cancelled = app.cancel_order(&token, &ids[1]).await;
    assert_eq!(cancelled.status, StatusCode::OK);

    let page1 = app.list_orders(&token, "limit=2").await;
    let got: Vec<&str> = page1.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let cursor = page1.body["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();

    let page2 = app
        .list_orders(&token, &format!("limit=2&cursor={cursor}"))
        .await;
    let got: Vec<&str> = page2.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        got,
        [ids[2].as_str(), ids[1].as_str()],
        "archived orders interleave in time order"
    );
    let cursor = page2.body["next_cursor"]
        .as_str()
        .expect("one more page")
        .to_owned();

    let page3 = app
        .list_orders(&token, &format!("limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page3.body["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(page3.body["next_cursor"], Value::Null);

    let only_cancelled = app.list_orders(&token, "status=cancelled").await;
    let orders = only_cancelled.body["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["id"], ids[1].as_str());
}

#[actix_web::test]
async fn each_bad_input_gets_its_status_and_code_and_stores_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.login("validator").await;
    let with = |path: &[&str], value: Value| {
        let mut body = order_body();
        let mut slot = &mut body;
        for key in &path[..path.len() - 1] {
            slot = &mut slot[*key];
        }
        slot[path[path.len() - 1]] = value;
        body
    };
    let without = |key: &str| {
        let mut body = order_body();
        body.as_object_mut().map(|o| o.remove(key));
        body
    };
    let long = "长".repeat(201);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&["pickup", "place_id"], json!("mars")),
            "validation",
            "unknown pickup place",
        ),
        (
            with(&["dropoff", "place_id"], json!("")),
            "validation",
            "empty dropoff place",
        ),
        (with(&["fee_fen"], json!(0)), "validation", "fee zero"),
        (
            with(&["fee_fen"], json!(100_001)),
            "validation",
            "fee too high",
        ),
        (with(&["fee_fen"], json!(-5)), "validation", "fee negative"),
        (
            with(&["fee_fen"], json!(2.5)),
            "validation",
            "fee not an integer",
        ),
        (
            with(&["fee_fen"], json!("300")),
            "bad_request",
            "fee of the wrong JSON type",
        ),
        (
            with(&["kind"], json!("pizza")),
            "validation",
            "unknown kind",
        ),
        (
            with(&["kind"], json!(7)),
            "bad_request",
            "kind of the wrong JSON type",
        ),
        (
            with(&["note"], json!(long)),
            "validation",
            "note over 200 characters",
        ),
        (
            with(&["pickup", "detail"], json!(long)),
            "validation",
            "detail over 200 characters",
        ),
        (
            with(&["pickup", "detail"], json!("")),
            "validation",
            "empty detail",
        ),
        (
            with(&["pickup_code"], json!("x".repeat(33))),
            "validation",
            "pickup_code over 32",
        ),
        (without("kind"), "validation", "kind missing"),
        (without("fee_fen"), "validation", "fee missing"),
        (without("pickup"), "validation", "pickup missing"),
        (without("dropoff"), "validation", "dropoff missing"),
        (json!([1, 2]), "bad_request", "array body"),
    ];
    for (body, code, why) in cases {
        let reply = app.create_order(&token, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            reply.body
        );
        assert_eq!(reply.code(), code, "{why}: {}", reply.body);
        assert!(reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let named = app
        .create_order(&token, &with(&["fee_fen"], json!(0)))
        .await;
    assert_eq!(
        named.body["error"]["message"],
        "fee_fen must be between 1 and 100000 (an integer number of fen)"
    );
    let named = app
        .create_order(&token, &with(&["dropoff", "place_id"], json!("mars")))
        .await;
    assert!(named.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("dropoff.place_id"));
    assert_eq!(
        app.count_orders(&token).await,
        0,
        "no bad input may store an order"
    );
}

#[actix_web::test]
async fn transport_errors_not_json_too_large_bad_syntax() {
    let app = spawn_app().await;
    let (token, _) = app.login("transport").await;
    let auth = ("Authorization", format!("Bearer {token}"));
    let big = format!("{{\"note\": \"{}\"}}", "a".repeat(70 * 1024));
    let cases = [
        (
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "text/plain"))
                .set_payload(order_body().to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(auth.clone())
                .set_payload(order_body().to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json"))
                .set_payload(big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json"))
                .set_payload("{\"kind\": "),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json; charset=utf-8"))
                .set_payload("\u{0}\u{1}garbage"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders?limit=0")
                .insert_header(auth.clone()),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders?limit=101")
                .insert_header(auth.clone()),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders?limit=abc")
                .insert_header(auth.clone()),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders?status=lost")
                .insert_header(auth.clone()),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders?cursor=!!")
                .insert_header(auth.clone()),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            TestRequest::get()
                .uri("/api/v1/orders/not-an-id!")
                .insert_header(auth.clone()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            TestRequest::post()
                .uri("/api/v1/orders/abc/cancel")
                .insert_header(auth.clone())
                .insert_header(("Content-Type", "application/json"))
                .set_payload("[]"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let reply = app.send(req).await;
        assert_eq!(reply.status, status, "case {i}: {}", reply.body);
        assert_eq!(reply.code(), code, "case {i}");
    }
    assert_eq!(app.count_orders(&token).await, 0);
}

#[actix_web::test]
async fn another_users_order_is_not_found() {
    let app = spawn_app().await;
    let (alice, _) = app.login("alice").await;
    let (bob, _) = app.login("bob").await;
    let id = app.create_order(&alice, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.get_order(&bob, &id).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.cancel_order(&bob, &id).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count_orders(&bob).await, 0);
    assert_eq!(
        app.get_order(&alice, &id).await.body["status"],
        "awaiting_payment"
    );
}

#[actix_web::test]
async fn idempotency_key_replays_the_same_order() {
    let app = spawn_app().await;
    let (token, _) = app.login("retrier").await;
    let send = |key: &'static str| {
        TestRequest::post()
            .uri("/api/v1/orders")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Idempotency-Key", key))
            .set_json(order_body())
    };
    let first = app.send(send("pay-attempt-1")).await;
    let again = app.send(send("pay-attempt-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(first.body, again.body, "a replay answers the same body");
    assert_eq!(app.count_orders(&token).await, 1);

    let other = app.send(send("pay-attempt-2")).await;
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(app.count_orders(&token).await, 2);

    let bad = app.send(send("has space")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "validation");
    assert_eq!(app.count_orders(&token).await, 2);
}

#[actix_web::test]
async fn cancel_unpaid_then_cancel_again_is_409() {
    let app = spawn_app().await;
    let (token, _) = app.login("canceller").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = app.cancel_order(&token, &id).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["status"], "cancelled");
    let second = app.cancel_order(&token, &id).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.code(), "conflict");
    let empty_object = app
        .send(
            TestRequest::post()
                .uri(&format!("/api/v1/orders/{id}/cancel"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .set_json(json!({})),
        )
        .await;
    assert_eq!(
        empty_object.status,
        StatusCode::CONFLICT,
        "{{}} is an accepted action body"
    );
    assert_eq!(app.get_order(&token, &id).await.body["status"], "cancelled");
}

#[actix_web::test]
async fn unpaid_order_is_cancelled_after_the_payment_timeout() {
    let app = spawn_app_with(|s| s.orders.payment_timeout = Duration::from_millis(300)).await;
    let (token, _) = app.login("slow-payer").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cancelled = eventually(Duration::from_secs(10), || {
        let (app, token, id) = (&app, &token, &id);
        async move { app.get_order(token, id).await.body["status"] == "cancelled" }
    })
    .await;
    assert!(cancelled, "the payment timeout must cancel the order");
}

#[actix_web::test]
async fn a_panicking_shard_restarts_from_sled_and_keeps_answering() {
    let app = spawn_app_with(|s| s.orders.shards = 2).await;
    let (token, _) = app.login("survivor").await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            app.create_order(&token, &order_body()).await.body["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    for shard in 0..app.state.orders.shard_count() {
        let err = app.state.orders.inject_panic(shard).await;
        assert!(
            err.is_err(),
            "the panicking call itself gets an error (503), not a hang"
        );
    }
    // The shard keeps its acknowledged orders and its state machine.
    let cancel = app.cancel_order(&token, &ids[0]).await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    let again = app.cancel_order(&token, &ids[0]).await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "reloaded state must still know it is cancelled"
    );
    for id in &ids[1..] {
        assert_eq!(
            app.get_order(&token, id).await.body["status"],
            "awaiting_payment"
        );
    }
    assert_eq!(
        app.create_order(&token, &order_body()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.count_orders(&token).await, 11);
}

#[actix_web::test]
async fn a_customer_has_at_most_max_unpaid_orders_awaiting_payment() {
    let app = crate::helpers::spawn_app_with(|s| s.orders.max_unpaid = 3).await;
    let (token, _) = app.login("many-unpaid").await;
    let (other, _) = app.login("another-customer").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = app
            .send(
                actix_web::test::TestRequest::post()
                    .uri("/api/v1/orders")
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .insert_header(("Idempotency-Key", format!("unpaid-{i}")))
                    .set_json(order_body()),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        ids.push(created.body["id"].as_str().expect("id").to_owned());
    }

    let fourth = app.create_order(&token, &order_body()).await;

    assert_eq!(fourth.status, StatusCode::CONFLICT, "{}", fourth.body);
    assert_eq!(fourth.code(), "conflict");
    assert_eq!(app.count_orders(&token).await, 3, "nothing stored");
    let replay = app
        .send(
            actix_web::test::TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Idempotency-Key", "unpaid-0"))
                .set_json(order_body()),
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED, "a replay still answers");
    assert_eq!(replay.body["id"], ids[0].as_str());
    assert_eq!(
        app.create_order(&other, &order_body()).await.status,
        StatusCode::CREATED,
        "per customer"
    );
    app.cancel_order(&token, &ids[0]).await;
    assert_eq!(
        app.create_order(&token, &order_body()).await.status,
        StatusCode::CREATED,
        "a cancelled one frees a place"
    );
}

#[actix_web::test]
async fn ready_at_is_checked_and_shown() {
    use time::format_description::well_known::Rfc3339;
    let app = spawn_app().await;
    let (token, _) = app.login("ready-at").await;
    let now = time::OffsetDateTime::now_utc();
    let at = |d: i64| {
        (now + time::Duration::seconds(d))
            .format(&Rfc3339)
            .expect("formats")
    };
    let with_ready = |ready: Value| {
        let mut body = order_body();
        body["kind"] = "takeout".into();
        body["ready_at"] = ready;
        body
    };

    let later = app.create_order(&token, &with_ready(at(1800).into())).await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.body);
    let shown =
        time::OffsetDateTime::parse(later.body["ready_at"].as_str().expect("ready_at"), &Rfc3339)
            .expect("RFC 3339");
    assert!((shown - (now + time::Duration::seconds(1800))).abs() < time::Duration::seconds(1));

    let skewed = app.create_order(&token, &with_ready(at(-30).into())).await;
    assert_eq!(
        skewed.status,
        StatusCode::CREATED,
        "a phone clock 30 s behind"
    );
    assert_eq!(
        skewed.body["ready_at"], skewed.body["created_at"],
        "taken as now"
    );
    let absent = app.create_order(&token, &order_body()).await;
    assert_eq!(absent.body["ready_at"], absent.body["created_at"]);

    let cases = [
        (Value::from(at(-600)), "ten minutes ago"),
        (Value::from(at(25 * 3600)), "more than a day ahead"),
        (Value::from("tomorrow noon"), "not RFC 3339"),
    ];
    for (ready, why) in cases {
        let reply = app.create_order(&token, &with_ready(ready)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(reply.code(), "validation", "{why}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("ready_at"),
            "{why}"
        );
    }
    let wrong_type = app.create_order(&token, &with_ready(json!(1800))).await;
    assert_eq!(wrong_type.code(), "bad_request");
    assert_eq!(
        app.count_orders(&token).await,
        3,
        "nothing stored for bad input"
    );
}
