//! Withdrawals paid by 商家转账 across kill -9, against a fake WeChat Pay
//! on 127.0.0.1 that outlives the service (as the real one does): every
//! acknowledged withdrawal survives, none is transferred twice, what
//! WeChat Pay holds and what the ledger says agree, the book balances.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastmile_actors::wechat::sandbox_transfer::TransferSimulator;
use lastmile_actors::wechat::transfer::{V3Request, TRANSFER_PATH};
use lastmile_actors::wechat::v3::{V3Headers, V3Signer, V3Verifier};
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{eventually, get_json, BinaryApp};
use crate::money::{class, orders_on_disk, stored_order, TOKEN};
use crate::secrets::{live_env, LIVE_V3_KEY};

/// The courier whose earnings are on disk before the service starts.
const COURIER: &str = "oPAYOUTCOURIER0000000000001";
/// Completed orders of 300 fen each: 270 earned apiece at 10 %.
const ORDERS: usize = 10;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/v3/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("fixture")
}

/// WeChat Pay's 商家转账 as the simulator plays it, with faults on the
/// wire while `faults` holds: of the transfers sent, one in three is taken
/// but its answer lost (HTTP 500), one in three refused before it is
/// taken (503).
struct FakeWeChatPay {
    sim: TransferSimulator,
    faults: AtomicBool,
    transfers_sent: AtomicUsize,
    /// `out_bill_no`s sent again after WeChat Pay had taken them.
    sent_again: Mutex<Vec<String>>,
}

impl FakeWeChatPay {
    fn new() -> Self {
        let merchant =
            V3Verifier::from_pem("merchant", &fixture("merchant_public.pem")).expect("key");
        let platform = V3Signer::from_pem("wx", "PUB_KEY_ID_0123", &fixture("wechatpay_key.pem"))
            .expect("key");
        Self {
            sim: TransferSimulator::with_platform(merchant, platform, Secret::new(LIVE_V3_KEY)),
            faults: AtomicBool::new(true),
            transfers_sent: AtomicUsize::new(0),
            sent_again: Mutex::new(Vec::new()),
        }
    }

    fn respond(&self, req: &Request) -> ResponseTemplate {
        let request = V3Request {
            method: if req.method.as_str() == "POST" {
                "POST"
            } else {
                "GET"
            },
            path: req.url.path().to_owned(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            authorization: req
                .headers
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        };
        if request.method == "POST" && request.path == TRANSFER_PATH {
            let no = serde_json::from_str::<Value>(&request.body)
                .ok()
                .and_then(|b| b["out_bill_no"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if self.sim.bills().iter().any(|b| b.out_bill_no == no) {
                self.sent_again
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(no);
            }
            if self.faults.load(Ordering::SeqCst) {
                match self.transfers_sent.fetch_add(1, Ordering::SeqCst) % 3 {
                    0 => {
                        let _taken = self.sim.answer(&request);
                        return ResponseTemplate::new(500);
                    }
                    1 => return ResponseTemplate::new(503),
                    _ => {}
                }
            }
        }
        let (answer, _) = self.sim.answer(&request);
        ResponseTemplate::new(answer.status)
            .insert_header("Wechatpay-Timestamp", answer.headers.timestamp.as_str())
            .insert_header("Wechatpay-Nonce", answer.headers.nonce.as_str())
            .insert_header("Wechatpay-Signature", answer.headers.signature.as_str())
            .insert_header("Wechatpay-Serial", answer.headers.serial.as_str())
            .set_body_string(answer.body)
    }

    /// The `out_bill_no` of every bill it holds.
    fn bills(&self) -> BTreeSet<String> {
        self.sim
            .bills()
            .into_iter()
            .map(|b| b.out_bill_no)
            .collect()
    }
}

/// A fake WeChat: jscode2session knows the courier; 商家转账 is `pay`.
async fn fake_wechat(pay: Arc<FakeWeChatPay>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"openid":"{COURIER}","session_key":"c2Vzc2lvbg=="}}"#),
            "text/plain",
        ))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/v3/fund-app/mch-transfer/"))
        .respond_with(move |req: &Request| pay.respond(req))
        .mount(&server)
        .await;
    server
}

/// Ten completed orders of `COURIER`'s, written before the service exists
/// (the ledger's migration posts their earnings at start).
fn earnings_on_disk(data: &std::path::Path) {
    use lastmile_actors::domain::{Event, OpenId};
    let customer = OpenId::parse("oPAYOUTCUSTOMER").expect("openid");
    let courier = OpenId::parse(COURIER).expect("openid");
    let completed = [
        Event::PaymentConfirmed,
        Event::PickUp,
        Event::Deliver,
        Event::Confirm,
    ];
    let orders: Vec<_> = (0..ORDERS)
        .map(|_| stored_order(&customer, &courier, 0, &completed))
        .collect();
    orders_on_disk(data, &orders, false);
}

