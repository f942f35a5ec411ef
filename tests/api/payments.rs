//! WeChat Pay in process: prepay, notify verification, timeouts, refunds.

use std::time::Duration;

use actix_web::http::StatusCode;
use futures::future::join_all;
use lastmile_actors::wechat::pay;
use lastmile_actors::wechat::{SignType, WeChat};

use crate::helpers::{
    eventually, notify_fields, order_body, signed_xml, spawn_app, spawn_app_with,
};

const SUCCESS: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

#[actix_web::test]
async fn pay_returns_request_payment_params_and_reuses_the_prepay() {
    let app = spawn_app().await;
    let (token, _) = app.login("payer").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let calls = (0..5).map(|_| app.pay_order(&token, &id));
    let replies = join_all(calls).await;
    let first = &replies[0];
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for key in ["timeStamp", "nonceStr", "package", "signType", "paySign"] {
        assert!(
            first.body[key].is_string(),
            "{key} must be a string: {}",
            first.body
        );
    }
    assert!(first.body["package"]
        .as_str()
        .is_some_and(|p| p.starts_with("prepay_id=")));
    assert_eq!(first.body["signType"], "MD5");
    for r in &replies {
        assert_eq!(r.body, first.body, "every pay call answers the same prepay");
    }
    assert_eq!(
        app.wechat.pay_simulator().calls("/pay/unifiedorder"),
        1,
        "one unifiedorder per order"
    );

    // paySign covers appId, timeStamp, nonceStr, package, signType.
    let signer = app.wechat.pay().signer().clone();
    let fields = pay::fields([
        ("appId", signer.appid.clone()),
        (
            "timeStamp",
            first.body["timeStamp"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "nonceStr",
            first.body["nonceStr"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "package",
            first.body["package"].as_str().unwrap_or("").to_owned(),
        ),
        ("signType", "MD5".to_owned()),
    ]);
    assert_eq!(
        first.body["paySign"],
        pay::sign(&fields, signer.api_key.expose(), SignType::Md5)
    );
}

#[actix_web::test]
async fn only_the_customer_pays_and_only_unpaid_orders() {
    let app = spawn_app().await;
    let (alice, _) = app.login("alice-pay").await;
    let (bob, _) = app.login("bob-pay").await;
    let id = app.create_order(&alice, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.pay_order(&bob, &id).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.cancel_order(&alice, &id).await.status, StatusCode::OK);
    let paying_cancelled = app.pay_order(&alice, &id).await;
    assert_eq!(paying_cancelled.status, StatusCode::CONFLICT);
    assert_eq!(app.wechat.pay_simulator().calls("/pay/unifiedorder"), 0);
}

#[actix_web::test]
async fn a_verified_notify_pays_once_and_repeats_change_nothing() {
    let app = spawn_app().await;
    let (token, openid) = app.login("notified").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.pay_order(&token, &id).await.status, StatusCode::OK);
    let signer = app.wechat.pay().signer().clone();
    let xml = signed_xml(
        notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300),
        signer.api_key.expose(),
        SignType::Md5,
    );

    let (status, body) = app.post_xml("/api/v1/wechat/pay/notify", xml.clone()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, SUCCESS));
    let paid = app.get_order(&token, &id).await.body;
    assert_eq!(paid["status"], "paid");

    let repeats = (0..10).map(|_| app.post_xml("/api/v1/wechat/pay/notify", xml.clone()));
    for (status, body) in join_all(repeats).await {
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, SUCCESS),
            "a repeat is answered SUCCESS"
        );
    }
    assert_eq!(
        app.get_order(&token, &id).await.body,
        paid,
        "repeats store no change"
    );
}

