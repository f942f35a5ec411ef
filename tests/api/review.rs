//! Courier review: applications with a student number and a card photo,
//! operators approving, rejecting, suspending and reinstating — and a
//! suspended courier losing their untouched tasks at once, also when the
//! suspension races a grab or the process is killed right after it.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with, BinaryApp};

const TOKEN: &str = "operator-secret-token";

fn admin(req: TestRequest) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {TOKEN}")))
}

#[actix_web::test]
async fn an_applicant_waits_for_an_operator_and_works_once_approved() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.couriers.review = true;
    })
    .await;
    let (token, openid) = app.login("applicant").await;
    let photo = app.upload_photo(&token).await;
    let (other, _) = app.login("someone-else").await;
    let others_photo = app.upload_photo(&other).await;

    let base = json!({"name": "小李", "phone": "13800138000"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        body
    };
    for (body, field) in [
        (with(json!({"card_photo": photo})), "student_no"),
        (with(json!({"student_no": "2023001"})), "card_photo"),
        (
            with(json!({"student_no": "2023001", "card_photo": others_photo})),
            "card_photo",
        ),
        (
            with(json!({"student_no": "2023001", "card_photo": "not-an-id"})),
            "card_photo",
        ),
        (
            with(json!({"student_no": "", "card_photo": photo})),
            "student_no",
        ),
    ] {
        let reply = app.post_as(&token, "/api/v1/couriers/me", Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{field}: {message}");
    }

    let applied = app
        .post_as(
            &token,
            "/api/v1/couriers/me",
            Some(with(json!({"student_no": "2023001", "card_photo": photo}))),
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
    assert_eq!(applied.body["review"], "pending");
    let online = json!({"place_id": "dorm-1"});
    let refused = app
        .post_as(&token, "/api/v1/couriers/me/online", Some(online.clone()))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("pending")));
    assert_eq!(
        app.get_as(&token, "/api/v1/orders/open?near=dorm-1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The queue shows the application, and the operator sees the card.
    let queue = app
        .send(admin(
            TestRequest::get().uri("/api/v1/admin/couriers?review=pending"),
        ))
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let listed = &queue.body["couriers"][0];
    assert_eq!(
        (listed["openid"].as_str(), listed["student_no"].as_str()),
        (Some(openid.as_str()), Some("2023001"))
    );
    assert_eq!(listed["card_photo"].as_str(), Some(photo.as_str()));
    assert_eq!(app.photo(Some(TOKEN), &photo).await.0, StatusCode::OK);
    assert_eq!(
        app.photo(Some(&other), &photo).await.0,
        StatusCode::NOT_FOUND
    );

    let approve = format!("/api/v1/admin/couriers/{openid}/approve");
    let approved = app.send(admin(TestRequest::post().uri(&approve))).await;
    assert_eq!(
        (approved.status, approved.body["review"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let online_now = app
        .post_as(&token, "/api/v1/couriers/me/online", Some(online))
        .await;
    assert_eq!(online_now.status, StatusCode::OK, "{}", online_now.body);
    assert_eq!(online_now.body["online"], true);
    let empty = app
        .send(admin(
            TestRequest::get().uri("/api/v1/admin/couriers?review=pending"),
        ))
        .await;
    assert_eq!(empty.body["couriers"], json!([]));
    let bad = app
        .send(admin(
            TestRequest::get().uri("/api/v1/admin/couriers?review=maybe"),
        ))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "validation")
    );
    // Without the operator's token none of it answers.
    let (user, _) = app.login("nosy").await;
    assert_eq!(
        app.post_as(&user, &approve, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_rejected_applicant_sees_why_and_may_apply_again() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.couriers.review = true;
    })
    .await;
    let (token, openid) = app.login("blurry").await;
    let photo = app.upload_photo(&token).await;
    let body =
        json!({"name": "小周", "phone": "13800138001", "student_no": "9", "card_photo": photo});
    app.post_as(&token, "/api/v1/couriers/me", Some(body.clone()))
        .await;
    let reject = format!("/api/v1/admin/couriers/{openid}/reject");
    let no_reason = app
        .send(admin(TestRequest::post().uri(&reject).set_json(json!({}))))
        .await;
    assert_eq!(
        (no_reason.status, no_reason.code()),
        (StatusCode::BAD_REQUEST, "validation")
    );
    let rejected = app
        .send(admin(
            TestRequest::post()
                .uri(&reject)
                .set_json(json!({"reason": "学生证看不清"})),
        ))
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    assert_eq!(
        (
            rejected.body["review"].as_str(),
            rejected.body["reason"].as_str()
        ),
        (Some("rejected"), Some("学生证看不清"))
    );
    let refused = app
        .post_as(
            &token,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "dorm-1"})),
        )
        .await;
    assert!(refused.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("rejected")));
    let again = app.post_as(&token, "/api/v1/couriers/me", Some(body)).await;
    assert_eq!(
        (again.body["review"].as_str(), again.body["reason"].clone()),
        (Some("pending"), Value::Null)
    );
    let reinstate = format!("/api/v1/admin/couriers/{openid}/reinstate");
    assert_eq!(
        app.send(admin(TestRequest::post().uri(&reinstate)))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let unknown = app
        .send(admin(
            TestRequest::post().uri("/api/v1/admin/couriers/nobody/approve"),
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_suspended_courier_goes_offline_and_loses_untouched_tasks_at_once() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
    })
    .await;
    let (customer, customer_id) = app.login("hungry").await;
    let taken = app.paid_order(&customer, &customer_id).await;
    let picked = app.paid_order(&customer, &customer_id).await;
    let (courier, openid) = app.online_courier("late-again", "dorm-1").await;
    for id in [&taken, &picked] {
        let grab = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/grab"), None)
            .await;
        assert_eq!(grab.status, StatusCode::OK, "{}", grab.body);
    }
    let pickup = app
        .post_as(&courier, &format!("/api/v1/orders/{picked}/pickup"), None)
        .await;
    assert_eq!(pickup.status, StatusCode::OK);

    let suspend = format!("/api/v1/admin/couriers/{openid}/suspend");
    for bad in [
        json!({}),
        json!({"reason": "x", "until": "yesterday"}),
        json!({"reason": "x", "until": "2020-01-01T00:00:00Z"}),
    ] {
        let reply = app
            .send(admin(TestRequest::post().uri(&suspend).set_json(bad)))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation"),
            "{}",
            reply.body
        );
    }
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let suspended = app
        .send(admin(
            TestRequest::post()
                .uri(&suspend)
                .set_json(json!({"reason": "多次超时", "until": until})),
        ))
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(
        (
            suspended.body["review"].as_str(),
            suspended.body["online"].as_bool()
        ),
        (Some("suspended"), Some(false))
    );
    assert!(suspended.body["suspended_until"].is_string());
    // Before the answer: the untouched task is back in the pool, the one
    // in hand stays with them to deliver.
    let back = app.get_order(&customer, &taken).await;
    assert_eq!(
        (back.body["status"].as_str(), back.body["courier"].clone()),
        (Some("paid"), Value::Null)
    );
    assert_eq!(app.status_of(&customer, &picked).await, "picked_up");
    let refused = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "dorm-1"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("suspended")));
    let deliver = app
        .post_as(&courier, &format!("/api/v1/orders/{picked}/deliver"), None)
        .await;
    assert_eq!(
        deliver.status,
        StatusCode::OK,
        "what is in hand is still delivered"
    );
    let approve = format!("/api/v1/admin/couriers/{openid}/approve");
    assert_eq!(
        app.send(admin(TestRequest::post().uri(&approve)))
            .await
            .status,
        StatusCode::CONFLICT
    );

    let reinstate = format!("/api/v1/admin/couriers/{openid}/reinstate");
    let reinstated = app.send(admin(TestRequest::post().uri(&reinstate))).await;
    assert_eq!(reinstated.body["review"], "approved");
    let online = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "dorm-1"})),
        )
        .await;
    assert_eq!(online.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_suspension_racing_grabs_leaves_the_courier_nothing_untouched() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
        s.dispatch.max_tasks = 3;
    })
    .await;
    let (customer, customer_id) = app.login("racer-customer").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.paid_order(&customer, &customer_id).await);
    }
    let (courier, openid) = app.online_courier("racer", "dorm-1").await;
    let suspend = format!("/api/v1/admin/couriers/{openid}/suspend");
    let grabs = ids.iter().map(|id| {
        let uri = format!("/api/v1/orders/{id}/grab");
        let courier = courier.clone();
        let app = &app;
        async move { app.post_as(&courier, &uri, None).await.status }
    });
    let suspension = app.send(admin(
        TestRequest::post()
            .uri(&suspend)
            .set_json(json!({"reason": "race"})),
    ));
    let (statuses, suspended) = futures::join!(futures::future::join_all(grabs), suspension);
    assert_eq!(suspended.status, StatusCode::OK);
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::FORBIDDEN),
        "{statuses:?}"
    );
    // Whatever a grab won before or after the suspension goes back.
    let all_back = eventually(Duration::from_secs(10), || async {
        let mut back = true;
        for id in &ids {
            back &= app.status_of(&customer, id).await == "paid";
        }
        back
    })
    .await;
    assert!(
        all_back,
        "a suspended courier kept a task they had not picked up"
    );
}

