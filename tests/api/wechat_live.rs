//! The live WeChat client against a fake WeChat on 127.0.0.1.

use std::sync::Arc;

use lastmile_actors::wechat::{
    LiveWeChat, Mode, Secret, SignType, WeChat, WeChatConfig, WeChatError,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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
        api_v3_key: Secret::new("v3".repeat(16)),
        cert_serial: None,
        pay_public_key_path: None,
        pay_public_key_id: None,
        transfer_scene_id: "1005".into(),
        shipping_info: false,
    }
}

/// The requests a fake got, by path.
async fn received(server: &MockServer, at: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == at)
        .collect()
}

/// A fake jscode2session: a good code, a busy WeChat, anything else invalid.
async fn fake_wechat() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .respond_with(|req: &Request| {
            let query = req.url.query().unwrap_or("");
            // WeChat labels this JSON as text/plain.
            let body = if query.contains("js_code=good") {
                r#"{"openid":"oLIVEopenid0000000000000001","session_key":"c2Vzc2lvbg=="}"#
            } else if query.contains("js_code=busy") {
                r#"{"errcode":-1,"errmsg":"system error"}"#
            } else {
                r#"{"errcode":40029,"errmsg":"invalid code"}"#
            };
            ResponseTemplate::new(200).set_body_raw(body, "text/plain")
        })
        .mount(&server)
        .await;
    server
}