#[actix_web::test]
async fn ten_concurrent_identical_notifies_pay_exactly_once() {
    let app = spawn_app().await;
    let (token, openid) = app.login("racer").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let signer = app.wechat.pay().signer().clone();
    let xml = signed_xml(
        notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300),
        signer.api_key.expose(),
        SignType::Md5,
    );
    let all = (0..10).map(|_| app.post_xml("/api/v1/wechat/pay/notify", xml.clone()));
    let answers = join_all(all).await;
    assert!(answers
        .iter()
        .all(|(s, b)| *s == StatusCode::OK && b == SUCCESS));
    let order = app.get_order(&token, &id).await.body;
    assert_eq!(order["status"], "paid");
    // Exactly one transition: one more identical notify leaves updated_at alone.
    app.post_xml("/api/v1/wechat/pay/notify", xml).await;
    assert_eq!(
        app.get_order(&token, &id).await.body["updated_at"],
        order["updated_at"]
    );
}

#[actix_web::test]
async fn forged_mismatched_and_malformed_notifies_change_nothing() {
    let app = spawn_app().await;
    let (token, openid) = app.login("victim").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();
    let good = || notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300);
    let with = |k: &str, v: &str| {
        let mut f = good();
        f.insert(k.into(), v.into());
        signed_xml(f, &key, SignType::Md5)
    };
    let mut forged = good();
    forged.insert("sign".into(), "0123456789ABCDEF0123456789ABCDEF".into());
    let full = signed_xml(good(), &key, SignType::Md5);
    let cases: Vec<(String, &str)> = vec![
        (pay::to_xml(&good()), "missing sign"),
        (pay::to_xml(&forged), "forged sign"),
        (
            signed_xml(good(), "wrong-key-wrong-key-wrong-key-00", SignType::Md5),
            "signed with another key",
        ),
        (with("total_fee", "1"), "wrong total_fee"),
        (with("appid", "wx_someone_else"), "wrong appid"),
        (with("mch_id", "1234567890"), "wrong mch_id"),
        (
            with(
                "out_trade_no",
                "NOSUCHORDER0000000000000000000000"[..32].as_ref(),
            ),
            "unknown out_trade_no",
        ),
        (with("result_code", "FAIL"), "failed payment"),
        (full[..full.len() / 2].to_owned(), "truncated XML"),
        ("not xml at all".to_owned(), "garbage"),
    ];
    for (xml, why) in cases {
        let (status, body) = app.post_xml("/api/v1/wechat/pay/notify", xml).await;
        assert!(
            status == StatusCode::OK || status.is_client_error(),
            "{why}: {status}"
        );
        assert!(body.contains("FAIL"), "{why}: {body}");
        assert_eq!(
            app.status_of(&token, &id).await,
            "awaiting_payment",
            "{why} changed the order"
        );
    }
    let (status, body) = app
        .post_xml("/api/v1/wechat/pay/notify", vec![b'x'; 1024 * 1024])
        .await;
    assert!(
        status.is_client_error() || body.contains("FAIL"),
        "1 MB body: {status}"
    );
    assert_eq!(app.status_of(&token, &id).await, "awaiting_payment");
}

#[actix_web::test]
async fn coupon_fields_and_hmac_notifies_verify() {
    let app = spawn_app().await;
    let (token, openid) = app.login("couponer").await;
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();

    let a = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &a).await;
    let mut coupon = notify_fields(&signer.appid, &signer.mch_id, &a, &openid, 300);
    coupon.insert("cash_fee".into(), "200".into());
    coupon.insert("coupon_fee".into(), "100".into());
    coupon.insert("coupon_count".into(), "1".into());
    coupon.insert("coupon_fee_0".into(), "100".into());
    coupon.insert("coupon_id_0".into(), "10000".into());
    coupon.insert("attach".into(), String::new());
    let (_, body) = app
        .post_xml(
            "/api/v1/wechat/pay/notify",
            signed_xml(coupon, &key, SignType::Md5),
        )
        .await;
    assert_eq!(body, SUCCESS);
    assert_eq!(app.status_of(&token, &a).await, "paid");

    let b = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &b).await;
    let mut hmac = notify_fields(&signer.appid, &signer.mch_id, &b, &openid, 300);
    hmac.insert("sign_type".into(), "HMAC-SHA256".into());
    let (_, body) = app
        .post_xml(
            "/api/v1/wechat/pay/notify",
            signed_xml(hmac, &key, SignType::HmacSha256),
        )
        .await;
    assert_eq!(
        body, SUCCESS,
        "config says MD5; the notify's own sign_type wins"
    );
    assert_eq!(app.status_of(&token, &b).await, "paid");
}

