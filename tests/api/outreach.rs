//! Form ids, subscribe grants and the paid prepay_id, in process.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::domain::{now_utc, FormId, OpenId, TemplateId};
use lastmile_actors::wechat::{SignType, WeChat};
use serde_json::{json, Value};

use crate::helpers::{order_body, spawn_app, spawn_app_with};

fn form_ids(list: &[&str]) -> Vec<FormId> {
    list.iter()
        .map(|s| FormId::parse(s, "f").expect("valid"))
        .collect()
}

#[actix_web::test]
async fn form_ids_are_validated_counted_and_the_mock_one_dropped() {
    let app = spawn_app().await;
    let (token, _) = app.login("former").await;
    let post = |body: Value| {
        TestRequest::post()
            .uri("/api/v1/form-ids")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .set_json(body)
    };
    let ok = app
        .send(post(
            json!({"form_ids": ["f1", "f2", "the formId is a mock one", "f2"]}),
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, json!({"accepted": 2}));

    let many: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
    let cases = [
        (json!({"form_ids": many}), "validation", "101 ids"),
        (
            json!({"form_ids": ["ok", "x".repeat(65)]}),
            "validation",
            "65 characters",
        ),
        (json!({"form_ids": [""]}), "validation", "empty id"),
        (json!({}), "validation", "missing list"),
        (json!({"form_ids": "f1"}), "bad_request", "not a list"),
    ];
    for (body, code, why) in cases {
        let reply = app.send(post(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(reply.code(), code, "{why}");
    }
    let named = app
        .send(post(json!({"form_ids": ["ok", "x".repeat(65)]})))
        .await;
    assert!(named.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("form_ids[1]"));
}

#[actix_web::test]
async fn the_pool_serves_oldest_first_once_each_and_skips_expired() {
    let app = spawn_app().await;
    let (_, openid) = app.login("pooled").await;
    let user = OpenId::parse(&openid).expect("openid");
    let pool = &app.state.formids;
    let now = now_utc();
    let day = Duration::from_secs(24 * 3600);
    pool.add_form_ids(user.clone(), form_ids(&["expired"]), now - day * 8)
        .await
        .expect("add");
    pool.add_form_ids(user.clone(), form_ids(&["newer"]), now)
        .await
        .expect("add");
    pool.add_form_ids(user.clone(), form_ids(&["older"]), now - day * 2)
        .await
        .expect("add");
    let take = || pool.take_form_id(user.clone(), now_utc());
    assert_eq!(take().await.expect("take").as_deref(), Some("older"));
    assert_eq!(take().await.expect("take").as_deref(), Some("newer"));
    assert_eq!(
        take().await.expect("take"),
        None,
        "each used once; the expired one never"
    );
}

#[actix_web::test]
async fn each_subscribe_grant_allows_one_message() {
    let app = spawn_app_with(|s| {
        s.messages.template_assigned = "TPL_assigned".into();
        s.messages.template_delivered = "TPL_delivered".into();
    })
    .await;
    let (token, openid) = app.login("subscriber").await;
    let reply = app
        .send(
            TestRequest::post()
                .uri("/api/v1/subscriptions")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .set_json(
                    json!({"template_ids": ["TPL_assigned", "TPL_assigned", "TPL_delivered", "TPL_not_ours"]}),
                ),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({"granted": 3}),
        "only the templates the service sends are counted"
    );
    let user = OpenId::parse(&openid).expect("openid");
    let tpl = TemplateId::parse("TPL_assigned", "t").expect("tpl");
    let pool = &app.state.formids;
    assert!(pool
        .take_grant(user.clone(), tpl.clone())
        .await
        .expect("take"));
    assert!(pool
        .take_grant(user.clone(), tpl.clone())
        .await
        .expect("take"));
    assert!(
        !pool.take_grant(user.clone(), tpl).await.expect("take"),
        "two grants, two messages"
    );
}

#[actix_web::test]
async fn a_paid_orders_prepay_id_enters_the_pool_with_three_uses_never_before() {
    let app = spawn_app().await;
    let (token, openid) = app.login("prepay-pool").await;
    let user = OpenId::parse(&openid).expect("openid");
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let params = app.pay_order(&token, &id).await.body;
    let prepay_id = params["package"]
        .as_str()
        .and_then(|p| p.strip_prefix("prepay_id="))
        .expect("prepay")
        .to_owned();
    let pool = &app.state.formids;
    assert_eq!(
        pool.take_form_id(user.clone(), now_utc())
            .await
            .expect("take"),
        None,
        "not before payment"
    );

    let signer = app.wechat.pay().signer().clone();
    let notify = crate::helpers::signed_xml(
        crate::helpers::notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300),
        signer.api_key.expose(),
        SignType::Md5,
    );
    let (_, answer) = app.post_xml("/api/v1/wechat/pay/notify", notify).await;
    assert!(
        answer.contains("SUCCESS") && !answer.contains("FAIL"),
        "{answer}"
    );

    for _ in 0..3 {
        assert_eq!(
            pool.take_form_id(user.clone(), now_utc())
                .await
                .expect("take"),
            Some(prepay_id.clone())
        );
    }
    assert_eq!(
        pool.take_form_id(user, now_utc()).await.expect("take"),
        None,
        "three uses only"
    );
}

#[actix_web::test]
async fn the_pool_survives_a_restart() {
    let app = spawn_app().await;
    let (_, openid) = app.login("persistent-pool").await;
    let user = OpenId::parse(&openid).expect("openid");
    app.state
        .formids
        .add_form_ids(user.clone(), form_ids(&["kept"]), now_utc())
        .await
        .expect("add");
    // A second pool actor on the same database stands for the restarted process.
    let restarted =
        lastmile_actors::notify::formid::FormIds::start(app.store.formid_repo(), Vec::new());
    assert_eq!(
        restarted
            .take_form_id(user.clone(), now_utc())
            .await
            .expect("take")
            .as_deref(),
        Some("kept")
    );
    assert_eq!(
        app.state
            .formids
            .take_form_id(user, now_utc())
            .await
            .expect("take"),
        None,
        "used once"
    );
}

#[actix_web::test]
async fn a_user_pools_at_most_200_form_ids_the_newest_kept() {
    let app = spawn_app().await;
    let (token, openid) = app.login("hoarder").await;
    for batch in 0..3 {
        let ids: Vec<String> = (0..100).map(|i| format!("b{batch}-{i}")).collect();
        let reply = app
            .post_as(&token, "/api/v1/form-ids", Some(json!({ "form_ids": ids })))
            .await;
        assert_eq!(reply.body, json!({"accepted": 100}), "batch {batch}");
    }
    let user = OpenId::parse(&openid).expect("openid");

    assert_eq!(app.store.formid_repo().pooled_count(&user), 200);
    let first = app
        .state
        .formids
        .take_form_id(user, now_utc())
        .await
        .expect("take");
    assert_eq!(
        first.as_deref(),
        Some("b1-0"),
        "the oldest batch was dropped"
    );
}
