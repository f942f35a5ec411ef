//! Money in process: prices and tips, the ledger, couriers' wallets.

use actix_web::http::StatusCode;
use actix_web::test;
use lastmile_actors::wechat::{SignType, WeChat};
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const TOKEN: &str = "operator-secret-token";

/// The app with the admin API on and a quick dispatcher.
async fn money_app() -> TestApp<
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.dispatch.tick = std::time::Duration::from_millis(50);
    })
    .await
}

/// The balance of one class of accounts in a check.
pub(crate) fn class(check: &Value, name: &str) -> i64 {
    check["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["account"] == name)
        .map_or(0, |a| a["balance_fen"].as_i64().unwrap_or(0))
}

/// The money calls the tests make, as WeChat Pay, the courier or the operator.
impl<S, B> TestApp<S>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    /// The operator's ledger check.
    async fn ledger_check(&self) -> Value {
        let reply = self
            .send(
                test::TestRequest::get()
                    .uri("/api/v1/admin/ledger/check")
                    .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// The service's answer to a pay notify of `total` fen for `id`.
    async fn notify_total(&self, id: &str, openid: &str, total: u32) -> String {
        let signer = self.wechat.pay().signer().clone();
        let xml = signed_xml(
            notify_fields(&signer.appid, &signer.mch_id, id, openid, total),
            signer.api_key.expose(),
            SignType::Md5,
        );
        self.post_xml("/api/v1/wechat/pay/notify", xml).await.1
    }

    /// A customer's order of 305 + 100 tip, paid, delivered by a new courier
    /// and confirmed: the courier has 375 fen available. Answers the
    /// courier's token.
    async fn earned(&self, tag: &str) -> String {
        self.earned_as(tag).await.0
    }

    /// [`Self::earned`], answering the courier's token and openid.
    async fn earned_as(&self, tag: &str) -> (String, String) {
        let (customer, openid) = self.login(&format!("{tag}-customer")).await;
        let mut body = order_body();
        body["fee_fen"] = json!(305);
        body["tip_fen"] = json!(100);
        let id = self.create_order(&customer, &body).await.body["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.pay(&customer, &openid, &id).await;
        let (courier, courier_openid) = self
            .online_courier(&format!("{tag}-courier"), "cainiao-north")
            .await;
        let grabbed = self
            .post_as(&courier, &format!("/api/v1/orders/{id}/grab"), None)
            .await;
        if grabbed.status != StatusCode::OK {
            // The dispatcher was quicker; it can only have been this courier.
            assert!(
                self.reaches(
                    &customer,
                    &id,
                    "assigned",
                    std::time::Duration::from_secs(5)
                )
                .await
            );
        }
        for step in ["pickup", "deliver"] {
            let r = self
                .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
        }
        let done = self
            .post_as(&customer, &format!("/api/v1/orders/{id}/confirm"), None)
            .await;
        assert_eq!(done.body["status"], "completed");
        (courier, courier_openid)
    }

    /// `POST /api/v1/couriers/me/withdrawals` as `token`, with an optional key.
    async fn withdraw(&self, token: &str, amount: Value, key: Option<&str>) -> Reply {
        let mut req = test::TestRequest::post()
            .uri("/api/v1/couriers/me/withdrawals")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .set_json(json!({"amount_fen": amount}));
        if let Some(key) = key {
            req = req.insert_header(("Idempotency-Key", key));
        }
        self.send(req).await
    }

    /// The courier `token` calls off their withdrawal `id`.
    async fn cancel_mine(&self, token: &str, id: &str) -> Reply {
        let uri = format!("/api/v1/couriers/me/withdrawals/{id}/cancel");
        self.post_as(token, &uri, None).await
    }

    /// An operator's POST on a withdrawal.
    async fn operator_post(&self, uri: &str, body: Option<Value>) -> Reply {
        let mut req = test::TestRequest::post()
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {TOKEN}")));
        if let Some(body) = body {
            req = req.set_json(body);
        }
        self.send(req).await
    }

    /// Posts a v3 transfer callback as WeChat Pay would.
    async fn transfer_callback(
        &self,
        headers: &lastmile_actors::wechat::v3::V3Headers,
        body: &str,
    ) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri("/api/v1/wechat/transfer/notify")
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Wechatpay-Timestamp", headers.timestamp.clone()))
                .insert_header(("Wechatpay-Nonce", headers.nonce.clone()))
                .insert_header(("Wechatpay-Signature", headers.signature.clone()))
                .insert_header(("Wechatpay-Serial", headers.serial.clone()))
                .set_payload(body.to_owned()),
        )
        .await
    }

    /// The operator's reconciliation call (`POST` runs it, `GET` reads it).
    async fn reconcile_call(&self, post: bool, query: &str) -> Reply {
        let req = if post {
            test::TestRequest::post()
        } else {
            test::TestRequest::get()
        };
        self.send(
            req.uri(&format!("/api/v1/admin/reconciliation?{query}"))
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await
    }
}

#[actix_web::test]
async fn the_price_list_suggests_a_fee_from_kind_and_route_without_sign_in() {
    let app = spawn_app().await;
    // cainiao-north (520, 1250) → dorm-3 (420, 1260): about 100 m.
    let near = app
        .send(
            test::TestRequest::get()
                .uri("/api/v1/price?kind=express&pickup=cainiao-north&dropoff=dorm-3"),
        )
        .await;
    assert_eq!(near.status, StatusCode::OK, "{}", near.body);
    assert_eq!(
        near.body,
        json!({"fee_fen": 200, "min_fen": 1, "breakdown": [{"item": "base", "fen": 200}]})
    );
    // south-gate (600, 0) → cainiao-north: about 1 253 m, one started km more.
    let far = app
        .send(
            test::TestRequest::get().uri(
                "/api/v1/price?kind=takeout&pickup=south-gate&dropoff=cainiao-north&campus=main",
            ),
        )
        .await;
    assert_eq!(far.status, StatusCode::OK, "{}", far.body);
    assert_eq!(far.body["fee_fen"], 400);
    assert_eq!(
        far.body["breakdown"],
        json!([{"item": "base", "fen": 300}, {"item": "distance", "fen": 100}])
    );
    for (query, field) in [
        ("pickup=south-gate&dropoff=dorm-3", "kind"),
        ("kind=bike&pickup=south-gate&dropoff=dorm-3", "kind"),
        ("kind=express&pickup=moon&dropoff=dorm-3", "pickup"),
        ("kind=express&pickup=south-gate", "dropoff"),
        (
            "kind=express&pickup=south-gate&dropoff=dorm-3&campus=other",
            "campus",
        ),
    ] {
        let bad = app
            .send(test::TestRequest::get().uri(&format!("/api/v1/price?{query}")))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad.code(), "validation", "{query}");
        let message = bad.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{query}: {message}");
    }
}

#[actix_web::test]
async fn a_tip_is_paid_with_the_fee_and_refunded_with_it() {
    let app = spawn_app().await;
    let (token, openid) = app.login("tipper").await;
    let mut body = order_body();
    body["tip_fen"] = json!(150);
    let created = app.create_order(&token, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        (
            created.body["fee_fen"].clone(),
            created.body["tip_fen"].clone()
        ),
        (json!(300), json!(150))
    );
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(app.pay_order(&token, &id).await.status, StatusCode::OK);
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&id).await.expect("paid at the sandbox");

    // WeChat Pay charged fee + tip: a notify of the fee alone is refused.
    let fee_only = app.notify_total(&id, &openid, 300).await;
    assert!(fee_only.contains("FAIL"), "{fee_only}");
    assert_eq!(app.status_of(&token, &id).await, "awaiting_payment");
    let total = app.notify_total(&id, &openid, 450).await;
    assert!(
        total.contains("SUCCESS") && !total.contains("FAIL"),
        "{total}"
    );
    assert_eq!(app.get_order(&token, &id).await.body["tip_fen"], 150);

    // The sandbox refuses a refund of anything but the whole 450.
    assert_eq!(
        app.cancel_order(&token, &id).await.body["status"],
        "refunding"
    );
    let refunded = eventually(std::time::Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(refunded, "the refund of fee and tip must reach WeChat Pay");

    // An order without a tip shows 0.
    let plain = app.create_order(&token, &order_body()).await;
    assert_eq!(plain.body["tip_fen"], 0);
}

#[actix_web::test]
async fn tips_out_of_range_and_fees_below_the_campus_floor_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = dir.path().join("campus.toml");
    let campus = std::fs::read_to_string("config/campus.toml").expect("campus map");
    assert!(
        campus.contains("\nmin_fen = 1\n"),
        "the shipped map states its floor"
    );
    std::fs::write(&map, campus.replace("\nmin_fen = 1\n", "\nmin_fen = 200\n"))
        .expect("write map");
    let app = spawn_app_with(|s| s.campus.map = map.clone()).await;
    let (token, _) = app.login("floor").await;
    let cases: [(Value, &str); 4] = [
        (json!({"tip_fen": 10_001}), "tip_fen"),
        (json!({"tip_fen": -1}), "tip_fen"),
        (json!({"tip_fen": 1.5}), "tip_fen"),
        (json!({"fee_fen": 199}), "at least 200"),
    ];
    for (change, named) in cases {
        let mut body = order_body();
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        let refused = app.create_order(&token, &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{change}");
        let message = refused.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(named), "{change}: {message}");
    }
    assert_eq!(
        app.count_orders(&token).await,
        0,
        "a refused order changes nothing"
    );
    let mut at_floor = order_body();
    at_floor["fee_fen"] = json!(200);
    at_floor["tip_fen"] = json!(10_000);
    assert_eq!(
        app.create_order(&token, &at_floor).await.status,
        StatusCode::CREATED
    );
    let price = app
        .send(
            test::TestRequest::get()
                .uri("/api/v1/price?kind=express&pickup=cainiao-north&dropoff=dorm-3"),
        )
        .await;
    assert_eq!(price.body["min_fen"], 200);
}

