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
        stable_token: true,
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

/// A fake WeChat (login + Pay) for a whole live-mode flow: trades are never
/// paid at the fake, closes succeed, refunds are recorded.
fn fake_wechat_for_flow(
    key: &'static str,
) -> (
    String,
    Arc<Mutex<Vec<String>>>,
    actix_web::dev::ServerHandle,
) {
    use lastmile_actors::wechat::pay;
    let refunds = Arc::new(Mutex::new(Vec::new()));
    let recorder = refunds.clone();
    let server = HttpServer::new(move || {
        let recorder = recorder.clone();
        let answer = move |extra: Vec<(&'static str, String)>| {
            let mut f = pay::fields([
                ("return_code", "SUCCESS".to_owned()),
                ("result_code", "SUCCESS".to_owned()),
                ("appid", "wxlive0001".to_owned()),
                ("mch_id", "1900000109".to_owned()),
                ("nonce_str", "fakenonce".to_owned()),
            ]);
            f.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            let sign = pay::sign(&f, key, SignType::Md5);
            f.insert("sign".into(), sign);
            HttpResponse::Ok()
                .content_type("text/xml")
                .body(pay::to_xml(&f))
        };
        App::new()
            .route(
                "/sns/jscode2session",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .body(r#"{"openid":"oLIVEflow000000000000000000001","session_key":"k"}"#)
                }),
            )
            .route(
                "/pay/unifiedorder",
                web::post().to(move || async move {
                    answer(vec![
                        ("prepay_id", "wxLIVEprepay".into()),
                        ("trade_type", "JSAPI".into()),
                    ])
                }),
            )
            .route(
                "/pay/orderquery",
                web::post()
                    .to(move || async move { answer(vec![("trade_state", "NOTPAY".into())]) }),
            )
            .route(
                "/pay/closeorder",
                web::post().to(move || async move { answer(vec![]) }),
            )
            .route(
                "/secapi/pay/refund",
                web::post().to(move |body: web::Bytes| {
                    let recorder = recorder.clone();
                    async move {
                        let fields = pay::from_xml(&body).unwrap_or_default();
                        if pay::verify(&fields, key, SignType::Md5).is_ok() {
                            recorder
                                .lock()
                                .map(|mut v| {
                                    v.push(format!(
                                        "{} {} {}",
                                        fields.get("out_trade_no").cloned().unwrap_or_default(),
                                        fields.get("out_refund_no").cloned().unwrap_or_default(),
                                        fields.get("refund_fee").cloned().unwrap_or_default()
                                    ))
                                })
                                .ok();
                        }
                        answer(vec![("refund_id", "50300".into())])
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
    (format!("http://{addr}"), refunds, handle)
}

#[actix_web::test]
async fn live_mode_late_payment_is_refunded_at_wechat_pay() {
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    let (base, refunds, handle) = fake_wechat_for_flow(KEY);
    let dir = tempfile::tempdir().expect("tmp");
    let mut settings = crate::helpers::test_settings(dir.path());
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    settings.wechat = WeChatConfig {
        cert_path: Some(format!("{fixtures}/apiclient_cert.pem")),
        key_path: Some(format!("{fixtures}/apiclient_key.pem")),
        api_key: Secret::new(KEY),
        ..config(base.clone())
    };
    settings.wechat.pay_base = base;
    settings.orders.payment_timeout = std::time::Duration::from_millis(300);
    let clients =
        lastmile::startup::wechat_client(&settings).expect("live client with certificate");
    assert!(clients.sandbox.is_none());
    let services =
        lastmile::startup::start_services(&settings, clients, "https://lastmile.example.edu.cn")
            .expect("start");
    let app = crate::helpers::TestApp {
        svc: actix_web::test::init_service(lastmile::startup::app(services.state.clone())).await,
        state: services.state,
        store: services.store,
        wechat: Arc::new(lastmile_actors::wechat::SandboxWeChat::new(
            &settings.wechat,
        )),
        _dir: dir,
    };

    let (token, openid) = app.login("live-code").await;
    let id = app
        .create_order(&token, &crate::helpers::order_body())
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let params = app.pay_order(&token, &id).await;
    assert_eq!(params.body["package"], "prepay_id=wxLIVEprepay");
    let cancelled = crate::helpers::eventually(std::time::Duration::from_secs(10), || {
        let (app, token, id) = (&app, &token, &id);
        async move { app.status_of(token, id).await == "cancelled" }
    })
    .await;
    assert!(
        cancelled,
        "orderquery NOTPAY, closeorder SUCCESS → cancelled"
    );

    let mut notify = crate::helpers::notify_fields("wxlive0001", "1900000109", &id, &openid, 300);
    notify.insert(
        "transaction_id".into(),
        "4200000000000000000000000099".to_owned(),
    );
    let notify = crate::helpers::signed_xml(notify, KEY, SignType::Md5);
    let (_, answer) = app.post_xml("/api/v1/wechat/pay/notify", notify).await;
    assert!(
        answer.contains("SUCCESS") && !answer.contains("FAIL"),
        "{answer}"
    );
    assert_eq!(app.status_of(&token, &id).await, "refunding");
    let reached = crate::helpers::eventually(std::time::Duration::from_secs(10), || {
        let refunds = refunds.clone();
        async move { refunds.lock().map(|v| !v.is_empty()).unwrap_or(false) }
    })
    .await;
    assert!(reached, "the refund must reach WeChat Pay");
    assert_eq!(refunds.lock().expect("lock")[0], format!("{id} R{id} 300"));
    handle.stop(false).await;
}

#[actix_web::test]
async fn access_tokens_come_from_stable_token_or_token() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let server = HttpServer::new(move || {
        let (r1, r2) = (recorder.clone(), recorder.clone());
        App::new()
            .route(
                "/cgi-bin/stable_token",
                web::post().to(move |body: web::Json<serde_json::Value>| {
                    let r1 = r1.clone();
                    async move {
                        r1.lock()
                            .map(|mut v| v.push(format!("stable {}", body.0)))
                            .ok();
                        HttpResponse::Ok()
                            .json(serde_json::json!({"access_token": "STABLE", "expires_in": 7200}))
                    }
                }),
            )
            .route(
                "/cgi-bin/token",
                web::get().to(move |req: HttpRequest| {
                    let r2 = r2.clone();
                    async move {
                        r2.lock()
                            .map(|mut v| v.push(format!("token {}", req.query_string())))
                            .ok();
                        HttpResponse::Ok()
                            .json(serde_json::json!({"errcode": 40013, "errmsg": "invalid appid"}))
                    }
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let client = LiveWeChat::new(&config(format!("http://{addr}"))).expect("client");
    let token = client.fetch_access_token(true).await.expect("stable token");
    assert_eq!((token.value.as_str(), token.expires_in), ("STABLE", 7200));
    let plain = client.fetch_access_token(false).await;
    assert!(
        matches!(plain, Err(WeChatError::Api { errcode: 40013, .. })),
        "{plain:?}"
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen[0],
        r#"stable {"appid":"wxlive0001","force_refresh":false,"grant_type":"client_credential","secret":"live-secret"}"#
    );
    assert_eq!(
        seen[1],
        "token grant_type=client_credential&appid=wxlive0001&secret=live-secret"
    );
    handle.stop(false).await;
}
