//! Property tests over the HTTP edge: arbitrary bytes and near-valid JSON to
//! every body extractor, arbitrary query strings to every query parser,
//! arbitrary XML to the WeChat callbacks. Never a panic, never a 5xx: bad
//! input is a 4xx with the error body (or FAIL for WeChat).

use actix_web::test::TestRequest;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::{order_body, spawn_app_with};

/// Cases per endpoint and kind of input.
const CASES: usize = 96;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with one field replaced by anything, or a field added.
fn mutated(base: Value) -> impl Strategy<Value = Value> {
    let mut keys: Vec<String> = base
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.push("unexpected".into());
    (prop::sample::select(keys), json_value()).prop_map(move |(key, value)| {
        let mut body = base.clone();
        body[key] = value;
        body
    })
}

fn bodies(base: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        mutated(base).prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn sample<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> S::Value {
    strategy
        .new_tree(runner)
        .map(|tree| tree.current())
        .unwrap_or_else(|e| panic!("strategy: {e}"))
}

#[actix_web::test]
async fn arbitrary_bodies_and_queries_are_4xx_never_5xx() {
    let admin = "fuzz-admin-token-0123456789".to_owned();
    let admin_token = admin.clone();
    let app = spawn_app_with(move |s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(admin_token));
    })
    .await;
    let (token, _) = app.login("fuzzer").await;
    let (courier, courier_id) = app.online_courier("fuzz-courier", "dorm-1").await;
    let created = app.create_order(&token, &order_body()).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let mut runner = TestRunner::new(Config::default());
    let json_endpoints: Vec<(String, &String, Value)> = vec![
        ("/api/v1/auth/login".into(), &token, json!({"code": "x"})),
        ("/api/v1/orders".into(), &token, order_body()),
        (
            "/api/v1/couriers/me".into(),
            &courier,
            json!({"name": "n", "phone": "13800138000"}),
        ),
        (
            "/api/v1/couriers/me/online".into(),
            &courier,
            json!({"place_id": "dorm-1"}),
        ),
        (
            "/api/v1/couriers/me/location".into(),
            &courier,
            json!({"place_id": "dorm-1"}),
        ),
        (
            "/api/v1/form-ids".into(),
            &token,
            json!({"form_ids": ["a"]}),
        ),
        (
            "/api/v1/subscriptions".into(),
            &token,
            json!({"template_ids": ["a"]}),
        ),
        (format!("/api/v1/orders/{id}/cancel"), &token, json!({})),
        (format!("/api/v1/orders/{id}/pay"), &token, json!({})),
        (format!("/api/v1/orders/{id}/grab"), &courier, json!({})),
        (
            format!("/api/v1/admin/orders/{id}/refund"),
            &admin,
            json!({"reason": "r"}),
        ),
        (
            format!("/api/v1/admin/orders/{id}/reassign"),
            &admin,
            json!({"courier": courier_id}),
        ),
    ];
    for (uri, who, base) in &json_endpoints {
        let strategy = bodies(base.clone());
        for _ in 0..CASES {
            let body = sample(&mut runner, &strategy);
            let reply = app
                .send(
                    TestRequest::post()
                        .uri(uri)
                        .insert_header(("Authorization", format!("Bearer {who}")))
                        .insert_header(("Content-Type", "application/json"))
                        .set_payload(body.clone()),
                )
                .await;
            assert!(
                reply.status.as_u16() < 500,
                "{uri} answered {} to {:?}",
                reply.status,
                String::from_utf8_lossy(&body)
            );
            if !reply.status.is_success() {
                assert!(!reply.code().is_empty(), "{uri}: error body {}", reply.body);
            }
        }
    }
    // What a client can put in a query: legal characters and any %XX
    // escape (invalid UTF-8 included); the HTTP parser refuses the rest.
    let queries = "([A-Za-z0-9=&;+._~!$'()*,/:@?-]|%[0-9A-Fa-f]{2}|%){0,40}";
    for path in [
        "/api/v1/orders",
        "/api/v1/orders/open",
        "/api/v1/share-code",
        "/api/v1/admin/orders",
    ] {
        for _ in 0..CASES {
            let raw: String = sample(&mut runner, &queries);
            let uri = format!("{path}?{raw}");
            let who = if path.ends_with("open") {
                &courier
            } else if path.contains("/admin/") {
                &admin
            } else {
                &token
            };
            let reply = app
                .send(
                    TestRequest::get()
                        .uri(&uri)
                        .insert_header(("Authorization", format!("Bearer {who}"))),
                )
                .await;
            assert!(
                reply.status.as_u16() < 500,
                "{uri} answered {}",
                reply.status
            );
        }
    }
    let xml = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "(<xml>)?(<[a-z_]{1,12}>(<!\\[CDATA\\[)?[^<]{0,40}(\\]\\]>)?</[a-z_]{1,12}>){0,8}(</xml>)?"
            .prop_map(String::into_bytes),
    ];
    for path in ["/api/v1/wechat/pay/notify", "/api/v1/wechat/refund/notify"] {
        for _ in 0..CASES {
            let body = sample(&mut runner, &xml);
            let (status, answer) = app.post_xml(path, body).await;
            // After a few refusals the address is answered 429 for a while.
            match status.as_u16() {
                200 => assert!(answer.contains("<return_code>"), "{path}: {answer}"),
                429 => assert!(answer.contains("rate_limited"), "{path}: {answer}"),
                other => panic!("{path} answered {other}: {answer}"),
            }
        }
    }
}