#[actix_web::test]
async fn code2session_sends_the_documented_query_and_maps_errcodes() {
    let server = fake_wechat().await;
    let client = LiveWeChat::new(&config(server.uri())).expect("client");

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

    let queries = received(&server, "/sns/jscode2session").await;
    assert_eq!(
        queries[0].url.query(),
        Some("appid=wxlive0001&secret=live-secret&js_code=good&grant_type=authorization_code")
    );
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

/// A fake WeChat Pay unifiedorder that checks the signature of what it
/// receives and answers signed with `key`.
async fn fake_pay(key: &'static str) -> MockServer {
    use lastmile_actors::wechat::pay;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/unifiedorder"))
        .respond_with(move |req: &Request| {
            let request = pay::from_xml(&req.body).unwrap_or_default();
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
            ResponseTemplate::new(200).set_body_raw(pay::to_xml(&answer), "text/xml")
        })
        .mount(&server)
        .await;
    server
}

#[actix_web::test]
async fn unifiedorder_sends_signed_xml_and_checks_the_answer() {
    use lastmile_actors::wechat::{pay, UnifiedOrder};
    const KEY: &str = "00000000000000000000000000000000";
    let server = fake_pay(KEY).await;
    let mut cfg = config("http://127.0.0.1:9".into());
    cfg.pay_base = server.uri();
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

    let sent =
        String::from_utf8_lossy(&received(&server, "/pay/unifiedorder").await[0].body).into_owned();
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
}

/// A fake WeChat (login + Pay) for a whole live-mode flow: trades are never
/// paid at the fake, closes succeed, refunds are taken.
async fn fake_wechat_for_flow(key: &'static str) -> MockServer {
    use lastmile_actors::wechat::pay;
    let answer = move |extra: &[(&'static str, &str)]| {
        let mut f = pay::fields([
            ("return_code", "SUCCESS".to_owned()),
            ("result_code", "SUCCESS".to_owned()),
            ("appid", "wxlive0001".to_owned()),
            ("mch_id", "1900000109".to_owned()),
            ("nonce_str", "fakenonce".to_owned()),
        ]);
        f.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let sign = pay::sign(&f, key, SignType::Md5);
        f.insert("sign".into(), sign);
        ResponseTemplate::new(200).set_body_raw(pay::to_xml(&f), "text/xml")
    };
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                r#"{"openid":"oLIVEflow000000000000000000001","session_key":"k"}"#,
            ),
        )
        .mount(&server)
        .await;
    let pay_answers: [(&str, &[(&'static str, &str)]); 4] = [
        (
            "/pay/unifiedorder",
            &[("prepay_id", "wxLIVEprepay"), ("trade_type", "JSAPI")],
        ),
        ("/pay/orderquery", &[("trade_state", "NOTPAY")]),
        ("/pay/closeorder", &[]),
        ("/secapi/pay/refund", &[("refund_id", "50300")]),
    ];
    for (at, extra) in pay_answers {
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(answer(extra))
            .mount(&server)
            .await;
    }
    server
}

/// The refunds a fake WeChat Pay took with a good signature, as
/// `out_trade_no out_refund_no refund_fee`.
async fn refunds_taken(server: &MockServer, key: &str) -> Vec<String> {
    use lastmile_actors::wechat::pay;
    received(server, "/secapi/pay/refund")
        .await
        .iter()
        .filter_map(|r| pay::from_xml(&r.body).ok())
        .filter(|f| pay::verify(f, key, SignType::Md5).is_ok())
        .map(|f| {
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            format!(
                "{} {} {}",
                get("out_trade_no"),
                get("out_refund_no"),
                get("refund_fee")
            )
        })
        .collect()
}

#[actix_web::test]
async fn live_mode_late_payment_is_refunded_at_wechat_pay() {
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    let server = fake_wechat_for_flow(KEY).await;
    let base = server.uri();
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
        let server = &server;
        async move { !refunds_taken(server, KEY).await.is_empty() }
    })
    .await;
    assert!(reached, "the refund must reach WeChat Pay");
    assert_eq!(
        refunds_taken(&server, KEY).await[0],
        format!("{id} R{id} 300")
    );
}

#[actix_web::test]
async fn access_tokens_come_from_stable_token_or_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "STABLE", "expires_in": 7200})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"errcode": 40013, "errmsg": "invalid appid"})),
        )
        .mount(&server)
        .await;

    let client = LiveWeChat::new(&config(server.uri())).expect("client");
    let token = client.fetch_access_token(true).await.expect("stable token");
    assert_eq!((token.value.as_str(), token.expires_in), ("STABLE", 7200));
    let plain = client.fetch_access_token(false).await;
    assert!(
        matches!(plain, Err(WeChatError::Api { errcode: 40013, .. })),
        "{plain:?}"
    );
    let stable = received(&server, "/cgi-bin/stable_token").await;
    let stable: serde_json::Value = serde_json::from_slice(&stable[0].body).expect("JSON");
    assert_eq!(
        stable.to_string(),
        r#"{"appid":"wxlive0001","force_refresh":false,"grant_type":"client_credential","secret":"live-secret"}"#
    );
    assert_eq!(
        received(&server, "/cgi-bin/token").await[0].url.query(),
        Some("grant_type=client_credential&appid=wxlive0001&secret=live-secret")
    );
}

#[actix_web::test]
async fn messages_go_out_as_the_documented_json_and_errcodes_are_named() {
    use lastmile_actors::wechat::OutgoingMessage;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/subscribe/send"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"errcode": 0, "errmsg": "ok"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/wxopen/template/send"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"errcode": 41028, "errmsg": "invalid form id"})),
        )
        .mount(&server)
        .await;
    let client = LiveWeChat::new(&config(server.uri())).expect("client");
    let message = OutgoingMessage {
        touser: "oLIVEopenid0000000000000001".into(),
        template_id: "TPL-assigned".into(),
        page: "pages/order/detail?id=ORDER1".into(),
        order_id: "ORDER1".into(),
        update: "已接单".into(),
    };

    client
        .send_subscribe("TOKEN1", &message)
        .await
        .expect("sent");
    let spent = client
        .send_template("TOKEN1", &message, "FORM1")
        .await
        .expect_err("form_id refused");

    assert!(spent.is_form_id_spent(), "{spent:?}");
    assert!(!spent.is_invalid_token() && !spent.is_refused_by_user());
    let subscribe = received(&server, "/cgi-bin/message/subscribe/send").await;
    assert_eq!(subscribe[0].url.query(), Some("access_token=TOKEN1"));
    assert_eq!(
        String::from_utf8_lossy(&subscribe[0].body),
        r#"{"touser":"oLIVEopenid0000000000000001","template_id":"TPL-assigned","page":"pages/order/detail?id=ORDER1","data":{"character_string1":{"value":"ORDER1"},"phrase2":{"value":"已接单"}}}"#
    );
    let template = received(&server, "/cgi-bin/message/wxopen/template/send").await;
    let body: serde_json::Value = serde_json::from_slice(&template[0].body).expect("JSON");
    assert_eq!(body["form_id"], "FORM1");
    assert_eq!(body["data"]["phrase2"]["value"], "已接单");
    assert_eq!(body["touser"], "oLIVEopenid0000000000000001");
}