#[actix_web::test]
async fn an_acknowledged_suspension_survives_kill_9_and_its_tasks_still_go_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", TOKEN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (customer, id) = app.sandbox_paid_order(&client, "kill-customer").await;
    let (courier, openid) = app.login(&client, "kill-courier").await;
    let base = app.url("");
    let post = |path: String, token: String, body: Value| {
        let req = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move { req.send().await.expect("request") }
    };

    post(
        "/api/v1/couriers/me".into(),
        courier.clone(),
        json!({"name": "小吴", "phone": "13800138002"}),
    )
    .await;
    post(
        "/api/v1/couriers/me/online".into(),
        courier.clone(),
        json!({"place_id": "dorm-1"}),
    )
    .await;
    let grab = post(
        format!("/api/v1/orders/{id}/grab"),
        courier.clone(),
        json!({}),
    )
    .await;
    assert_eq!(grab.status(), reqwest::StatusCode::OK);
    let suspended = post(
        format!("/api/v1/admin/couriers/{openid}/suspend"),
        TOKEN.into(),
        json!({"reason": "kill -9"}),
    )
    .await;
    assert_eq!(suspended.status(), reqwest::StatusCode::OK);
    let (_, blocked_id) = app.login(&client, "killblocked").await;
    let blocked = post(
        format!("/api/v1/admin/users/{blocked_id}/block"),
        TOKEN.into(),
        json!({"reason": "刷单"}),
    )
    .await;
    assert_eq!(blocked.status(), reqwest::StatusCode::OK);
    app.kill9();
    app.launch().await;
    // The block outlived the process too.
    let (blocked_user, _) = app.login(&client, "killblocked").await;
    let order = post(
        "/api/v1/orders".into(),
        blocked_user,
        crate::helpers::order_body(),
    )
    .await;
    assert_eq!(order.status(), reqwest::StatusCode::FORBIDDEN);
    let online = post(
        "/api/v1/couriers/me/online".into(),
        courier.clone(),
        json!({"place_id": "dorm-1"}),
    )
    .await;
    assert_eq!(online.status(), reqwest::StatusCode::FORBIDDEN);
    let back = eventually(Duration::from_secs(15), || {
        let req = client
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(&customer);
        async move {
            let order: Value = req.send().await.expect("get").json().await.expect("json");
            order["status"] == "paid"
        }
    })
    .await;
    assert!(
        back,
        "the suspended courier's task did not go back after the restart"
    );
    app.kill9();
}