#[actix_web::test]
async fn lost_notify_is_found_by_query_at_the_timeout() {
    let app = spawn_app_with(|s| s.orders.payment_timeout = Duration::from_millis(400)).await;
    let (token, _) = app.login("lost-notify").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&id).await.expect("sandbox pays without notifying");
    let settled = eventually(Duration::from_secs(10), || {
        let (app, token, id) = (&app, &token, &id);
        async move { app.status_of(token, id).await != "awaiting_payment" }
    })
    .await;
    assert!(settled);
    assert_eq!(
        app.status_of(&token, &id).await,
        "paid",
        "query must find the payment, not cancel"
    );
    assert!(sim.calls("/pay/orderquery") >= 1);
    assert_eq!(sim.calls("/pay/closeorder"), 0);
}

#[actix_web::test]
async fn unpaid_prepaid_order_is_closed_then_cancelled() {
    let app = spawn_app_with(|s| s.orders.payment_timeout = Duration::from_millis(300)).await;
    let (token, _) = app.login("no-show").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let cancelled = eventually(Duration::from_secs(10), || {
        let (app, token, id) = (&app, &token, &id);
        async move { app.status_of(token, id).await == "cancelled" }
    })
    .await;
    assert!(cancelled);
    assert_eq!(
        app.wechat.pay_simulator().calls("/pay/closeorder"),
        1,
        "the prepay is closed first"
    );
}

pub(crate) fn refund_notify(appid: &str, mch_id: &str, key: &str, order_id: &str) -> String {
    refund_notify_with(appid, mch_id, key, order_id, &[])
}

/// A refund notify whose `req_info` has `changes` applied to a correct one.
fn refund_notify_with(
    appid: &str,
    mch_id: &str,
    key: &str,
    order_id: &str,
    changes: &[(&str, &str)],
) -> String {
    let mut info = pay::fields([
        ("out_trade_no", order_id.to_owned()),
        ("out_refund_no", format!("R{order_id}")),
        ("refund_id", "50300000000000000000000000001".to_owned()),
        ("total_fee", "300".to_owned()),
        ("refund_fee", "300".to_owned()),
        ("refund_status", "SUCCESS".to_owned()),
        ("success_time", "2026-11-25 12:00:00".to_owned()),
    ]);
    for (k, v) in changes {
        info.insert((*k).to_owned(), (*v).to_owned());
    }
    pay::to_xml(&pay::fields([
        ("return_code", "SUCCESS".to_owned()),
        ("appid", appid.to_owned()),
        ("mch_id", mch_id.to_owned()),
        ("nonce_str", "TeqClE3i0mvn3DrK".to_owned()),
        ("req_info", pay::encrypt_req_info(&info, key)),
    ]))
}