/// The live 商家转账 client against a fake WeChat Pay: the exact request
/// (path, JSON body, an Authorization the merchant's public key verifies),
/// signed answers taken, unsigned or forged ones refused, NOT_FOUND read
/// as "never taken".
#[actix_web::test]
async fn live_transfers_send_signed_requests_and_trust_only_signed_answers() {
    use lastmile_actors::wechat::transfer::{BillState, TransferBill, TRANSFER_PATH};
    use lastmile_actors::wechat::v3::{request_message, response_message, V3Signer, V3Verifier};

    let fixture = |name: &str| format!("{}/tests/fixtures/v3/{name}", env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(fixture(name)).expect("fixture");
    let server = MockServer::start().await;
    let platform =
        V3Signer::from_pem("wx", "PUB_KEY_ID_LIVE", &read("wechatpay_key.pem")).expect("key");
    let signed = |status: u16, body: &str, signer: &V3Signer| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        ResponseTemplate::new(status)
            .insert_header("Wechatpay-Timestamp", now.to_string().as_str())
            .insert_header("Wechatpay-Nonce", "n0nce")
            .insert_header(
                "Wechatpay-Signature",
                signer.sign(&response_message(now, "n0nce", body)).as_str(),
            )
            .insert_header("Wechatpay-Serial", "PUB_KEY_ID_LIVE")
            .set_body_string(body)
    };
    let answer = r#"{"out_bill_no":"W0000000000000000000000000LIVE01","transfer_bill_no":"1330000071100999991182020050700019480001","create_time":"2026-12-03T16:00:00+08:00","state":"WAIT_USER_CONFIRM","package_info":"affffddafdfafddffda=="}"#;
    Mock::given(method("POST"))
        .and(path(TRANSFER_PATH))
        .respond_with(signed(200, answer, &platform))
        .mount(&server)
        .await;
    let not_found = r#"{"code":"NOT_FOUND","message":"记录不存在"}"#;
    Mock::given(method("GET"))
        .and(path(format!(
            "{TRANSFER_PATH}/out-bill-no/W0000000000000000000000000LIVE02"
        )))
        .respond_with(signed(404, not_found, &platform))
        .mount(&server)
        .await;
    let forger =
        V3Signer::from_pem("wx", "PUB_KEY_ID_LIVE", &read("merchant_key.pem")).expect("key");
    Mock::given(method("GET"))
        .and(path(format!(
            "{TRANSFER_PATH}/out-bill-no/W0000000000000000000000000LIVE03"
        )))
        .respond_with(signed(200, answer, &forger))
        .mount(&server)
        .await;

    let mut wechat = config("http://127.0.0.1:9".into());
    wechat.pay_base = server.uri();
    wechat.key_path = Some(fixture("merchant_key.pem"));
    wechat.cert_serial = Some("2AF9A6DE5940AC8B3C921540A57A1D2C92098A76".into());
    wechat.pay_public_key_path = Some(fixture("wechatpay_public.pem"));
    wechat.pay_public_key_id = Some("PUB_KEY_ID_LIVE".into());
    let api = wechat.live_transfer_api().expect("live transfer API");
    let bill = TransferBill {
        appid: "wxlive0001".into(),
        out_bill_no: "W0000000000000000000000000LIVE01".into(),
        transfer_scene_id: "1005".into(),
        openid: "oLIVECOURIER".into(),
        transfer_amount: 270,
        transfer_remark: "校园跑腿配送收入提现".into(),
        notify_url: "https://lastmile.example.edu.cn/api/v1/wechat/transfer/notify".into(),
        transfer_scene_report_infos: Vec::new(),
    };
    let taken = api.transfer(&bill).await.expect("taken");
    assert_eq!(taken.state, BillState::WaitUserConfirm);
    assert_eq!(taken.package_info.as_deref(), Some("affffddafdfafddffda=="));
    assert_eq!(
        api.query("W0000000000000000000000000LIVE02")
            .await
            .expect("answered"),
        None,
        "NOT_FOUND: WeChat Pay never took it"
    );
    assert!(
        api.query("W0000000000000000000000000LIVE03").await.is_err(),
        "an answer signed by another key is not WeChat Pay's"
    );

    // The request as WeChat Pay received it.
    let requests = server.received_requests().await.expect("recorded");
    let sent: &Request = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("the transfer");
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({
            "appid": "wxlive0001", "out_bill_no": "W0000000000000000000000000LIVE01",
            "transfer_scene_id": "1005", "openid": "oLIVECOURIER", "transfer_amount": 270,
            "transfer_remark": "校园跑腿配送收入提现",
            "notify_url": "https://lastmile.example.edu.cn/api/v1/wechat/transfer/notify",
            "transfer_scene_report_infos": []
        })
    );
    assert_eq!(
        sent.headers.get("Accept").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let auth = sent
        .headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .expect("Authorization");
    let field = |name: &str| {
        auth.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect(name)
            .to_owned()
    };
    assert!(
        auth.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000109\""),
        "{auth}"
    );
    assert_eq!(
        field("serial_no"),
        "2AF9A6DE5940AC8B3C921540A57A1D2C92098A76"
    );
    let timestamp: i64 = field("timestamp").parse().expect("timestamp");
    let message = request_message(
        "POST",
        TRANSFER_PATH,
        timestamp,
        &field("nonce_str"),
        std::str::from_utf8(&sent.body).expect("UTF-8"),
    );
    let merchant = V3Verifier::from_pem("merchant", &read("merchant_public.pem")).expect("key");
    assert_eq!(
        merchant.verify_message(&message, &field("signature")),
        Ok(())
    );
}