#[actix_web::test]
async fn a_completed_order_pays_its_courier_less_commission_and_the_book_balances() {
    let app = money_app().await;
    let (customer, openid) = app.login("ledger-customer").await;
    let mut body = order_body();
    body["fee_fen"] = json!(305);
    body["tip_fen"] = json!(100);
    let id = app.create_order(&customer, &body).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.pay(&customer, &openid, &id).await;
    let paid = app.ledger_check().await;
    assert_eq!(paid["balanced"], true, "{paid}");
    assert_eq!(
        (class(&paid, "clearing"), class(&paid, "escrow")),
        (-405, 405)
    );

    let (courier, _) = app.online_courier("ledger-courier", "cainiao-north").await;
    assert!(
        app.reaches(
            &customer,
            &id,
            "assigned",
            std::time::Duration::from_secs(5)
        )
        .await
    );
    let wallet = app.get_as(&courier, "/api/v1/couriers/me/wallet").await;
    assert_eq!(wallet.status, StatusCode::OK, "{}", wallet.body);
    // Commission ⌊305 × 10 %⌋ = 30, never on the tip: 305 − 30 + 100.
    assert_eq!(wallet.body["pending_fen"], 375, "{}", wallet.body);
    assert_eq!(wallet.body["available_fen"], 0);
    for step in ["pickup", "deliver"] {
        let r = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
    }
    assert_eq!(
        app.get_as(&courier, "/api/v1/couriers/me/wallet")
            .await
            .body["pending_fen"],
        375
    );
    let done = app
        .post_as(&customer, &format!("/api/v1/orders/{id}/confirm"), None)
        .await;
    assert_eq!(done.body["status"], "completed");

    // The wallet answered after the confirmation already holds the pay.
    let wallet = app
        .get_as(&courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["available_fen"].clone(),
            wallet["pending_fen"].clone(),
            wallet["withdrawing_fen"].clone()
        ),
        (json!(375), json!(0), json!(0)),
        "{wallet}"
    );
    assert_eq!(wallet["entries"][0]["kind"], "earning");
    assert_eq!(wallet["entries"][0]["order_id"], id.as_str());
    assert_eq!(wallet["entries"][0]["amount_fen"], 375);
    assert_eq!(wallet["next_cursor"], Value::Null);
    let done = app.ledger_check().await;
    assert_eq!(done["balanced"], true, "{done}");
    assert_eq!(done["sum_fen"], 0);
    assert_eq!(class(&done, "platform"), 30);
    assert_eq!(
        class(&done, "escrow"),
        0,
        "a finished order's escrow is empty"
    );
    assert_eq!(class(&done, "courier_available"), 375);

    // A replayed notify posts nothing twice.
    let again = app.notify_total(&id, &openid, 405).await;
    assert!(again.contains("SUCCESS"), "{again}");
    assert_eq!(class(&app.ledger_check().await, "clearing"), -405);
    // Someone who never delivered has an empty wallet.
    let empty = app
        .get_as(&customer, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (empty["available_fen"].clone(), empty["entries"].clone()),
        (json!(0), json!([]))
    );
    // Money settled is not refunded by an operator any more.
    let refund = app
        .send(
            test::TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{id}/refund"))
                .insert_header(("Authorization", format!("Bearer {TOKEN}")))
                .set_json(json!({"reason": "too late"})),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CONFLICT, "{}", refund.body);
}

