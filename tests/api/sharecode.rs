//! Share codes (wxacode), local object storage and Qiniu upload.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use futures::future::join_all;
use lastmile_actors::objects::{qiniu_upload_token, ObjectStore, QiniuConfig, QiniuObjects};
use lastmile_actors::wechat::{LiveWeChat, Secret, WeChat, WeChatError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::spawn_app;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[actix_web::test]
async fn a_share_code_is_made_once_uploaded_once_and_served() {
    let app = spawn_app().await;
    let (token, _) = app.login("sharer").await;
    let get = || {
        TestRequest::get()
            .uri("/api/v1/share-code?scene=order%3D42&page=pages/order/detail")
            .insert_header(("Authorization", format!("Bearer {token}")))
    };
    let replies = join_all((0..5).map(|_| app.send(get()))).await;
    let url = replies[0].body["url"].as_str().expect("url").to_owned();
    assert!(replies
        .iter()
        .all(|r| r.status == StatusCode::OK && r.body["url"] == url.as_str()));
    let again = app.send(get()).await;
    assert_eq!(again.body["url"], url.as_str());
    assert_eq!(
        app.wechat.wxacode_calls(),
        1,
        "one WeChat call for all of them"
    );

    let path = url
        .split_once("/files/")
        .map(|(_, name)| format!("/files/{name}"))
        .expect("local URL");
    let kept = app
        .store
        .object_repo(&app._dir.path().join("data/files"))
        .object_keys()
        .expect("object keys");
    assert_eq!(kept.len(), 1, "uploaded once: {kept:?}");
    let res =
        actix_web::test::call_service(&app.svc, TestRequest::get().uri(&path).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let body = actix_web::test::read_body(res).await;
    assert!(body.starts_with(PNG_MAGIC), "a real PNG");

    let missing = app
        .send(TestRequest::get().uri("/files/..%2Fsecrets"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn bad_scene_or_page_is_400() {
    let app = spawn_app().await;
    let (token, _) = app.login("bad-sharer").await;
    for query in [
        "",
        "scene=",
        "scene=123456789012345678901234567890123",
        "scene=a%20b",
        "scene=%E4%BD%A0",
        "scene=ok&page=/pages/x",
        "scene=ok&page=pages/x?y=1",
    ] {
        let reply = app
            .send(
                TestRequest::get()
                    .uri(&format!("/api/v1/share-code?{query}"))
                    .insert_header(("Authorization", format!("Bearer {token}"))),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.code(), "validation", "{query}");
    }
    assert_eq!(app.wechat.wxacode_calls(), 0);
}

#[actix_web::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_retried() {
    let app = spawn_app().await;
    let (token, _) = app.login("revoked").await;
    app.state.tokens.get().await.expect("first token");
    app.wechat.revoke_tokens();
    let reply = app
        .send(
            TestRequest::get()
                .uri("/api/v1/share-code?scene=x1")
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.wechat.token_calls(), 2, "one refresh");
    assert_eq!(app.wechat.wxacode_calls(), 2, "one retry");
}

#[actix_web::test]
async fn live_wxacode_tells_json_errors_from_images_by_media_type() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/wxa/getwxacodeunlimit"))
        .respond_with(|req: &Request| {
            if req.url.query().unwrap_or("").contains("access_token=stale") {
                ResponseTemplate::new(200).set_body_raw(
                    r#"{"errcode":40001,"errmsg":"invalid credential"}"#,
                    "application/json; charset=UTF-8",
                )
            } else {
                ResponseTemplate::new(200).set_body_raw(PNG_MAGIC.to_vec(), "image/jpeg")
            }
        })
        .mount(&server)
        .await;
    let mut cfg = lastmile::config::Settings::load(None)
        .expect("config")
        .wechat;
    cfg.api_base = server.uri();
    let client = LiveWeChat::new(&cfg).expect("client");
    let err = client.wxacode_unlimited("stale", "s", "").await;
    assert!(
        matches!(err, Err(WeChatError::Api { errcode: 40001, .. })),
        "{err:?}"
    );
    let png = client
        .wxacode_unlimited("fresh", "s", "")
        .await
        .expect("image");
    assert_eq!(png, PNG_MAGIC);
}

#[actix_web::test]
async fn qiniu_upload_sends_a_valid_token_key_and_file() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorder = seen.clone();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .respond_with(move |req: &Request| {
            let body = &req.body;
            let text = String::from_utf8_lossy(body).into_owned();
            let field = |name: &str| {
                let start = text.find(&format!("name=\"{name}\""))?;
                let rest = &text[start..];
                let value = &rest[rest.find("\r\n\r\n")? + 4..];
                Some(value[..value.find("\r\n--")?].to_owned())
            };
            let token = field("token").unwrap_or_default();
            let key = field("key").unwrap_or_default();
            let mut parts = token.splitn(3, ':');
            let (ak, policy) = (parts.next().unwrap_or(""), parts.nth(1).unwrap_or(""));
            use base64::Engine;
            let policy_json = base64::engine::general_purpose::URL_SAFE
                .decode(policy)
                .unwrap_or_default();
            let policy_json = String::from_utf8_lossy(&policy_json).into_owned();
            let valid = token == qiniu_upload_token(ak, "SK-test", &policy_json)
                && policy_json.contains(&format!("\"scope\":\"share-bucket:{key}\""))
                && body.windows(8).any(|w| w == PNG_MAGIC);
            recorder
                .lock()
                .map(|mut v| v.push(format!("{ak} {key} {valid}")))
                .ok();
            if valid {
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"key": key}))
            } else {
                ResponseTemplate::new(401)
            }
        })
        .mount(&server)
        .await;

    let qiniu = QiniuObjects::new(QiniuConfig {
        access_key: "AK-test".into(),
        secret_key: Secret::new("SK-test"),
        bucket: "share-bucket".into(),
        upload_url: format!("{}/", server.uri()),
        public_base: "https://cdn.example.edu.cn".into(),
    });
    let url = qiniu
        .put("wxacode-abc.png", PNG_MAGIC.to_vec(), "image/png")
        .await
        .expect("uploaded");
    assert_eq!(url, "https://cdn.example.edu.cn/wxacode-abc.png");
    assert_eq!(
        seen.lock().expect("lock").clone(),
        vec!["AK-test wxacode-abc.png true".to_owned()]
    );

    let wrong = QiniuObjects::new(QiniuConfig {
        access_key: "AK-test".into(),
        secret_key: Secret::new("not-the-key"),
        bucket: "share-bucket".into(),
        upload_url: format!("{}/", server.uri()),
        public_base: "https://cdn.example.edu.cn".into(),
    });
    assert!(wrong
        .put("x.png", PNG_MAGIC.to_vec(), "image/png")
        .await
        .is_err());
}

#[actix_web::test]
async fn new_share_codes_per_user_per_day_are_bounded() {
    let app = crate::helpers::spawn_app_with(|s| s.messages.share_codes_per_day = 2).await;
    let (token, _) = app.login("sharer").await;
    let (other, _) = app.login("other-sharer").await;
    let get = |token: String, scene: &str| {
        let uri = format!("/api/v1/share-code?scene={scene}");
        let app = &app;
        async move { app.get_as(&token, &uri).await }
    };
    assert_eq!(get(token.clone(), "s1").await.status, StatusCode::OK);
    assert_eq!(get(token.clone(), "s2").await.status, StatusCode::OK);

    let third = get(token.clone(), "s3").await;

    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.code(), "rate_limited");
    assert_eq!(
        get(token.clone(), "s1").await.status,
        StatusCode::OK,
        "a code made before costs nothing"
    );
    assert_eq!(
        get(other.clone(), "s3").await.status,
        StatusCode::OK,
        "per user"
    );
}