#[actix_web::test]
async fn content_checks_send_msg_sec_check_v2_and_a_refused_token_is_refreshed_once() {
    use lastmile_actors::auth::token::Tokens;
    use lastmile_actors::content::ContentCheck;
    use lastmile_actors::domain::OpenId;
    use lastmile_actors::wechat::ContentScene;

    let server = MockServer::start().await;
    let issued = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = issued.clone();
    Mock::given(method("POST"))
        .and(path("/cgi-bin/stable_token"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"access_token": format!("T{n}"), "expires_in": 7200}),
            )
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/wxa/msg_sec_check"))
        .respond_with(|req: &Request| {
            let query = req.url.query().unwrap_or("");
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let content = body["content"].as_str().unwrap_or("");
            let answer = if query == "access_token=T1" {
                serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"})
            } else if content.contains("bad") {
                serde_json::json!({"errcode": 0, "errmsg": "ok", "result": {"suggest": "risky", "label": 20002}, "trace_id": "t"})
            } else if content.contains("hmm") {
                serde_json::json!({"errcode": 0, "errmsg": "ok", "result": {"suggest": "review", "label": 20006}, "trace_id": "t"})
            } else {
                serde_json::json!({"errcode": 0, "errmsg": "ok", "result": {"suggest": "pass", "label": 100}, "trace_id": "t"})
            };
            ResponseTemplate::new(200).set_body_json(answer)
        })
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = lastmile_actors::storage::Engine::sled(dir.path(), std::time::Duration::ZERO)
        .expect("store");
    let client: Arc<dyn WeChat> = Arc::new(LiveWeChat::new(&config(server.uri())).expect("client"));
    let tokens = Tokens::start(client.clone(), store.token_repo(), true);
    let check = ContentCheck::new(client, tokens);
    let author = OpenId::parse("oLIVEopenid0000000000000001").expect("openid");

    // T1 is refused: refreshed to T2 and asked again, once.
    let clean = check
        .check(&author, ContentScene::Comment, &[("note", "放门口")])
        .await
        .expect("clean");
    assert!(!clean.is_flagged());
    assert_eq!(issued.load(std::sync::atomic::Ordering::SeqCst), 2);
    let asked = received(&server, "/wxa/msg_sec_check").await;
    assert_eq!(
        asked
            .iter()
            .map(|r| r.url.query().unwrap_or("").to_owned())
            .collect::<Vec<_>>(),
        ["access_token=T1", "access_token=T2"]
    );
    let body: serde_json::Value = serde_json::from_slice(&asked[1].body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"content": "放门口", "version": 2, "scene": 2, "openid": "oLIVEopenid0000000000000001"})
    );
    let name = check
        .check(&author, ContentScene::Profile, &[("name", "hmm")])
        .await
        .expect("review is accepted");
    assert!(name.is_flagged());
    let body: serde_json::Value =
        serde_json::from_slice(&received(&server, "/wxa/msg_sec_check").await[2].body)
            .expect("JSON");
    assert_eq!(body["scene"], 1);
    let refused = check
        .check(
            &author,
            ContentScene::Comment,
            &[("note", "ok"), ("text", "bad")],
        )
        .await
        .expect_err("risky");
    assert_eq!(refused.field, "text");
    // Empty texts are not sent.
    let before = received(&server, "/wxa/msg_sec_check").await.len();
    check
        .check(&author, ContentScene::Comment, &[("note", "  ")])
        .await
        .expect("nothing to check");
    assert_eq!(received(&server, "/wxa/msg_sec_check").await.len(), before);
}