#[actix_web::test]
async fn a_refund_takes_the_escrow_back_to_wechat_pay() {
    let app = money_app().await;
    let (customer, openid) = app.login("ledger-refund").await;
    let id = app.paid_order(&customer, &openid).await;
    assert_eq!(
        app.cancel_order(&customer, &id).await.body["status"],
        "refunding"
    );
    // WeChat Pay notifies only a refund it was asked for.
    let sim = app.wechat.pay_simulator();
    let requested = eventually(std::time::Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(requested, "the refund reached WeChat Pay");
    let signer = app.wechat.pay().signer().clone();
    let notify =
        crate::payments::refund_notify(&signer.appid, &signer.mch_id, signer.api_key.expose(), &id);
    let (_, answer) = app.post_xml("/api/v1/wechat/refund/notify", notify).await;
    assert!(answer.contains("SUCCESS"), "{answer}");
    assert_eq!(app.status_of(&customer, &id).await, "refunded");
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!((class(&check, "clearing"), class(&check, "escrow")), (0, 0));
}

#[actix_web::test]
async fn wallet_queries_are_checked() {
    let app = money_app().await;
    let (token, _) = app.login("wallet-pages").await;
    for query in ["limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=-1"] {
        let r = app
            .get_as(&token, &format!("/api/v1/couriers/me/wallet?{query}"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
    }
    let anonymous = app
        .send(test::TestRequest::get().uri("/api/v1/couriers/me/wallet"))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_token = app
        .send(test::TestRequest::get().uri("/api/v1/admin/ledger/check"))
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
}

/// An order as a release before the ledger stored it: created, then taken
/// through `events` (a courier assigned where one is needed).
pub(crate) fn stored_order(
    customer: &lastmile_actors::domain::OpenId,
    courier: &lastmile_actors::domain::OpenId,
    tip: u32,
    events: &[lastmile_actors::domain::Event],
) -> lastmile_actors::domain::Order {
    use lastmile_actors::domain::*;
    let campus = lastmile_actors::campus::Campus::load(std::path::Path::new("config/campus.toml"))
        .expect("campus map");
    let now = now_utc();
    let place = |id: &str| Location {
        place_id: PlaceId::parse(id, &campus, "place").expect("place"),
        detail: "x".into(),
    };
    let mut order = Order::new(
        OrderId::generate(customer, now),
        customer.clone(),
        NewOrder {
            kind: OrderKind::Express,
            pickup: place("cainiao-north"),
            dropoff: place("dorm-3"),
            pickup_code: String::new(),
            fee_fen: Fen::try_from(300).expect("fee"),
            tip_fen: Tip::try_from(tip).expect("tip"),
            note: String::new(),
            ready_at: None,
            contact_phone: None,
            flagged: false,
            campus: campus.campus_id().clone(),
        },
        now,
    );
    for event in events {
        if *event == Event::PickUp {
            order
                .assign(courier.clone(), ChangedBy::Dispatcher, now)
                .expect("assign");
        }
        order.apply(*event, ChangedBy::Timer, now).expect("legal");
    }
    order
}

/// Writes `orders` as they are (no money event with them) into a store at
/// `data`, after the ledger's one-time migration when `ledger_migrated`;
/// answers once the store can be opened again.
pub(crate) fn orders_on_disk(
    data: &std::path::Path,
    orders: &[lastmile_actors::domain::Order],
    ledger_migrated: bool,
) {
    {
        let store = crate::postgres::open_store(data);
        if ledger_migrated {
            store.ledger_repo().migrate_orders().expect("migrated");
        }
        let repo = store.order_repo();
        for order in orders {
            repo.insert_new_order(order, None).expect("insert");
            repo.update_order(order, false).expect("update");
        }
        store.flush_blocking().expect("flush");
    }
    reopenable(data);
}

/// Waits until the store at `path` can be opened again (its threads end
/// after the last handle goes).
pub(crate) fn reopenable(path: &std::path::Path) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if crate::postgres::on_postgres() {
            return;
        }
        if lastmile_actors::storage::Engine::sled(path, std::time::Duration::ZERO).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} stays locked", path.display());
}

#[actix_web::test]
async fn orders_stored_before_the_ledger_are_posted_once_at_start() {
    use lastmile_actors::domain::{Event, OpenId};
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("old");
    let customer = OpenId::parse("oOLDCUSTOMER").expect("openid");
    let courier = OpenId::parse("oOLDCOURIER").expect("openid");
    let paid = [Event::PaymentConfirmed];
    let completed = [
        Event::PaymentConfirmed,
        Event::PickUp,
        Event::Deliver,
        Event::Confirm,
    ];
    let refunded = [
        Event::PaymentConfirmed,
        Event::Cancel,
        Event::RefundConfirmed,
    ];
    let orders: Vec<_> = [
        (0, &paid[..]),
        (100, &completed[..]),
        (0, &refunded[..]),
        (0, &[][..]),
    ]
    .into_iter()
    .map(|(tip, events)| stored_order(&customer, &courier, tip, events))
    .collect();
    orders_on_disk(&data, &orders, false);
    // The real binary, killed and started again: the migration is told
    // once and posted once, whatever the restarts.
    let mut binary = BinaryApp::start(&data, &[("LASTMILE__ADMIN__TOKEN", TOKEN)]).await;
    let client = reqwest::Client::new();
    for start in 0..2 {
        let check = get_json(&client, binary.url("/api/v1/admin/ledger/check"), TOKEN).await;
        assert_eq!(check["balanced"], true, "start {start}: {check}");
        // Paid 300 (in escrow) + completed 400 + refunded 300 (returned).
        assert_eq!(class(&check, "clearing"), -700, "start {start}: {check}");
        assert_eq!(class(&check, "escrow"), 300);
        assert_eq!(class(&check, "platform"), 30);
        assert_eq!(class(&check, "courier_available"), 370);
        binary.kill9();
        binary.launch().await;
    }
}

/// A payment's event is written apart from its order (a transaction would
/// stall the store); an active order whose event the inbox lost is told
/// again at start.
#[actix_web::test]
async fn a_paid_active_order_without_its_money_event_is_told_at_start() {
    use lastmile_actors::domain::{Event, OpenId};
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("gap");
    let customer = OpenId::parse("oGAPCUSTOMER").expect("openid");
    // The ledger exists already (its one-time migration is done), and the
    // order's `paid` reached the disk without its event.
    let order = stored_order(&customer, &customer, 0, &[Event::PaymentConfirmed]);
    orders_on_disk(&data, &[order], true);
    let binary = BinaryApp::start(&data, &[("LASTMILE__ADMIN__TOKEN", TOKEN)]).await;
    let check = get_json(
        &reqwest::Client::new(),
        binary.url("/api/v1/admin/ledger/check"),
        TOKEN,
    )
    .await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "escrow"), 300, "{check}");
    assert_eq!(class(&check, "clearing"), -300);
}

