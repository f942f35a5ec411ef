//! Disputes and proof of delivery in process: the customer disputes a
//! delivered order (auto-confirm paused, the courier's earning held, the
//! courier sees it), a finance operator resolves it with nothing, part or
//! all of the money back — through WeChat Pay and the ledger — once, even
//! when two race; every refusal; the delivery photo, optional or required;
//! untaken orders told once and then refunded.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, get_json, spawn_app_with, BinaryApp, Reply, TestApp};
use crate::money::class;

const TOKEN: &str = "dispute-operator-token-0123";

/// One delivered order and everyone around it.
struct Delivered {
    customer: String,
    courier: String,
    id: String,
}

/// What each test starts from: a campus with an operator, manual dispatch.
macro_rules! dispute_app {
    ($tweak:expr) => {
        spawn_app_with(|s| {
            s.admin.token = Some(Secret::new(TOKEN));
            s.dispatch.auto = false;
            #[allow(clippy::redundant_closure_call)]
            ($tweak)(s);
        })
        .await
    };
}

/// Paid (fee 305 + tip 100), grabbed, picked up and delivered by a
/// courier, with `deliver_body` at the hand-over.
async fn delivered<S, B>(app: &TestApp<S>, tag: &str, deliver_body: Option<Value>) -> Delivered
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let (customer, customer_id) = app.login(&format!("{tag}-customer")).await;
    let mut body = crate::helpers::order_body();
    body["fee_fen"] = json!(305);
    body["tip_fen"] = json!(100);
    body["contact_phone"] = json!("13912345678");
    let created = app.create_order(&customer, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &customer_id, &id).await;
    let (courier, _) = app
        .online_courier(&format!("{tag}-courier"), "cainiao-north")
        .await;
    for step in ["grab", "pickup"] {
        let r = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
    }
    let r = app
        .post_as(
            &courier,
            &format!("/api/v1/orders/{id}/deliver"),
            deliver_body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "deliver: {}", r.body);
    Delivered {
        customer,
        courier,
        id,
    }
}

/// The admin API as the bootstrap operator (or `token`).
async fn operator<S, B>(app: &TestApp<S>, token: &str, req: TestRequest) -> Reply
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    app.send(req.insert_header(("Authorization", format!("Bearer {token}"))))
        .await
}

/// A new operator with `role`; answers their token.
async fn add_operator<S, B>(app: &TestApp<S>, name: &str, role: &str) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let added = operator(
        app,
        TOKEN,
        TestRequest::post()
            .uri("/api/v1/admin/operators")
            .set_json(json!({"name": name, "role": role})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    added.body["token"].as_str().expect("token").to_owned()
}

fn resolve(id: &str, refund_fen: Value, note: &str) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/api/v1/admin/orders/{id}/resolve"))
        .set_json(json!({"refund_fen": refund_fen, "note": note}))
}

async fn ledger<S, B>(app: &TestApp<S>) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let check = operator(
        app,
        TOKEN,
        TestRequest::get().uri("/api/v1/admin/ledger/check"),
    )
    .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert_eq!(check.body["balanced"], true, "{}", check.body);
    check.body
}

/// WeChat Pay's notify that the refund of `refund_fen` of `total_fen` went through.
fn refund_notify<S>(app: &TestApp<S>, id: &str, refund_fen: u32, total_fen: u32) -> String {
    use lastmile_actors::wechat::WeChat;
    let signer = app.wechat.pay().signer().clone();
    refund_notify_as(
        (&signer.appid, &signer.mch_id, signer.api_key.expose()),
        id,
        refund_fen,
        total_fen,
    )
}