#[actix_web::test]
async fn a_blocked_customer_cannot_order_until_unblocked() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (token, openid) = app.login("troublemaker").await;
    let before = app
        .create_order(&token, &crate::helpers::order_body())
        .await;
    assert_eq!(before.status, StatusCode::CREATED);
    let block = format!("/api/v1/admin/users/{openid}/block");
    let no_reason = app
        .send(admin(TestRequest::post().uri(&block).set_json(json!({}))))
        .await;
    assert_eq!(
        (no_reason.status, no_reason.code()),
        (StatusCode::BAD_REQUEST, "validation")
    );
    let (user, _) = app.login("not-an-operator").await;
    let refused = app
        .post_as(&user, &block, Some(json!({"reason": "x"})))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let blocked = app
        .send(admin(
            TestRequest::post()
                .uri(&block)
                .set_json(json!({"reason": "恶意下单"})),
        ))
        .await;
    assert_eq!(
        (blocked.status, blocked.body["blocked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let after = app
        .create_order(&token, &crate::helpers::order_body())
        .await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert!(after.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("恶意下单")));
    // What they already have is still theirs to see.
    let id = before.body["id"].as_str().expect("id");
    assert_eq!(app.get_order(&token, id).await.status, StatusCode::OK);
    let unblock = format!("/api/v1/admin/users/{openid}/unblock");
    let lifted = app.send(admin(TestRequest::post().uri(&unblock))).await;
    assert_eq!(lifted.body["blocked"], false);
    assert_eq!(
        app.create_order(&token, &crate::helpers::order_body())
            .await
            .status,
        StatusCode::CREATED
    );
}
