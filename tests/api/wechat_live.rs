//! The live WeChat client against a fake WeChat on 127.0.0.1.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use lastmile_actors::wechat::{
    LiveWeChat, Mode, Secret, SignType, WeChat, WeChatConfig, WeChatError,
};

fn config(api_base: String) -> WeChatConfig {
    WeChatConfig {
        mode: Mode::Live,
        appid: "wxlive0001".into(),
        secret: Secret::new("live-secret"),
        mch_id: "1900000109".into(),
        api_key: Secret::new("0".repeat(32)),
        api_base,
        pay_base: "http://127.0.0.1:9".into(),
        notify_base: "http://127.0.0.1:9".into(),
        sign_type: SignType::Md5,
        cert_path: None,
        key_path: None,
    }
}

/// Starts a fake jscode2session that records query strings.
fn fake_wechat() -> (
    String,
    Arc<Mutex<Vec<String>>>,
    actix_web::dev::ServerHandle,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let server = HttpServer::new(move || {
        let recorder = recorder.clone();
        App::new().route(
            "/sns/jscode2session",
            web::get().to(move |req: HttpRequest| {
                let recorder = recorder.clone();
                async move {
                    let query = req.query_string().to_owned();
                    recorder.lock().map(|mut v| v.push(query.clone())).ok();
                    // WeChat labels this JSON as text/plain.
                    let body = if query.contains("js_code=good") {
                        r#"{"openid":"oLIVEopenid0000000000000001","session_key":"c2Vzc2lvbg=="}"#
                    } else if query.contains("js_code=busy") {
                        r#"{"errcode":-1,"errmsg":"system error"}"#
                    } else {
                        r#"{"errcode":40029,"errmsg":"invalid code"}"#
                    };
                    HttpResponse::Ok().content_type("text/plain").body(body)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind fake");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), seen, handle)
}

#[actix_web::test]
async fn code2session_sends_the_documented_query_and_maps_errcodes() {
    let (base, seen, handle) = fake_wechat();
    let client = LiveWeChat::new(&config(base)).expect("client");

    let session = client.code2session("good").await.expect("good code");
    assert_eq!(session.openid.as_str(), "oLIVEopenid0000000000000001");
    let rejected = client.code2session("bad").await;
    assert!(
        matches!(rejected, Err(WeChatError::InvalidCode(40029))),
        "{rejected:?}"
    );
    let busy = client.code2session("busy").await;
    assert!(
        matches!(busy, Err(WeChatError::Api { errcode: -1, .. })),
        "{busy:?}"
    );

    let queries = seen.lock().expect("lock").clone();
    assert_eq!(
        queries[0],
        "appid=wxlive0001&secret=live-secret&js_code=good&grant_type=authorization_code"
    );
    handle.stop(false).await;
}

#[actix_web::test]
async fn unreachable_wechat_is_a_typed_error() {
    let client = LiveWeChat::new(&config("http://127.0.0.1:9".into())).expect("client");
    let err = client.code2session("good").await;
    assert!(matches!(err, Err(WeChatError::Unreachable(_))), "{err:?}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let text = format!("{:?}", config("http://x".into()));
    assert!(!text.contains("live-secret"), "{text}");
    assert!(!text.contains(&"0".repeat(32)), "{text}");
}
