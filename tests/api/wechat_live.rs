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

/// A fake WeChat Pay that checks the exact signed XML it receives.
fn fake_pay(
    key: &'static str,
) -> (
    String,
    Arc<Mutex<Vec<String>>>,
    actix_web::dev::ServerHandle,
) {
    use lastmile_actors::wechat::pay;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let server = HttpServer::new(move || {
        let recorder = recorder.clone();
        App::new().route(
            "/pay/unifiedorder",
            web::post().to(move |body: web::Bytes| {
                let recorder = recorder.clone();
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    recorder.lock().map(|mut v| v.push(text)).ok();
                    let request = pay::from_xml(&body).unwrap_or_default();
                    let valid = pay::verify(&request, key, SignType::Md5).is_ok();
                    let mut answer = pay::fields([
                        ("return_code", "SUCCESS".to_owned()),
                        (
                            "result_code",
                            if valid { "SUCCESS" } else { "FAIL" }.to_owned(),
                        ),
                        ("err_code", if valid { "" } else { "SIGNERROR" }.to_owned()),
                        ("appid", "wxlive0001".to_owned()),
                        ("mch_id", "1900000109".to_owned()),
                        ("nonce_str", "answernonce".to_owned()),
                        (
                            "prepay_id",
                            "wx201410272009395522657a690389285100".to_owned(),
                        ),
                        ("trade_type", "JSAPI".to_owned()),
                    ]);
                    let sign = pay::sign(&answer, key, SignType::Md5);
                    answer.insert("sign".into(), sign);
                    HttpResponse::Ok()
                        .content_type("text/xml")
                        .body(pay::to_xml(&answer))
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind fake pay");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), seen, handle)
}

#[actix_web::test]
async fn unifiedorder_sends_signed_xml_and_checks_the_answer() {
    use lastmile_actors::wechat::{pay, UnifiedOrder};
    const KEY: &str = "00000000000000000000000000000000";
    let (base, seen, handle) = fake_pay(KEY);
    let mut cfg = config("http://127.0.0.1:9".into());
    cfg.pay_base = base;
    let client = LiveWeChat::new(&cfg).expect("client");
    let prepay = client
        .pay()
        .unified_order(&UnifiedOrder {
            out_trade_no: "8ASBB13T06H13ROQOED2P62EIE6O844T".into(),
            total_fee: 300,
            openid: "oLIVEopenid0000000000000001".into(),
            body: "校园跑腿-快递代取".into(),
            notify_url: "https://lastmile.example.edu.cn/api/v1/wechat/pay/notify".into(),
        })
        .await
        .expect("prepay");
    assert_eq!(prepay, "wx201410272009395522657a690389285100");

    let sent = seen.lock().expect("lock")[0].clone();
    assert!(
        sent.starts_with("<xml>") && sent.contains("<total_fee><![CDATA[300]]></total_fee>"),
        "{sent}"
    );
    let fields = pay::from_xml(sent.as_bytes()).expect("well-formed");
    for (k, v) in [
        ("appid", "wxlive0001"),
        ("mch_id", "1900000109"),
        ("trade_type", "JSAPI"),
        ("out_trade_no", "8ASBB13T06H13ROQOED2P62EIE6O844T"),
        ("openid", "oLIVEopenid0000000000000001"),
        (
            "notify_url",
            "https://lastmile.example.edu.cn/api/v1/wechat/pay/notify",
        ),
        ("body", "校园跑腿-快递代取"),
    ] {
        assert_eq!(fields.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(fields["nonce_str"].len(), 32);
    assert_eq!(
        fields["sign"],
        pay::sign(&fields, KEY, SignType::Md5),
        "sign over every field"
    );

    // An answer signed with another key is refused.
    let mut wrong = cfg.clone();
    wrong.api_key = Secret::new("1".repeat(32));
    let other = LiveWeChat::new(&wrong).expect("client");
    let refused = other
        .pay()
        .unified_order(&UnifiedOrder {
            out_trade_no: "X1".into(),
            total_fee: 1,
            openid: "o1".into(),
            body: "b".into(),
            notify_url: "https://x/n".into(),
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
    handle.stop(false).await;
}