#[actix_web::test]
async fn a_book_that_does_not_balance_keeps_the_service_unready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("broken");
    {
        use lastmile_actors::domain::Account;
        let store = crate::postgres::open_store(&data);
        // 500 fen from WeChat Pay's clearing to the platform with no
        // posting behind it: the sum is 0 and nothing is negative; only
        // the journal shows it.
        store
            .inject_unposted_balance(&Account::Platform, 500)
            .expect("platform");
        store
            .inject_unposted_balance(&Account::Clearing, -500)
            .expect("clearing");
        store.flush_blocking().expect("flush");
    }
    reopenable(&data);
    let app = spawn_app_with(|s| {
        s.storage.path = data.clone();
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
    })
    .await;
    let ready = eventually(std::time::Duration::from_secs(5), || async {
        app.send(test::TestRequest::get().uri("/readyz"))
            .await
            .status
            == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(ready, "/readyz must say the ledger is broken");
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], false);
    assert_eq!(check["sum_fen"], 0);
    assert_eq!(check["postings"], 0);
    let problems = check["problems"].to_string();
    assert!(
        problems.contains("platform holds 500 fen but its postings sum to 0 fen"),
        "{check}"
    );
}

#[actix_web::test]
async fn a_withdrawal_is_reviewed_then_paid_by_hand_and_the_book_follows() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.money.payout = lastmile::config::PayoutSetting::Manual;
        s.money.daily_withdrawal_fen = 350;
    })
    .await;
    let courier = app.earned("manual").await;

    let small = app.withdraw(&courier, json!(99), None).await;
    assert_eq!(small.status, StatusCode::BAD_REQUEST);
    assert!(small.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("100"));
    for bad in [json!(-5), json!(1.5), json!("200"), Value::Null] {
        let r = app.withdraw(&courier, bad.clone(), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let too_much = app.withdraw(&courier, json!(376), None).await;
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{}", too_much.body);

    let first = app.withdraw(&courier, json!(200), Some("w-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["status"], "reviewing");
    let id = first.body["id"].as_str().expect("id").to_owned();
    let replay = app.withdraw(&courier, json!(300), Some("w-1")).await;
    assert_eq!(
        (replay.status, replay.body["id"].clone()),
        (StatusCode::CREATED, json!(id))
    );
    let wallet = app
        .get_as(&courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["available_fen"].clone(),
            wallet["withdrawing_fen"].clone()
        ),
        (json!(175), json!(200))
    );
    assert_eq!(wallet["entries"][0]["kind"], "withdrawal");
    assert_eq!(wallet["entries"][0]["withdrawal_id"], id.as_str());
    assert_eq!(wallet["entries"][0]["amount_fen"], -200);
    let mine = app
        .get_as(&courier, "/api/v1/couriers/me/withdrawals")
        .await
        .body;
    assert_eq!(mine["withdrawals"][0]["id"], id.as_str());

    let queue = app
        .send(
            test::TestRequest::get()
                .uri("/api/v1/admin/withdrawals?status=reviewing")
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await;
    assert_eq!(
        queue.body["withdrawals"][0]["id"],
        id.as_str(),
        "{}",
        queue.body
    );
    assert!(queue.body["withdrawals"][0]["courier"].is_string());
    let no_reason = app
        .operator_post(
            &format!("/api/v1/admin/withdrawals/{id}/reject"),
            Some(json!({})),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let rejected = app
        .operator_post(
            &format!("/api/v1/admin/withdrawals/{id}/reject"),
            Some(json!({"reason": "请先完成实名认证"})),
        )
        .await;
    assert_eq!(rejected.body["status"], "rejected", "{}", rejected.body);
    assert_eq!(rejected.body["reason"], "请先完成实名认证");
    let wallet = app
        .get_as(&courier, "/api/v1/couriers/me/wallet")
        .await
        .body;
    assert_eq!(
        (
            wallet["available_fen"].clone(),
            wallet["withdrawing_fen"].clone()
        ),
        (json!(375), json!(0))
    );
    assert_eq!(wallet["entries"][0]["kind"], "withdrawal_returned");
    let again = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{id}/approve"), None)
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "a rejected one stays rejected"
    );

    // A rejected withdrawal does not count against the day's limit.
    let second = app.withdraw(&courier, json!(250), None).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let second = second.body["id"].as_str().expect("id").to_owned();
    let early = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{second}/paid"), None)
        .await;
    assert_eq!(
        early.status,
        StatusCode::CONFLICT,
        "not paid before approval"
    );
    let approved = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{second}/approve"), None)
        .await;
    assert_eq!(approved.body["status"], "transferring", "{}", approved.body);
    let paid = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{second}/paid"), None)
        .await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
    assert_eq!(balances(&app, &courier).await, (json!(125), json!(0)));
    // 250 today already: another 101 would pass 350.
    let over_day = app.withdraw(&courier, json!(101), None).await;
    assert_eq!(over_day.status, StatusCode::CONFLICT, "{}", over_day.body);
    assert!(over_day.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("350"));

    // Approved but not paid by hand yet: an operator may still call it off.
    let third = app.withdraw(&courier, json!(100), None).await;
    let third = third.body["id"].as_str().expect("id").to_owned();
    app.operator_post(&format!("/api/v1/admin/withdrawals/{third}/approve"), None)
        .await;
    let mine = app.cancel_mine(&courier, &third).await;
    assert_eq!(
        mine.status,
        StatusCode::CONFLICT,
        "the operator may be paying it by hand: {}",
        mine.body
    );
    let called_off = app
        .operator_post(
            &format!("/api/v1/admin/withdrawals/{third}/cancel"),
            Some(json!({"reason": "线下已结清"})),
        )
        .await;
    assert_eq!(
        called_off.body["status"], "cancelled",
        "{}",
        called_off.body
    );
    assert_eq!(called_off.body["reason"], "线下已结清");
    let paid_late = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{third}/paid"), None)
        .await;
    assert_eq!(paid_late.status, StatusCode::CONFLICT);

    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -405 + 250);
    assert_eq!(class(&check, "courier_withdrawing"), 0);
    let unknown = app
        .operator_post(
            "/api/v1/admin/withdrawals/W0000000000000000000000000000000/approve",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn with_transfers_an_operator_cannot_mark_a_withdrawal_paid_by_hand() {
    let app = money_app().await;
    let courier = app.earned("transfer").await;
    let made = app.withdraw(&courier, json!(100), None).await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    app.operator_post(&format!("/api/v1/admin/withdrawals/{id}/approve"), None)
        .await;
    let paid = app
        .operator_post(&format!("/api/v1/admin/withdrawals/{id}/paid"), None)
        .await;
    assert_eq!(paid.status, StatusCode::CONFLICT, "{}", paid.body);
}

#[actix_web::test]
async fn a_withdrawal_is_paid_by_a_transfer_the_courier_confirms() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.money.withdrawal_review = false;
    })
    .await;
    let courier = app.earned("transfer-flow").await;
    let made = app.withdraw(&courier, json!(200), None).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        made.body["status"], "transferring",
        "no review: paid at once"
    );
    let id = made.body["id"].as_str().expect("id").to_owned();

    // WeChat Pay took the transfer: the courier gets package_info for
    // wx.requestMerchantTransfer.
    let waiting = eventually(std::time::Duration::from_secs(5), || async {
        app.get_as(&courier, "/api/v1/couriers/me/withdrawals")
            .await
            .body["withdrawals"][0]["status"]
            == "wait_user_confirm"
    })
    .await;
    assert!(waiting, "the transfer's answer moves it on");
    let mine = app
        .get_as(&courier, "/api/v1/couriers/me/withdrawals")
        .await
        .body;
    let package = mine["withdrawals"][0]["package_info"]
        .as_str()
        .unwrap_or("");
    assert!(package.starts_with("sandbox-package-"), "{mine}");

    let sim = app.wechat.transfer_simulator().clone();
    assert!(sim.confirm_quietly(&id), "the courier confirms in WeChat");
    let (headers, body) = sim.callback_for(&id).expect("a callback");
    // Forged, tampered or stale callbacks change nothing.
    let forged = lastmile_actors::wechat::v3::V3Headers {
        signature: headers.signature.replace(|c: char| c.is_ascii_digit(), "A"),
        ..headers.clone()
    };
    assert_eq!(
        app.transfer_callback(&forged, &body).await.status,
        StatusCode::UNAUTHORIZED
    );
    let tampered = body.replace("\"ciphertext\":\"", "\"ciphertext\":\"AAAA");
    assert_eq!(
        app.transfer_callback(&headers, &tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    let stale = lastmile_actors::wechat::v3::V3Headers {
        timestamp: "1700000000".into(),
        ..headers.clone()
    };
    assert_eq!(
        app.transfer_callback(&stale, &body).await.status,
        StatusCode::UNAUTHORIZED
    );
    let still = app
        .get_as(&courier, "/api/v1/couriers/me/withdrawals")
        .await
        .body;
    assert_eq!(still["withdrawals"][0]["status"], "wait_user_confirm");

    let taken = app.transfer_callback(&headers, &body).await;
    assert_eq!(taken.status, StatusCode::NO_CONTENT, "{}", taken.body);
    let again = app.transfer_callback(&headers, &body).await;
    assert_eq!(
        again.status,
        StatusCode::NO_CONTENT,
        "a repeat is taken and changes nothing"
    );
    let done = app
        .get_as(&courier, "/api/v1/couriers/me/withdrawals")
        .await
        .body;
    assert_eq!(done["withdrawals"][0]["status"], "succeeded", "{done}");
    assert_eq!(done["withdrawals"][0]["package_info"], Value::Null);
    assert_eq!(balances(&app, &courier).await, (json!(175), json!(0)));
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -405 + 200, "paid out once");
}

/// The courier's newest withdrawal once it is `status` (None if it does not
/// get there within 10 s).
async fn newest_once<S, B>(app: &TestApp<S>, courier: &str, status: &str) -> Option<Value>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let reached = eventually(std::time::Duration::from_secs(10), || async {
        app.get_as(courier, "/api/v1/couriers/me/withdrawals")
            .await
            .body["withdrawals"][0]["status"]
            == status
    })
    .await;
    reached.then_some(())?;
    let page = app.get_as(courier, "/api/v1/couriers/me/withdrawals").await;
    Some(page.body["withdrawals"][0].clone())
}