#[actix_web::test]
async fn cancelling_a_paid_order_refunds_it() {
    let app = spawn_app().await;
    let (token, openid) = app.login("refundee").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&id).await.expect("paid at the sandbox");
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();
    let xml = signed_xml(
        notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300),
        &key,
        SignType::Md5,
    );
    assert_eq!(
        app.post_xml("/api/v1/wechat/pay/notify", xml).await.1,
        SUCCESS
    );

    let cancelled = app.cancel_order(&token, &id).await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["status"], "refunding");
    let requested = eventually(Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(requested, "the refund must reach WeChat Pay");
    assert_eq!(sim.refunds(), vec![(id.clone(), format!("R{id}"))]);

    // A FAIL names no signed content: one without our appid and mch_id is
    // anyone's, refused and never recorded.
    let anonymous_fail = pay::to_xml(&pay::fields([
        ("return_code", "FAIL".to_owned()),
        ("return_msg", "系统繁忙".to_owned()),
    ]));
    let refunds_failed = "lastmile_refund_notifies_total{outcome=\"return_fail\"}";
    let before = app.metric(refunds_failed).await;
    assert!(app
        .post_xml("/api/v1/wechat/refund/notify", anonymous_fail)
        .await
        .1
        .contains("appid or mch_id mismatch"));
    let fail_notify = pay::to_xml(&pay::fields([
        ("return_code", "FAIL".to_owned()),
        ("return_msg", "系统繁忙".to_owned()),
        ("appid", signer.appid.clone()),
        ("mch_id", signer.mch_id.clone()),
    ]));
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", fail_notify)
            .await
            .1,
        SUCCESS,
        "recorded, not decrypted"
    );
    assert!(
        app.metric(refunds_failed).await > before,
        "only ours is counted"
    );
    assert_eq!(app.status_of(&token, &id).await, "refunding");

    let forged = refund_notify(&signer.appid, &signer.mch_id, "another-key", &id);
    assert!(app
        .post_xml("/api/v1/wechat/refund/notify", forged)
        .await
        .1
        .contains("FAIL"));
    assert_eq!(app.status_of(&token, &id).await, "refunding");

    let notify = refund_notify(&signer.appid, &signer.mch_id, &key, &id);
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", notify).await.1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refunded");
    assert_eq!(
        app.cancel_order(&token, &id).await.status,
        StatusCode::CONFLICT
    );
}

#[actix_web::test]
async fn a_payment_after_the_timeout_cancel_is_refunded_never_revived() {
    let app = spawn_app_with(|s| s.orders.payment_timeout = Duration::from_millis(300)).await;
    let (token, openid) = app.login("late-payer").await;
    let id = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay_order(&token, &id).await;
    let cancelled = eventually(Duration::from_secs(10), || {
        let (app, token, id) = (&app, &token, &id);
        async move { app.status_of(token, id).await == "cancelled" }
    })
    .await;
    assert!(cancelled);

    // The customer paid in the instant the trade was closed.
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&id)
        .await
        .expect("the sandbox takes the late payment");
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();
    let xml = signed_xml(
        notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300),
        &key,
        SignType::Md5,
    );
    assert_eq!(
        app.post_xml("/api/v1/wechat/pay/notify", xml).await.1,
        SUCCESS
    );
    assert_eq!(
        app.status_of(&token, &id).await,
        "refunding",
        "never paid again"
    );
    let requested = eventually(Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(requested, "the late payment is refunded at WeChat Pay");

    let notify = refund_notify(&signer.appid, &signer.mch_id, &key, &id);
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", notify).await.1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refunded");
}