/// The same notify, signed with a merchant's (appid, mch_id, api_key).
fn refund_notify_as(
    (appid, mch_id, key): (&str, &str, &str),
    id: &str,
    refund_fen: u32,
    total_fen: u32,
) -> String {
    use lastmile_actors::wechat::pay;
    let info = pay::fields([
        ("out_trade_no", id.to_owned()),
        ("out_refund_no", format!("R{id}")),
        ("refund_id", "50300000000000000000000000009".to_owned()),
        ("total_fee", total_fen.to_string()),
        ("refund_fee", refund_fen.to_string()),
        ("refund_status", "SUCCESS".to_owned()),
        ("success_time", "2026-12-04 12:00:00".to_owned()),
    ]);
    pay::to_xml(&pay::fields([
        ("return_code", "SUCCESS".to_owned()),
        ("appid", appid.to_owned()),
        ("mch_id", mch_id.to_owned()),
        ("nonce_str", "n".to_owned()),
        ("req_info", pay::encrypt_req_info(&info, key)),
    ]))
}

#[actix_web::test]
async fn a_dispute_holds_the_earning_until_a_partial_refund_settles_the_rest() {
    let app = dispute_app!(|_: &mut lastmile::config::Settings| {});
    // The courier's own photo (the same code is the same user).
    let (courier_token, _) = app.login("partial-courier").await;
    let proof = app.upload_photo(&courier_token).await;
    let d = delivered(&app, "partial", Some(json!({"photo": proof}))).await;
    let id = d.id.as_str();

    // The customer sees the proof and may open it.
    let seen = app.get_order(&d.customer, id).await.body;
    let url = seen["delivery_photo"].as_str().expect("a photo url");
    assert_eq!(url, format!("/api/v1/uploads/{proof}"));
    assert_eq!(app.get_as(&d.customer, url).await.status, StatusCode::OK);

    let evidence = app.upload_photo(&d.customer).await;
    let opened = app
        .post_as(
            &d.customer,
            &format!("/api/v1/orders/{id}/dispute"),
            Some(json!({"reason": "damaged", "text": "汤洒了一半", "photos": [evidence]})),
        )
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    assert_eq!(opened.body["status"], "disputed");
    assert_eq!(opened.body["dispute"]["reason"], "damaged");
    assert_eq!(opened.body["dispute"]["text"], "汤洒了一半");
    assert_eq!(opened.body["dispute"]["resolution"], Value::Null);
    let photo_url = format!("/api/v1/uploads/{evidence}");
    assert_eq!(opened.body["dispute"]["photos"], json!([photo_url]));
    // The courier sees the dispute in their tasks, with its evidence, and
    // the earning stays pending.
    let tasks = app.get_as(&d.courier, "/api/v1/couriers/me/tasks").await;
    let listed = tasks.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .expect("the disputed order is in the courier's list");
    assert_eq!(listed["status"], "disputed");
    assert_eq!(
        app.get_as(&d.courier, &photo_url).await.status,
        StatusCode::OK
    );
    let wallet = app
        .get_as(&d.courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["pending_fen"].clone(),
            wallet["available_fen"].clone()
        ),
        (json!(375), json!(0))
    );
    // Nobody confirms a disputed order: not the customer, not the timer.
    let confirm = app
        .post_as(&d.customer, &format!("/api/v1/orders/{id}/confirm"), None)
        .await;
    assert_eq!(confirm.status, StatusCode::CONFLICT, "{}", confirm.body);

    // The queue lists it for every role; a dispatcher may not resolve it.
    let viewer = add_operator(&app, "partial-viewer", "viewer").await;
    let queue = operator(
        &app,
        &viewer,
        TestRequest::get().uri("/api/v1/admin/disputes"),
    )
    .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert_eq!(queue.body["orders"][0]["id"], id);
    assert_eq!(queue.body["orders"][0]["dispute"]["reason"], "damaged");
    assert_eq!(queue.body["orders"][0]["contact_phone"], Value::Null);
    let dispatcher = add_operator(&app, "partial-dispatcher", "dispatcher").await;
    let refused = operator(&app, &dispatcher, resolve(id, json!(200), "退一半")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let finance = add_operator(&app, "partial-finance", "finance").await;
    let resolved = operator(&app, &finance, resolve(id, json!(200), "汤洒了，退 2 元")).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["status"], "refunding");
    assert_eq!(resolved.body["dispute"]["resolution"]["refund_fen"], 200);
    let last = resolved.body["history"]
        .as_array()
        .expect("history")
        .last()
        .cloned();
    let last = last.expect("a change");
    assert_eq!(
        (last["event"].clone(), last["operator"].clone()),
        (json!("resolve_refund"), json!("partial-finance"))
    );
    // WeChat Pay is asked for exactly that part.
    let sim = app.wechat.pay_simulator();
    let asked = eventually(Duration::from_secs(10), || async {
        sim.refunded_fen(id).is_some()
    })
    .await;
    assert!(asked, "the partial refund reached WeChat Pay");
    assert_eq!(sim.refunded_fen(id), Some(200));
    let (_, answer) = app
        .post_xml(
            "/api/v1/wechat/refund/notify",
            refund_notify(&app, id, 200, 405),
        )
        .await;
    assert!(answer.contains("SUCCESS"), "{answer}");
    assert_eq!(app.status_of(&d.customer, id).await, "completed");

    // 200 back; of the 205 left the courier gets all but 10 % of the fee
    // part (⌊(205 − 100) × 10 %⌋ = 10): 195.
    let book = ledger(&app).await;
    assert_eq!(
        (
            class(&book, "clearing"),
            class(&book, "escrow"),
            class(&book, "platform"),
            class(&book, "courier_available")
        ),
        (-205, 0, 10, 195),
        "{book}"
    );
    let wallet = app
        .get_as(&d.courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["pending_fen"].clone(),
            wallet["available_fen"].clone()
        ),
        (json!(0), json!(195)),
        "{wallet}"
    );
    // Resolved disputes leave the queue, and a second resolution is refused.
    let queue = operator(
        &app,
        TOKEN,
        TestRequest::get().uri("/api/v1/admin/disputes"),
    )
    .await;
    assert_eq!(queue.body["orders"], json!([]));
    let again = operator(&app, &finance, resolve(id, json!(0), "再来一次")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

#[actix_web::test]
async fn nothing_back_pays_the_courier_and_everything_back_refunds_the_order() {
    let app = dispute_app!(|_: &mut lastmile::config::Settings| {});
    let kept = delivered(&app, "keep", None).await;
    let all = delivered(&app, "all", None).await;
    for d in [&kept, &all] {
        let r = app
            .post_as(
                &d.customer,
                &format!("/api/v1/orders/{}/dispute", d.id),
                Some(json!({"reason": "not_delivered"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let none = operator(&app, TOKEN, resolve(&kept.id, json!(0), "照片显示已送达")).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body["status"], "completed");
    let wallet = app
        .get_as(&kept.courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(wallet["available_fen"], 375, "{wallet}");

    let over = operator(&app, TOKEN, resolve(&all.id, json!(406), "多退")).await;
    assert_eq!(
        (over.status, over.code()),
        (StatusCode::BAD_REQUEST, "validation"),
        "{}",
        over.body
    );
    assert!(over.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("405"));
    let whole = operator(&app, TOKEN, resolve(&all.id, json!(405), "确实没送到")).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
    assert_eq!(whole.body["status"], "refunding");
    let sim = app.wechat.pay_simulator();
    let asked = eventually(Duration::from_secs(10), || async {
        sim.refunded_fen(&all.id).is_some()
    })
    .await;
    assert!(asked);
    assert_eq!(sim.refunded_fen(&all.id), Some(405));
    let (_, answer) = app
        .post_xml(
            "/api/v1/wechat/refund/notify",
            refund_notify(&app, &all.id, 405, 405),
        )
        .await;
    assert!(answer.contains("SUCCESS"), "{answer}");
    assert_eq!(app.status_of(&all.customer, &all.id).await, "refunded");
    let wallet = app
        .get_as(&all.courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["available_fen"].clone(),
            wallet["pending_fen"].clone()
        ),
        (json!(0), json!(0)),
        "{wallet}"
    );
    let book = ledger(&app).await;
    // One order paid 405 and kept it (375 courier, 30 platform); the other got it all back.
    assert_eq!(
        (class(&book, "clearing"), class(&book, "escrow")),
        (-405, 0),
        "{book}"
    );
}

#[actix_web::test]
async fn disputes_are_refused_to_others_out_of_state_twice_and_with_bad_bodies() {
    let app = dispute_app!(|_: &mut lastmile::config::Settings| {});
    let d = delivered(&app, "refusals", None).await;
    let uri = format!("/api/v1/orders/{}/dispute", d.id);
    let fine = json!({"reason": "wrong_item", "text": "不是我的"});
    // The courier may see the order but not dispute it; a stranger may not see it.
    let by_courier = app.post_as(&d.courier, &uri, Some(fine.clone())).await;
    assert_eq!(
        by_courier.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_courier.body
    );
    let (stranger, _) = app.login("refusals-stranger").await;
    let by_stranger = app.post_as(&stranger, &uri, Some(fine.clone())).await;
    assert_eq!(
        by_stranger.status,
        StatusCode::NOT_FOUND,
        "{}",
        by_stranger.body
    );
    let missing = app
        .post_as(
            &d.customer,
            "/api/v1/orders/W0000000000000000000000000000000/dispute",
            Some(fine.clone()),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let strangers_photo = app.upload_photo(&stranger).await;
    let too_many: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(app.upload_photo(&d.customer).await);
        }
        ids
    };
    for (bad, field) in [
        (json!({}), "reason"),
        (json!({"reason": "late"}), "reason"),
        (json!({"reason": 3}), "body"),
        (json!({"reason": "other", "text": "字".repeat(201)}), "text"),
        (json!({"reason": "other", "photos": too_many}), "photos"),
        (
            json!({"reason": "other", "photos": [strangers_photo]}),
            "photos",
        ),
        (json!({"reason": "other", "photos": ["nope"]}), "photos"),
    ] {
        let reply = app.post_as(&d.customer, &uri, Some(bad.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{bad}: {message}");
    }
    assert_eq!(
        app.status_of(&d.customer, &d.id).await,
        "delivered",
        "refusals change nothing"
    );

    let opened = app.post_as(&d.customer, &uri, Some(fine.clone())).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let twice = app.post_as(&d.customer, &uri, Some(fine.clone())).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    // Resolved, it cannot be opened again either.
    let none = operator(&app, TOKEN, resolve(&d.id, json!(0), "查无问题")).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    let after = app.post_as(&d.customer, &uri, Some(fine.clone())).await;
    assert_eq!(after.status, StatusCode::CONFLICT, "{}", after.body);

    // An order not yet delivered cannot be disputed.
    let (customer, customer_id) = app.login("refusals-early").await;
    let paid = app.paid_order(&customer, &customer_id).await;
    let early = app
        .post_as(
            &customer,
            &format!("/api/v1/orders/{paid}/dispute"),
            Some(fine.clone()),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    // Nor resolved when it is not in dispute; bad resolutions are named.
    let not_disputed = operator(&app, TOKEN, resolve(&paid, json!(0), "x")).await;
    assert_eq!(
        not_disputed.status,
        StatusCode::CONFLICT,
        "{}",
        not_disputed.body
    );
    for (bad, field) in [
        (json!({"note": "x"}), "refund_fen"),
        (json!({"refund_fen": -1, "note": "x"}), "refund_fen"),
        (json!({"refund_fen": 1.5, "note": "x"}), "refund_fen"),
        (json!({"refund_fen": 0}), "note"),
        (json!({"refund_fen": 0, "note": ""}), "note"),
    ] {
        let reply = operator(
            &app,
            TOKEN,
            TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{paid}/resolve"))
                .set_json(bad.clone()),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{bad}: {message}");
    }
}

#[actix_web::test]
async fn two_operators_resolving_one_dispute_settle_it_once() {
    let app = dispute_app!(|_: &mut lastmile::config::Settings| {});
    let d = delivered(&app, "race", None).await;
    let r = app
        .post_as(
            &d.customer,
            &format!("/api/v1/orders/{}/dispute", d.id),
            Some(json!({"reason": "damaged"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = add_operator(&app, "race-a", "finance").await;
    let b = add_operator(&app, "race-b", "finance").await;
    let (first, second) = futures::join!(
        operator(&app, &a, resolve(&d.id, json!(0), "不退")),
        operator(&app, &b, resolve(&d.id, json!(405), "全退")),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        first.body,
        second.body
    );
    let winner = if first.status == StatusCode::OK {
        &first
    } else {
        &second
    };
    let order = operator(
        &app,
        TOKEN,
        TestRequest::get().uri(&format!("/api/v1/admin/orders?q={}", d.id)),
    )
    .await;
    let history = order.body["orders"][0]["history"]
        .as_array()
        .expect("history")
        .clone();
    let resolutions = history
        .iter()
        .filter(|h| matches!(h["event"].as_str(), Some("resolve" | "resolve_refund")))
        .count();
    assert_eq!(resolutions, 1, "{history:?}");
    assert_eq!(order.body["orders"][0]["status"], winner.body["status"]);
    ledger(&app).await;
}

#[actix_web::test]
async fn a_delivery_photo_is_optional_unless_the_campus_requires_one() {
    let app = dispute_app!(|_: &mut lastmile::config::Settings| {});
    let plain = delivered(&app, "photo-optional", Some(json!({}))).await;
    let seen = app.get_order(&plain.customer, &plain.id).await.body;
    assert_eq!(
        (seen["status"].clone(), seen["delivery_photo"].clone()),
        (json!("delivered"), Value::Null)
    );

    let strict = dispute_app!(|s: &mut lastmile::config::Settings| {
        s.orders.delivery_photo = lastmile::config::DeliveryPhoto::Required;
    });
    let (customer, customer_id) = strict.login("photo-required-customer").await;
    let id = strict.paid_order(&customer, &customer_id).await;
    let (courier, _) = strict
        .online_courier("photo-required-courier", "cainiao-north")
        .await;
    let (stranger, _) = strict.login("photo-required-stranger").await;
    for step in ["grab", "pickup"] {
        let r = strict
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let deliver = format!("/api/v1/orders/{id}/deliver");
    let strangers = strict.upload_photo(&stranger).await;
    for body in [
        None,
        Some(json!({})),
        Some(json!({"photo": strangers})),
        Some(json!({"photo": "x"})),
    ] {
        let r = strict.post_as(&courier, &deliver, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "validation"),
            "{body:?}: {}",
            r.body
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("photo"));
    }
    assert_eq!(strict.status_of(&customer, &id).await, "picked_up");
    // A stranger still cannot open the courier's photo once it proves the order.
    let proof = strict.upload_photo(&courier).await;
    let done = strict
        .post_as(&courier, &deliver, Some(json!({"photo": proof})))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let url = done.body["delivery_photo"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(strict.get_as(&customer, &url).await.status, StatusCode::OK);
    assert_eq!(
        strict.get_as(&stranger, &url).await.status,
        StatusCode::NOT_FOUND
    );
    let admin = operator(&strict, TOKEN, TestRequest::get().uri(&url)).await;
    assert_eq!(admin.status, StatusCode::OK);
    // A photo proves one order only.
    let (c2, c2_id) = strict.login("photo-required-customer-2").await;
    let other = strict.paid_order(&c2, &c2_id).await;
    for step in ["grab", "pickup"] {
        strict
            .post_as(&courier, &format!("/api/v1/orders/{other}/{step}"), None)
            .await;
    }
    let reused = strict
        .post_as(
            &courier,
            &format!("/api/v1/orders/{other}/deliver"),
            Some(json!({"photo": proof})),
        )
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.body);
}

#[actix_web::test]
async fn an_untaken_order_is_noticed_once_then_refunded() {
    let app = spawn_app_with(|s| {
        s.dispatch.auto = false;
        s.orders.payment_timeout = Duration::from_millis(400);
        s.orders.untaken_notice_after = Duration::from_millis(300);
        s.orders.untaken_refund_after = Duration::from_millis(1500);
    })
    .await;
    let (customer, customer_id) = app.login("untaken-customer").await;
    let id = app.paid_order(&customer, &customer_id).await;
    let told = eventually(Duration::from_secs(5), || async {
        app.wechat.sent_messages().iter().any(|m| {
            m.message.template_id == "SANDBOX_TPL_UNTAKEN" && m.message.touser == customer_id
        })
    })
    .await;
    assert!(told, "{:?}", app.wechat.sent_messages());
    assert_eq!(
        app.status_of(&customer, &id).await,
        "paid",
        "told, not yet refunded"
    );
    let refunded = app
        .reaches(&customer, &id, "refunding", Duration::from_secs(5))
        .await;
    assert!(refunded, "refunded after untaken_refund_after");
    let sim = app.wechat.pay_simulator();
    let asked = eventually(Duration::from_secs(5), || async {
        sim.refunded_fen(&id).is_some()
    })
    .await;
    assert!(asked);
    let notices = app
        .wechat
        .sent_messages()
        .iter()
        .filter(|m| m.message.template_id == "SANDBOX_TPL_UNTAKEN")
        .count();
    assert_eq!(notices, 1, "told once");
    assert!(
        app.metric("lastmile_untaken_orders_total{action=\"refund\"}")
            .await
            >= 1.0
    );
}

/// POST `body` as `token` to a running binary; answers status and JSON.
async fn post_json(
    client: &reqwest::Client,
    app: &BinaryApp,
    token: &str,
    path: &str,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let reply = client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn an_acknowledged_resolution_survives_kill_9_and_its_refund_still_goes_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__COURIERS__REVIEW", "false"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (customer, id) = app
        .sandbox_paid_order(&client, "kill-dispute-customer")
        .await;
    let (courier, _) = app.login(&client, "kill-dispute-courier").await;
    for (path, body) in [
        (
            "/api/v1/couriers/me".to_owned(),
            json!({"name": "小赵", "phone": "13800138003"}),
        ),
        (
            "/api/v1/couriers/me/online".to_owned(),
            json!({"place_id": "cainiao-north"}),
        ),
        (format!("/api/v1/orders/{id}/grab"), json!({})),
        (format!("/api/v1/orders/{id}/pickup"), json!({})),
        (format!("/api/v1/orders/{id}/deliver"), json!({})),
    ] {
        let (status, body) = post_json(&client, &app, &courier, &path, body).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = post_json(
        &client,
        &app,
        &customer,
        &format!("/api/v1/orders/{id}/dispute"),
        json!({"reason": "damaged", "text": "盒子压扁了"}),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let (status, body) = post_json(
        &client,
        &app,
        TOKEN,
        &format!("/api/v1/admin/orders/{id}/resolve"),
        json!({"refund_fen": 100, "note": "退 1 元"}),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["status"], "refunding");
    app.kill9();
    app.launch().await;

    // What was acknowledged is there: the resolution, its author, the
    // money still in escrow until WeChat Pay answers.
    let order = get_json(&client, app.url(&format!("/api/v1/orders/{id}")), &customer).await;
    assert_eq!(order["status"], "refunding", "{order}");
    assert_eq!(order["dispute"]["resolution"]["refund_fen"], 100, "{order}");
    let found = get_json(
        &client,
        app.url(&format!("/api/v1/admin/orders?q={id}")),
        TOKEN,
    )
    .await;
    let last = &found["orders"][0]["history"]
        .as_array()
        .expect("history")
        .clone();
    let last = last.last().expect("a change");
    assert_eq!(
        (last["event"].clone(), last["operator"].clone()),
        (json!("resolve_refund"), json!("admin")),
        "{last}"
    );
    let check = get_json(&client, app.url("/api/v1/admin/ledger/check"), TOKEN).await;
    assert_eq!(
        (check["balanced"].clone(), class(&check, "escrow")),
        (json!(true), 300),
        "{check}"
    );
    // The sandbox is part of the killed process and forgot the trade;
    // WeChat Pay would not: the test answers for it, as its notify would.
    let notify = refund_notify_as(
        (
            "wx0000000000sandbox",
            "1900000109",
            "sandboxsandboxsandboxsandbox0000",
        ),
        &id,
        100,
        300,
    );
    let answer = client
        .post(app.url("/api/v1/wechat/refund/notify"))
        .header("Content-Type", "text/xml")
        .body(notify)
        .send()
        .await
        .expect("notify")
        .text()
        .await
        .expect("answer");
    assert!(answer.contains("SUCCESS"), "{answer}");

    let settled = eventually(Duration::from_secs(20), || {
        let url = app.url(&format!("/api/v1/orders/{id}"));
        let (client, customer) = (&client, &customer);
        async move { get_json(client, url, customer).await["status"] == "completed" }
    })
    .await;
    let order = get_json(&client, app.url(&format!("/api/v1/orders/{id}")), &customer).await;
    assert!(
        settled,
        "the partial refund did not finish after the restart: {order}"
    );
    let order = get_json(&client, app.url(&format!("/api/v1/orders/{id}")), &customer).await;
    assert_eq!(order["dispute"]["resolution"]["refund_fen"], 100, "{order}");
    assert_eq!(order["dispute"]["text"], "盒子压扁了");
    let check = get_json(&client, app.url("/api/v1/admin/ledger/check"), TOKEN).await;
    assert_eq!(check["balanced"], true, "{check}");
    // 300 paid, 100 back; of 200 the courier gets 180, the platform 20.
    assert_eq!(
        (
            class(&check, "clearing"),
            class(&check, "platform"),
            class(&check, "courier_available")
        ),
        (-200, 20, 180),
        "{check}"
    );
    app.kill9();
}

#[actix_web::test]
async fn an_untaken_order_is_refunded_across_a_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__DISPATCH__AUTO", "false"),
            ("LASTMILE__ORDERS__UNTAKEN_NOTICE_AFTER", "1s"),
            ("LASTMILE__ORDERS__UNTAKEN_REFUND_AFTER", "3s"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (customer, id) = app.sandbox_paid_order(&client, "kill-untaken").await;
    app.kill9();
    app.launch().await;
    // The timers start again from the stored payment time: told, then
    // refunded (the sandbox, killed with the process, forgot the trade, so
    // the refund itself is not answered here; the in-process test sees it).
    let refunded = eventually(Duration::from_secs(20), || {
        let url = app.url(&format!("/api/v1/orders/{id}"));
        let (client, customer) = (&client, &customer);
        async move { get_json(client, url, customer).await["status"] == "refunding" }
    })
    .await;
    let order = get_json(&client, app.url(&format!("/api/v1/orders/{id}")), &customer).await;
    assert!(
        refunded,
        "the untaken order was not refunded after the restart: {order}"
    );
    let sent = get_json(&client, app.url("/sandbox/messages"), "").await;
    let notices = sent["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["template_id"] == "SANDBOX_TPL_UNTAKEN")
        .count();
    assert_eq!(notices, 1, "told once: {sent}");
    app.kill9();
}