/// Available and withdrawing, from the courier's wallet.
async fn balances<S, B>(app: &TestApp<S>, courier: &str) -> (Value, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let wallet = app.get_as(courier, "/api/v1/couriers/me/wallet").await.body;
    (
        wallet["available_fen"].clone(),
        wallet["withdrawing_fen"].clone(),
    )
}

#[actix_web::test]
async fn withdrawals_are_called_off_by_their_courier_or_an_operator_and_come_back_only_when_wechat_pay_says_so(
) {
    let app = money_app().await;
    let courier = app.earned("cancel").await;
    let (stranger, _) = app.login("cancel-stranger").await;

    // Still reviewing: called off at once, by its courier only.
    let first = app.withdraw(&courier, json!(100), None).await;
    let first = first.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.cancel_mine(&stranger, &first).await.status,
        StatusCode::NOT_FOUND,
        "another's withdrawal is not theirs to see"
    );
    let cancelled = app.cancel_mine(&courier, &first).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["reason"], "cancelled by the courier");
    assert_eq!(balances(&app, &courier).await, (json!(375), json!(0)));
    assert_eq!(
        app.cancel_mine(&courier, &first).await.status,
        StatusCode::CONFLICT,
        "once"
    );
    for bad in ["W0000000000000000000000000000000", "nope"] {
        assert_eq!(
            app.cancel_mine(&courier, bad).await.status,
            StatusCode::NOT_FOUND
        );
    }

    // Waiting for the courier in WeChat: cancelled by WeChat Pay, the money
    // back when its callback says CANCELLED.
    let second = app.withdraw(&courier, json!(100), None).await;
    let second = second.body["id"].as_str().expect("id").to_owned();
    let approve = format!("/api/v1/admin/withdrawals/{second}/approve");
    app.operator_post(&approve, None).await;
    assert!(newest_once(&app, &courier, "wait_user_confirm")
        .await
        .is_some());
    let cancel = format!("/api/v1/admin/withdrawals/{second}/cancel");
    let no_reason = app.operator_post(&cancel, Some(json!({}))).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let asked = app
        .operator_post(&cancel, Some(json!({"reason": "账户信息有误"})))
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert_eq!(
        asked.body["status"], "wait_user_confirm",
        "WeChat Pay is cancelling: nothing comes back yet"
    );
    assert_eq!(balances(&app, &courier).await, (json!(275), json!(100)));
    let sim = app.wechat.transfer_simulator().clone();
    let (headers, body) = sim.callback_for(&second).expect("the bill");
    assert_eq!(
        app.transfer_callback(&headers, &body).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = newest_once(&app, &courier, "cancelled")
        .await
        .expect("cancelled");
    assert!(gone["reason"].as_str().unwrap_or("").contains("cancelled"));
    assert_eq!(balances(&app, &courier).await, (json!(375), json!(0)));

    // The courier confirmed a moment before the cancel: WeChat Pay refuses,
    // the service asks again and finds it paid. Nothing comes back.
    let third = app.withdraw(&courier, json!(100), None).await;
    let third = third.body["id"].as_str().expect("id").to_owned();
    app.operator_post(&format!("/api/v1/admin/withdrawals/{third}/approve"), None)
        .await;
    assert!(newest_once(&app, &courier, "wait_user_confirm")
        .await
        .is_some());
    assert!(sim.confirm_quietly(&third));
    let late = app.cancel_mine(&courier, &third).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert!(
        newest_once(&app, &courier, "succeeded").await.is_some(),
        "asked again after the refusal"
    );
    assert_eq!(balances(&app, &courier).await, (json!(275), json!(0)));
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -405 + 100, "paid out once");
}