#[actix_web::test]
async fn duplicated_and_reordered_notifies_over_http_pay_each_order_once() {
    // A real server on a free port, so the simulator's notifies go over HTTP.
    let dir = tempfile::tempdir().expect("tmp");
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.wechat.notify_base = String::new();
    let sandbox = std::sync::Arc::new(lastmile_actors::wechat::SandboxWeChat::new(
        &settings.wechat,
    ));
    let app = lastmile::startup::Application::build_with(
        &settings,
        lastmile::startup::WeChatClients::sandbox(sandbox.clone()),
    )
    .expect("builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"code": "reorder"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("token").to_owned();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = crate::helpers::create_order_over_http(&http, &base, &token).await;
        http.post(format!("{base}/api/v1/orders/{id}/pay"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("pay");
        ids.push(id);
    }
    let sim = sandbox.pay_simulator();
    sim.hold_notifies(true);
    sim.duplicate_notifies(2);
    for id in &ids {
        sim.pay(id).await.expect("paid, notify held");
    }
    let status = |id: &String| {
        let req = http
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(&token)
            .send();
        async move {
            req.await
                .expect("get")
                .json::<serde_json::Value>()
                .await
                .expect("json")["status"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }
    };
    assert_eq!(status(&ids[0]).await, "awaiting_payment");
    assert_eq!(
        sim.release_held(true).await,
        6,
        "every copy, newest first, is acknowledged"
    );
    for id in &ids {
        assert_eq!(status(id).await, "paid");
    }
}

#[actix_web::test]
async fn a_notify_with_another_transaction_id_keeps_the_first_and_counts_an_anomaly() {
    let app = spawn_app().await;
    let (token, openid) = app.login("double-notify").await;
    let id = app.paid_order(&token, &openid).await;
    let first = app
        .store
        .payment_repo()
        .get_payment(&lastmile_actors::domain::OrderId::parse(&id).expect("id"))
        .expect("readable")
        .and_then(|r| r.transaction_id)
        .expect("recorded");
    let series = r#"lastmile_payment_anomalies_total{kind="transaction_id_mismatch"}"#;
    let before = app.metric(series).await;
    let signer = app.wechat.pay().signer().clone();
    let mut fields = notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300);
    fields.insert(
        "transaction_id".into(),
        "4200000000999999999999999999".into(),
    );

    let answer = app
        .post_xml(
            "/api/v1/wechat/pay/notify",
            signed_xml(fields, signer.api_key.expose(), SignType::Md5),
        )
        .await
        .1;

    assert_eq!(answer, SUCCESS, "WeChat must stop resending");
    let kept = app
        .store
        .payment_repo()
        .get_payment(&lastmile_actors::domain::OrderId::parse(&id).expect("id"))
        .expect("readable")
        .and_then(|r| r.transaction_id);
    assert_eq!(
        kept.as_deref(),
        Some(first.as_str()),
        "the first id is kept"
    );
    assert_eq!(app.status_of(&token, &id).await, "paid");
    assert!(app.metric(series).await > before, "the anomaly is counted");

    // The same id again is a plain repeat: no anomaly.
    let now = app.metric(series).await;
    let mut same = notify_fields(&signer.appid, &signer.mch_id, &id, &openid, 300);
    same.insert("transaction_id".into(), first.clone());
    let answer = app
        .post_xml(
            "/api/v1/wechat/pay/notify",
            signed_xml(same, signer.api_key.expose(), SignType::Md5),
        )
        .await
        .1;
    assert_eq!(answer, SUCCESS);
    assert_eq!(app.metric(series).await, now);
}

/// Why, which order, what differs in `req_info`, and the anomaly kind.
type RefundCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);

#[actix_web::test]
async fn a_refund_notify_that_does_not_match_our_refund_changes_nothing() {
    let app = spawn_app().await;
    let (token, openid) = app.login("strict-refund").await;
    let id = app.paid_order(&token, &openid).await;
    let (other_token, other_openid) = app.login("strict-refund-paid").await;
    let still_paid = app.paid_order(&other_token, &other_openid).await;
    let cancelled = app.cancel_order(&token, &id).await;
    assert_eq!(cancelled.body["status"], "refunding");
    let sim = app.wechat.pay_simulator();
    assert!(
        eventually(Duration::from_secs(10), || async {
            !sim.refunds().is_empty()
        })
        .await,
        "refund requested"
    );
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();
    let wrong_no = format!("X{id}");
    let cases: Vec<RefundCase> = vec![
        (
            "not our out_refund_no",
            id.clone(),
            vec![("out_refund_no", wrong_no.as_str())],
            "refund_not_requested",
        ),
        (
            "partial refund_fee",
            id.clone(),
            vec![("refund_fee", "100")],
            "refund_amount_mismatch",
        ),
        (
            "wrong total_fee",
            id.clone(),
            vec![("total_fee", "999")],
            "refund_amount_mismatch",
        ),
        (
            "order not refunding",
            still_paid.clone(),
            vec![],
            "refund_not_requested",
        ),
    ];
    for (why, order, changes, kind) in cases {
        let series = format!(r#"lastmile_payment_anomalies_total{{kind="{kind}"}}"#);
        let before = app.metric(&series).await;
        let xml = refund_notify_with(&signer.appid, &signer.mch_id, &key, &order, &changes);

        let answer = app.post_xml("/api/v1/wechat/refund/notify", xml).await.1;

        assert_eq!(answer, SUCCESS, "{why}: answered so WeChat stops");
        assert!(
            app.metric(&series).await > before,
            "{why}: counted as {kind}"
        );
        assert_eq!(app.status_of(&token, &id).await, "refunding", "{why}");
        assert_eq!(
            app.status_of(&other_token, &still_paid).await,
            "paid",
            "{why}"
        );
    }

    let good = refund_notify(&signer.appid, &signer.mch_id, &key, &id);
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", good).await.1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refunded");
}

#[actix_web::test]
async fn a_refund_wechat_pay_gives_up_on_waits_for_an_operator_who_retries_or_settles() {
    const ADMIN: &str = "refund-failed-admin-token-0";
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(ADMIN));
    })
    .await;
    let sim = app.wechat.pay_simulator();
    let signer = app.wechat.pay().signer().clone();
    let key = signer.api_key.expose().to_owned();
    let admin = |uri: String, reason: &str| {
        actix_web::test::TestRequest::post()
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {ADMIN}")))
            .set_json(serde_json::json!({ "reason": reason }))
    };
    // A paid order, cancelled: its refund goes to WeChat Pay.
    let refunding = |code: &'static str| {
        let (app, sim) = (&app, &sim);
        async move {
            let (token, openid) = app.login(code).await;
            let id = app.paid_order(&token, &openid).await;
            assert_eq!(
                app.cancel_order(&token, &id).await.body["status"],
                "refunding"
            );
            let requested = eventually(Duration::from_secs(10), || async {
                sim.refunds().iter().any(|(trade, _)| trade == &id)
            })
            .await;
            assert!(requested, "the refund reached WeChat Pay");
            (token, id)
        }
    };

    // WeChat Pay closes the refund: the order waits for an operator.
    let (token, id) = refunding("refund-closed").await;
    let closed = refund_notify_with(
        &signer.appid,
        &signer.mch_id,
        &key,
        &id,
        &[("refund_status", "REFUNDCLOSE")],
    );
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", closed).await.1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refund_failed");
    // The operator retries: the same refund number goes to WeChat Pay again.
    let retried = app
        .send(admin(
            format!("/api/v1/admin/orders/{id}/refund"),
            "retry after the bank's fix",
        ))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["status"], "refunding");
    let ok = refund_notify(&signer.appid, &signer.mch_id, &key, &id);
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", ok).await.1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refunded");

    // An abnormal refund (the card is gone) is settled by hand instead.
    let (token, id) = refunding("refund-abnormal").await;
    let premature = app
        .send(admin(
            format!("/api/v1/admin/orders/{id}/settle"),
            "too early",
        ))
        .await;
    assert_eq!(
        premature.status,
        StatusCode::CONFLICT,
        "only a failed refund is settled"
    );
    let abnormal = refund_notify_with(
        &signer.appid,
        &signer.mch_id,
        &key,
        &id,
        &[("refund_status", "CHANGE")],
    );
    assert_eq!(
        app.post_xml("/api/v1/wechat/refund/notify", abnormal)
            .await
            .1,
        SUCCESS
    );
    assert_eq!(app.status_of(&token, &id).await, "refund_failed");
    let settled = app
        .send(admin(
            format!("/api/v1/admin/orders/{id}/settle"),
            "paid back in cash at the desk",
        ))
        .await;
    assert_eq!(settled.status, StatusCode::OK, "{}", settled.body);
    assert_eq!(settled.body["status"], "refunded");
    let events: Vec<&str> = settled.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["event"].as_str())
        .collect();
    assert!(
        events.ends_with(&["cancel", "refund_failed", "refund_settled"]),
        "{events:?}"
    );
}