#[actix_web::test]
async fn shipping_reports_post_the_documented_json_and_name_the_errcode() {
    use lastmile_actors::wechat::{ShippingOutcome, ShippingReport};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/wxa/sec/order/upload_shipping_info"))
        .respond_with(|req: &Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let answer = if body["order_key"]["out_trade_no"] == "REFUNDED1" {
                serde_json::json!({"errcode": 10060004, "errmsg": "支付单处于不可发货的状态"})
            } else {
                serde_json::json!({"errcode": 0, "errmsg": "ok"})
            };
            ResponseTemplate::new(200).set_body_json(answer)
        })
        .mount(&server)
        .await;
    let client = LiveWeChat::new(&config(server.uri())).expect("client");
    let at = time::macros::datetime!(2026-12-04 05:29:35.120 UTC);
    let report = ShippingReport::delivered("1900000109", "ORDER1", "oPAYER", "校园跑腿配送", at);
    client
        .upload_shipping_info("TOKEN", &report)
        .await
        .expect("taken");
    let sent = received(&server, "/wxa/sec/order/upload_shipping_info").await;
    assert_eq!(sent[0].url.query(), Some("access_token=TOKEN"));
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "order_key": {"order_number_type": 1, "mchid": "1900000109", "out_trade_no": "ORDER1"},
            "logistics_type": 2,
            "delivery_mode": 1,
            "shipping_list": [{"item_desc": "校园跑腿配送"}],
            "upload_time": "2026-12-04T13:29:35.120+08:00",
            "payer": {"openid": "oPAYER"}
        })
    );
    let refused = ShippingReport::delivered("1900000109", "REFUNDED1", "oPAYER", "x", at);
    let answer = client.upload_shipping_info("TOKEN", &refused).await;
    let error = answer.expect_err("refused");
    assert!(
        matches!(
            error,
            WeChatError::Api {
                errcode: 10060004,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(ShippingOutcome::of_error(&error), ShippingOutcome::GiveUp);
}