#[actix_web::test]
async fn a_transfer_wechat_pay_fails_gives_the_money_back_once() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.money.withdrawal_review = false;
    })
    .await;
    let courier = app.earned("transfer-fail").await;
    let made = app.withdraw(&courier, json!(300), None).await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert!(newest_once(&app, &courier, "wait_user_confirm")
        .await
        .is_some());
    let sim = app.wechat.transfer_simulator().clone();
    assert!(sim.fail_quietly(&id, "REAL_NAME_CHECK_FAIL"));
    let (headers, body) = sim.callback_for(&id).expect("the bill");
    assert_eq!(
        app.transfer_callback(&headers, &body).await.status,
        StatusCode::NO_CONTENT
    );
    let failed = newest_once(&app, &courier, "failed").await.expect("failed");
    assert_eq!(failed["reason"], "REAL_NAME_CHECK_FAIL");
    assert_eq!(balances(&app, &courier).await, (json!(375), json!(0)));
    assert_eq!(
        app.transfer_callback(&headers, &body).await.status,
        StatusCode::NO_CONTENT,
        "a repeated callback is taken and changes nothing"
    );
    assert_eq!(balances(&app, &courier).await, (json!(375), json!(0)));
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -405, "nothing paid out");
    assert_eq!(class(&check, "courier_withdrawing"), 0);
}