/// The courier's withdrawals by id.
async fn withdrawals(
    client: &reqwest::Client,
    binary: &BinaryApp,
    token: &str,
) -> BTreeMap<String, Value> {
    let page: Value = client
        .get(binary.url("/api/v1/couriers/me/withdrawals?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    page["withdrawals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| (w["id"].as_str().unwrap_or("").to_owned(), w.clone()))
        .collect()
}

/// Posts WeChat Pay's callback for one bill to the service.
async fn call_back(client: &reqwest::Client, binary: &BinaryApp, headers: V3Headers, body: String) {
    let answer = client
        .post(binary.url("/api/v1/wechat/transfer/notify"))
        .header("Content-Type", "application/json")
        .header("Wechatpay-Timestamp", headers.timestamp)
        .header("Wechatpay-Nonce", headers.nonce)
        .header("Wechatpay-Signature", headers.signature)
        .header("Wechatpay-Serial", headers.serial)
        .body(body)
        .send()
        .await
        .expect("callback");
    assert_eq!(answer.status(), reqwest::StatusCode::NO_CONTENT);
}

/// Thirty withdrawals at once; once some are acknowledged and transfers
/// are on the wire (lost answers, refusals), kill -9.
async fn withdraw_under_load_then_kill(
    client: &reqwest::Client,
    binary: &mut BinaryApp,
    token: &str,
    pay: &FakeWeChatPay,
) -> BTreeSet<String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..30 {
        let request = client
            .post(binary.url("/api/v1/couriers/me/withdrawals"))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("load-{i}"))
            .json(&json!({"amount_fen": 100}))
            .send();
        let tx = tx.clone();
        actix_web::rt::spawn(async move {
            let acked = match request.await {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|w| w["id"].as_str().map(str::to_owned)),
                _ => None,
            };
            let _ = tx.send(acked);
        });
    }
    drop(tx);
    let mut acked = BTreeSet::new();
    while acked.len() < 8 {
        match rx.recv().await {
            Some(answer) => acked.extend(answer),
            None => break,
        }
    }
    let on_the_wire = eventually(Duration::from_secs(10), || async {
        pay.transfers_sent.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(on_the_wire, "a lost answer, a refusal and a transfer taken");
    binary.kill9();
    // Answers that made it out before the kill are acknowledgements too.
    while let Some(answer) = rx.recv().await {
        acked.extend(answer);
    }
    acked
}

#[actix_web::test]
async fn withdrawals_under_load_survive_kill_9_and_are_transferred_at_most_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    earnings_on_disk(&data);
    let pay = Arc::new(FakeWeChatPay::new());
    let server = fake_wechat(pay.clone()).await;
    let mut env = live_env();
    env.push(("LASTMILE__WECHAT__API_BASE", server.uri()));
    env.push(("LASTMILE__WECHAT__PAY_BASE", server.uri()));
    env.push(("LASTMILE__ADMIN__TOKEN", TOKEN.into()));
    env.push(("LASTMILE__MONEY__WITHDRAWAL_REVIEW", "false".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut binary = BinaryApp::start(&data, &env).await;
    let client = reqwest::Client::new();
    let (courier, openid) = binary.login(&client, "payout-courier").await;
    assert_eq!(openid, COURIER);

    let acked = withdraw_under_load_then_kill(&client, &mut binary, &courier, &pay).await;
    pay.faults.store(false, Ordering::SeqCst);
    binary.launch().await;

    // At start the service asks WeChat Pay about every unfinished transfer:
    // one it took moves on, one it never took is sent again.
    let settled = eventually(Duration::from_secs(20), || async {
        withdrawals(&client, &binary, &courier)
            .await
            .values()
            .all(|w| w["status"] == "wait_user_confirm")
    })
    .await;
    let listed = withdrawals(&client, &binary, &courier).await;
    assert!(settled, "every transfer reached WeChat Pay: {listed:?}");
    let ids: BTreeSet<String> = listed.keys().cloned().collect();
    assert!(
        acked.is_subset(&ids),
        "none acknowledged is lost: {acked:?} vs {ids:?}"
    );
    assert!(ids.len() <= 27, "never more than was available");
    assert_eq!(
        pay.bills(),
        ids,
        "WeChat Pay holds a bill for each withdrawal and for nothing else"
    );
    assert_eq!(
        *pay.sent_again.lock().unwrap_or_else(|p| p.into_inner()),
        Vec::<String>::new(),
        "a transfer WeChat Pay had taken is queried, never sent again"
    );
    let asked = 100 * ids.len() as i64;
    let earned = 270 * ORDERS as i64;
    let wallet = get_json(&client, binary.url("/api/v1/couriers/me/wallet"), &courier).await;
    assert_eq!(wallet["available_fen"], json!(earned - asked), "{wallet}");
    assert_eq!(wallet["withdrawing_fen"], json!(asked));

    // The courier confirms all but one in WeChat; WeChat Pay fails that one.
    let failed = ids.iter().next().expect("one").clone();
    for id in &ids {
        if *id == failed {
            assert!(pay.sim.fail_quietly(id, "REAL_NAME_CHECK_FAIL"));
        } else {
            assert!(pay.sim.confirm_quietly(id));
        }
        let (headers, body) = pay.sim.callback_for(id).expect("bill");
        call_back(&client, &binary, headers, body).await;
    }
    binary.kill9();
    binary.launch().await;
    let after = withdrawals(&client, &binary, &courier).await;
    for (id, w) in &after {
        let want = if *id == failed { "failed" } else { "succeeded" };
        assert_eq!(w["status"], want, "{id}");
    }
    let paid = asked - 100;
    let wallet = get_json(&client, binary.url("/api/v1/couriers/me/wallet"), &courier).await;
    assert_eq!(wallet["available_fen"], json!(earned - paid), "{wallet}");
    assert_eq!(wallet["withdrawing_fen"], json!(0));
    let check = get_json(&client, binary.url("/api/v1/admin/ledger/check"), TOKEN).await;
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(class(&check, "clearing"), -300 * ORDERS as i64 + paid);
    assert_eq!(class(&check, "courier_withdrawing"), 0);
    assert_eq!(
        pay.bills(),
        ids,
        "nothing sent after the restarts: {:?}",
        pay.sent_again.lock().unwrap_or_else(|p| p.into_inner())
    );
}