#[actix_web::test]
async fn the_sandbox_courier_confirms_and_its_signed_callback_pays_the_withdrawal_across_a_restart()
{
    let dir = tempfile::tempdir().expect("temp dir");
    let mut binary = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", TOKEN),
            ("LASTMILE__MONEY__WITHDRAWAL_REVIEW", "false"),
            ("LASTMILE__DISPATCH__AUTO", "false"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (customer, id) = binary.sandbox_paid_order(&client, "e2e-customer").await;
    let (courier, _) = binary.login(&client, "e2e-courier").await;
    let post = |token: &str, path: &str, body: Value| {
        client
            .post(binary.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    for (token, path, body) in [
        (
            &courier,
            "/api/v1/couriers/me".to_owned(),
            json!({"name": "e2e", "phone": "13800138000"}),
        ),
        (
            &courier,
            "/api/v1/couriers/me/online".to_owned(),
            json!({"place_id": "cainiao-north"}),
        ),
        (&courier, format!("/api/v1/orders/{id}/grab"), json!({})),
        (&courier, format!("/api/v1/orders/{id}/pickup"), json!({})),
        (&courier, format!("/api/v1/orders/{id}/deliver"), json!({})),
        (&customer, format!("/api/v1/orders/{id}/confirm"), json!({})),
    ] {
        let r = post(token, &path, body).await.expect("step");
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
    }
    // 300 fen, 10 % commission: 270 available.
    let made: Value = post(
        &courier,
        "/api/v1/couriers/me/withdrawals",
        json!({"amount_fen": 270}),
    )
    .await
    .expect("withdraw")
    .json()
    .await
    .expect("json");
    let withdrawal = made["id"].as_str().expect("id").to_owned();
    let mine = |binary: &BinaryApp| {
        let url = binary.url("/api/v1/couriers/me/withdrawals");
        let (client, courier) = (client.clone(), courier.clone());
        async move {
            let page: Value = client
                .get(url)
                .bearer_auth(courier)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            page["withdrawals"][0]["status"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }
    };
    let waiting = eventually(std::time::Duration::from_secs(10), || async {
        mine(&binary).await == "wait_user_confirm"
    })
    .await;
    assert!(waiting, "the sandbox took the transfer");

    // The courier confirms in (simulated) WeChat: a signed, encrypted v3
    // callback reaches the binary over HTTP.
    let confirmed = client
        .post(binary.url(&format!("/sandbox/transfer/{withdrawal}/confirm")))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), reqwest::StatusCode::OK);
    let paid = eventually(std::time::Duration::from_secs(10), || async {
        mine(&binary).await == "succeeded"
    })
    .await;
    assert!(paid, "the callback paid the withdrawal");

    binary.kill9();
    binary.launch().await;
    assert_eq!(mine(&binary).await, "succeeded", "durable across kill -9");
    let check = get_json(
        &reqwest::Client::new(),
        binary.url("/api/v1/admin/ledger/check"),
        TOKEN,
    )
    .await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -300 + 270);
    assert_eq!(class(&check, "platform"), 30);
}

/// Today in China, `YYYY-MM-DD` (the day the sandbox's bill lines fall on).
fn china_today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

#[actix_web::test]
async fn the_days_bill_is_compared_with_the_ledger_line_by_line() {
    let app = money_app().await;
    let today = china_today();
    let (customer, openid) = app.login("reconcile-customer").await;
    let agreeing = app.paid_order(&customer, &openid).await;
    // Paid at WeChat Pay, but its notify was lost and nobody asked yet.
    let missed = app.create_order(&customer, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        app.pay_order(&customer, &missed).await.status,
        StatusCode::OK
    );
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&missed).await.expect("paid at the sandbox");
    // Refunded, but the bill says another amount.
    let refunded = app.paid_order(&customer, &openid).await;
    assert_eq!(
        app.cancel_order(&customer, &refunded).await.body["status"],
        "refunding"
    );
    let requested = eventually(std::time::Duration::from_secs(10), || async {
        sim.refunds().iter().any(|(order, _)| *order == refunded)
    })
    .await;
    assert!(requested, "the refund reached the sandbox");
    let signer = app.wechat.pay().signer().clone();
    let notify = crate::payments::refund_notify(
        &signer.appid,
        &signer.mch_id,
        signer.api_key.expose(),
        &refunded,
    );
    app.post_xml("/api/v1/wechat/refund/notify", notify).await;
    assert_eq!(app.status_of(&customer, &refunded).await, "refunded");
    sim.alter_bill_refund(&format!("R{refunded}"), 100);

    assert_eq!(
        app.reconcile_call(false, &format!("date={today}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for bad in ["", "date=2026-13-01", "date=yesterday"] {
        assert_eq!(
            app.reconcile_call(true, bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let report = app.reconcile_call(true, &format!("date={today}")).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let report = report.body;
    assert_eq!(report["date"], today.as_str());
    assert_eq!(report["bill_lines"], 4, "{report}");
    assert_eq!(report["matched"], 2, "{report}");
    let mut found: Vec<(String, String, String)> = report["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or("").to_owned(),
                m["what"].as_str().unwrap_or("").to_owned(),
                m["order_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (
            "amount_differs".to_owned(),
            "refund".to_owned(),
            refunded.clone(),
        ),
        (
            "missing_in_ledger".to_owned(),
            "payment".to_owned(),
            missed.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report}");
    assert!(
        !report.to_string().contains(&agreeing),
        "the agreeing payment is no mismatch"
    );
    assert_eq!(app.metric("lastmile_reconciliation_mismatches").await, 2.0);
    let stored = app.reconcile_call(false, &format!("date={today}")).await;
    assert_eq!(stored.body, report, "the report is kept");
}

#[actix_web::test]
async fn a_bill_that_agrees_has_no_mismatch() {
    let app = money_app().await;
    let (customer, openid) = app.login("reconcile-agree").await;
    app.paid_order(&customer, &openid).await;
    app.paid_order(&customer, &openid).await;
    let report = app
        .reconcile_call(true, &format!("date={}", china_today()))
        .await
        .body;
    assert_eq!(
        (report["bill_lines"].clone(), report["matched"].clone()),
        (json!(2), json!(2)),
        "{report}"
    );
    assert_eq!(report["mismatches"], json!([]));
    // A day without a bill compares nothing with nothing.
    let empty = app.reconcile_call(true, "date=2020-01-01").await.body;
    assert_eq!(
        (empty["bill_lines"].clone(), empty["mismatches"].clone()),
        (json!(0), json!([]))
    );
}

/// Runs `lastmile reconcile` on `data`; answers (exit code, stdout, stderr).
fn reconcile_cli(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LASTMILE__STORAGE__PATH", data)
        .envs(crate::postgres::engine_env(data))
        .env("RUST_LOG", "warn")
        .arg("reconcile")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn lastmile_reconcile_runs_a_day_and_says_when_the_service_holds_the_storage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (code, stdout, stderr) = reconcile_cli(&data, &["--date", "2026-12-02"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("the report as JSON");
    assert_eq!(
        (report["date"].clone(), report["mismatches"].clone()),
        (json!("2026-12-02"), json!([]))
    );
    for bad in [
        &["--date", "02/12/2026"][..],
        &["--day", "2026-12-02"][..],
        &[][..],
    ] {
        let (code, _, stderr) = reconcile_cli(&data, bad);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let binary = BinaryApp::start(&data, &[]).await;
    let (code, _, stderr) = reconcile_cli(&data, &["--date", "2026-12-02"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("POST /api/v1/admin/reconciliation"),
        "{stderr}"
    );
    drop(binary);
}

#[actix_web::test]
async fn a_transfer_wechat_pay_refuses_for_good_fails_and_gives_the_money_back() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.money.withdrawal_review = false;
    })
    .await;
    let (courier, openid) = app.earned_as("transfer-refused").await;
    let sim = app.wechat.transfer_simulator().clone();
    // The merchant's scene does not cover this payee: WeChat Pay says so
    // every time it is asked.
    sim.refuse_transfers_to(&openid, "NO_AUTH");
    let made = app.withdraw(&courier, json!(300), None).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let failed = newest_once(&app, &courier, "failed")
        .await
        .expect("failed, not transferring for ever");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("NO_AUTH"), "{reason}");
    assert_eq!(balances(&app, &courier).await, (json!(375), json!(0)));
    assert!(sim.bills().is_empty(), "WeChat Pay holds no bill of it");
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "courier_withdrawing"), 0);
}

#[actix_web::test]
async fn a_transfer_callback_that_disagrees_on_amount_or_payee_posts_nothing() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
        s.money.withdrawal_review = false;
    })
    .await;
    let courier = app.earned("transfer-mismatch").await;
    let made = app.withdraw(&courier, json!(200), None).await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    assert!(newest_once(&app, &courier, "wait_user_confirm")
        .await
        .is_some());
    let sim = app.wechat.transfer_simulator().clone();
    assert!(sim.confirm_quietly(&id));
    // Signed and encrypted as WeChat Pay would, saying something else.
    for edit in [
        Box::new(|b: &mut lastmile_actors::wechat::transfer::BillStatus| {
            b.transfer_amount = Some(1)
        }) as Box<dyn FnOnce(&mut _)>,
        Box::new(|b: &mut lastmile_actors::wechat::transfer::BillStatus| {
            b.openid = Some("oSomebodyElse".into())
        }),
    ] {
        let (headers, body) = sim.callback_edited(&id, edit).expect("bill");
        let answered = app.transfer_callback(&headers, &body).await;
        assert_eq!(answered.status, StatusCode::NO_CONTENT, "{}", answered.body);
        let mine = app
            .get_as(&courier, "/api/v1/couriers/me/withdrawals")
            .await;
        assert_eq!(mine.body["withdrawals"][0]["status"], "wait_user_confirm");
        assert_eq!(balances(&app, &courier).await, (json!(175), json!(200)));
    }
    let anomalies = app
        .metric("lastmile_payment_anomalies_total{kind=\"transfer_mismatch\"}")
        .await;
    assert!(anomalies >= 2.0, "counted: {anomalies}");
    // What WeChat Pay really says pays it, once.
    let (headers, body) = sim.callback_for(&id).expect("bill");
    assert_eq!(
        app.transfer_callback(&headers, &body).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(newest_once(&app, &courier, "succeeded").await.is_some());
    assert_eq!(balances(&app, &courier).await, (json!(175), json!(0)));
    let check = app.ledger_check().await;
    assert_eq!(check["balanced"], true, "{check}");
}

#[actix_web::test]
async fn a_completion_pays_the_commission_in_force_when_its_order_was_paid() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__MONEY__COMMISSION_PERCENT", "10"),
            ("LASTMILE__DISPATCH__AUTO", "false"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let (customer, id) = app.sandbox_paid_order(&http, "rate-customer").await;
    let (courier, _) = app
        .online_courier(&http, "rate-courier", "王", "cainiao-north")
        .await;
    // The same port across the restart.
    let base = app.url("");
    let post = |token: &str, path: String, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let paid = eventually(std::time::Duration::from_secs(10), || async {
        let o = get_json(&http, app.url(&format!("/api/v1/orders/{id}")), &customer).await;
        o["status"] == "paid"
    })
    .await;
    assert!(paid);
    for step in ["grab", "pickup", "deliver"] {
        let r = post(&courier, format!("/api/v1/orders/{id}/{step}"), json!({}))
            .await
            .expect(step);
        assert!(r.status().is_success(), "{step}: {}", r.status());
    }
    let wallet = get_json(&http, app.url("/api/v1/couriers/me/wallet"), &courier).await;
    assert_eq!(wallet["pending_fen"], 270, "{wallet}");

    // The platform raises its commission; the order was paid under 10 %.
    app.terminate();
    app.set_env("LASTMILE__MONEY__COMMISSION_PERCENT", "20");
    app.launch().await;
    let wallet = get_json(&http, app.url("/api/v1/couriers/me/wallet"), &courier).await;
    assert_eq!(
        wallet["pending_fen"], 270,
        "pending at the paid rate: {wallet}"
    );
    let done = post(&customer, format!("/api/v1/orders/{id}/confirm"), json!({}))
        .await
        .expect("confirm");
    assert!(done.status().is_success());
    let earned = eventually(std::time::Duration::from_secs(10), || async {
        let w = get_json(&http, app.url("/api/v1/couriers/me/wallet"), &courier).await;
        w["available_fen"] != json!(0)
    })
    .await;
    assert!(earned);
    let wallet = get_json(&http, app.url("/api/v1/couriers/me/wallet"), &courier).await;
    assert_eq!(wallet["available_fen"], 270, "300 − ⌊300 × 10 %⌋: {wallet}");
    app.kill9();
}
