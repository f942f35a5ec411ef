//! The sandbox's 商家转账: checks each request's merchant signature as
//! WeChat Pay would, keeps the bills, answers signed JSON, and — when the
//! simulated courier confirms (`POST /sandbox/transfer/{id}/confirm`) —
//! sends the service a signed, encrypted v3 callback over HTTP.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::transfer::{
    BillState, BillStatus, TransferBill, V3Answer, V3Request, V3Transport, FINISHED_EVENT,
    TRANSFER_PATH,
};
use super::v3::{self, Notification, V3Headers, V3Signer, V3Verifier};
use super::{Secret, WeChatError};

/// The sandbox merchant's key (public: sandbox only, like the sandbox API key).
pub const SANDBOX_MERCHANT_KEY: &str = include_str!("sandbox_keys/merchant_key.pem");
/// The sandbox merchant certificate's serial.
pub const SANDBOX_CERT_SERIAL: &str = "2AF9A6DE5940AC8B3C921540A57A1D2C92098A76";
/// The sandbox WeChat Pay platform's key (signs answers and callbacks).
const SANDBOX_PLATFORM_KEY: &str = include_str!("sandbox_keys/wechatpay_key.pem");
/// The sandbox WeChat Pay public key (what the service verifies with).
pub const SANDBOX_PAY_PUBLIC_KEY: &str = include_str!("sandbox_keys/wechatpay_public.pem");
/// The sandbox WeChat Pay public key's id.
pub const SANDBOX_PAY_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0000000000SANDBOX";
/// The sandbox API v3 key shipped in `config/default.toml`.
pub const SANDBOX_API_V3_KEY: &str = "sandboxv3sandboxv3sandboxv3sandb";

struct SimBill {
    status: BillStatus,
    notify_url: String,
}

/// The simulated 商家转账 backend.
pub struct TransferSimulator {
    merchant: V3Verifier,
    platform: V3Signer,
    api_v3_key: Secret,
    bills: Mutex<HashMap<String, SimBill>>,
    /// New transfers to openids here are refused for good with this code
    /// (tests play a bad openid or a scene not granted).
    refused: Mutex<HashMap<String, String>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for TransferSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferSimulator").finish_non_exhaustive()
    }
}

/// `key="value"` pairs of an `Authorization` header after its scheme.
fn authorization_fields(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.strip_prefix(v3::SCHEME)?.trim_start();
    let mut fields = HashMap::new();
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        fields.insert(key.to_owned(), value.trim_matches('"').to_owned());
    }
    Some(fields)
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random_digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

impl TransferSimulator {
    /// A simulator trusting `merchant` (the service's signing key).
    pub fn new(merchant: V3Verifier, api_v3_key: Secret) -> Result<Self, v3::V3Error> {
        let platform =
            V3Signer::from_pem("sandbox", SANDBOX_PAY_PUBLIC_KEY_ID, SANDBOX_PLATFORM_KEY)?;
        Ok(Self::with_platform(merchant, platform, api_v3_key))
    }

    /// A simulator signing as `platform` (tests that stand it up as a
    /// fake WeChat Pay on 127.0.0.1 for a service in live mode).
    pub fn with_platform(merchant: V3Verifier, platform: V3Signer, api_v3_key: Secret) -> Self {
        Self {
            merchant,
            platform,
            api_v3_key,
            bills: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            http: reqwest::Client::new(),
        }
    }

    /// The platform key the service verifies answers and callbacks with.
    pub fn verifier() -> Result<V3Verifier, v3::V3Error> {
        V3Verifier::from_pem(SANDBOX_PAY_PUBLIC_KEY_ID, SANDBOX_PAY_PUBLIC_KEY)
    }

    fn signed(&self, status: u16, body: String) -> V3Answer {
        let timestamp = now_unix();
        let nonce = random_digits(16);
        let signature = self
            .platform
            .sign(&v3::response_message(timestamp, &nonce, &body));
        V3Answer {
            status,
            headers: V3Headers {
                timestamp: timestamp.to_string(),
                nonce,
                signature,
                serial: self.platform.serial().to_owned(),
            },
            body,
        }
    }

    fn error(&self, status: u16, code: &str, message: &str) -> V3Answer {
        self.signed(
            status,
            serde_json::json!({"code": code, "message": message}).to_string(),
        )
    }

    fn status_answer(&self, status: &BillStatus) -> V3Answer {
        self.signed(200, serde_json::to_string(status).unwrap_or_default())
    }

    /// Does the request carry a valid merchant signature?
    fn signed_by_merchant(&self, request: &V3Request) -> bool {
        let Some(fields) = authorization_fields(&request.authorization) else {
            return false;
        };
        let (Some(timestamp), Some(nonce), Some(signature)) = (
            fields.get("timestamp"),
            fields.get("nonce_str"),
            fields.get("signature"),
        ) else {
            return false;
        };
        let Ok(ts) = timestamp.parse::<i64>() else {
            return false;
        };
        // The merchant signs the request line, not the answer line: check
        // it as WeChat Pay does, over the request's own text.
        let message = v3::request_message(request.method, &request.path, ts, nonce, &request.body);
        self.merchant.verify_message(&message, signature).is_ok()
    }

    fn start(&self, bill: TransferBill) -> V3Answer {
        let valid_no = (5..=32).contains(&bill.out_bill_no.len())
            && bill.out_bill_no.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid_no || bill.transfer_amount == 0 || bill.openid.is_empty() {
            return self.error(400, "PARAM_ERROR", "out_bill_no, openid or transfer_amount");
        }
        let refusal = {
            let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            refused.get(&bill.openid).cloned()
        };
        if let Some(code) = refusal {
            return self.error(403, &code, "this transfer is not allowed");
        }
        let mut bills = self.bills.lock().unwrap_or_else(|p| p.into_inner());
        let entry = bills
            .entry(bill.out_bill_no.clone())
            .or_insert_with(|| SimBill {
                status: BillStatus {
                    out_bill_no: bill.out_bill_no.clone(),
                    transfer_bill_no: format!("1330000{}", random_digits(20)),
                    state: BillState::WaitUserConfirm,
                    package_info: Some(format!("sandbox-package-{}", random_digits(24))),
                    fail_reason: None,
                    transfer_amount: Some(bill.transfer_amount),
                    openid: Some(bill.openid.clone()),
                },
                notify_url: bill.notify_url.clone(),
            });
        // The answer to a new transfer does not repeat the amount or payee;
        // queries and callbacks do.
        let answer = BillStatus {
            transfer_amount: None,
            openid: None,
            ..entry.status.clone()
        };
        self.status_answer(&answer)
    }

    fn find(&self, out_bill_no: &str) -> V3Answer {
        let bills = self.bills.lock().unwrap_or_else(|p| p.into_inner());
        match bills.get(out_bill_no) {
            Some(bill) => self.status_answer(&bill.status),
            None => self.error(404, "NOT_FOUND", "no such bill"),
        }
    }

    /// Moves a bill waiting for its courier to `to`; answers the bill and
    /// where its callback goes.
    fn finish(&self, out_bill_no: &str, to: BillState) -> Option<(BillStatus, String)> {
        self.finish_with(out_bill_no, to, None)
    }

    /// [`Self::finish`], saying why when it fails.
    fn finish_with(
        &self,
        out_bill_no: &str,
        to: BillState,
        reason: Option<&str>,
    ) -> Option<(BillStatus, String)> {
        let mut bills = self.bills.lock().unwrap_or_else(|p| p.into_inner());
        let bill = bills.get_mut(out_bill_no)?;
        if bill.status.state != BillState::WaitUserConfirm {
            return None;
        }
        bill.status.state = to;
        bill.status.package_info = None;
        bill.status.fail_reason = reason.map(str::to_owned);
        Some((bill.status.clone(), bill.notify_url.clone()))
    }

    /// The simulated courier confirms in WeChat: the bill succeeds and the
    /// service hears it by callback. False when no bill waits.
    pub async fn confirm(&self, out_bill_no: &str) -> bool {
        let Some((status, notify_url)) = self.finish(out_bill_no, BillState::Success) else {
            return false;
        };
        self.call_back(&status, &notify_url).await;
        true
    }

    /// Sends the signed, encrypted callback of `status` to `url`.
    async fn call_back(&self, status: &BillStatus, url: &str) {
        let plain = serde_json::to_string(status).unwrap_or_default();
        let Ok(resource) = v3::encrypt_resource(
            self.api_v3_key.expose(),
            &plain,
            &random_digits(12),
            "mch_payment",
            "mch_payment",
        ) else {
            return;
        };
        let notification = Notification {
            id: uuid::Uuid::new_v4().to_string(),
            create_time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            resource_type: "encrypt-resource".into(),
            event_type: FINISHED_EVENT.into(),
            summary: "商家转账单据终态通知".into(),
            resource,
        };
        let body = serde_json::to_string(&notification).unwrap_or_default();
        let signed = self.signed(200, body);
        let sent = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header("Wechatpay-Timestamp", signed.headers.timestamp)
            .header("Wechatpay-Nonce", signed.headers.nonce)
            .header("Wechatpay-Signature", signed.headers.signature)
            .header("Wechatpay-Serial", signed.headers.serial)
            .header("Wechatpay-Signature-Type", v3::SCHEME)
            .body(signed.body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e.without_url(), "sandbox transfer callback not delivered");
        }
    }

    /// The callback WeChat Pay would send for `out_bill_no` now (tests
    /// deliver it themselves to an in-process app): its headers and body.
    pub fn callback_for(&self, out_bill_no: &str) -> Option<(V3Headers, String)> {
        self.callback_edited(out_bill_no, |_| {})
    }

    /// [`Self::callback_for`] with its content changed by `edit` before it
    /// is encrypted and signed (what a leaked key could forge).
    pub fn callback_edited(
        &self,
        out_bill_no: &str,
        edit: impl FnOnce(&mut BillStatus),
    ) -> Option<(V3Headers, String)> {
        let mut status = {
            let bills = self.bills.lock().unwrap_or_else(|p| p.into_inner());
            bills.get(out_bill_no)?.status.clone()
        };
        edit(&mut status);
        let plain = serde_json::to_string(&status).ok()?;
        let resource = v3::encrypt_resource(
            self.api_v3_key.expose(),
            &plain,
            &random_digits(12),
            "mch_payment",
            "mch_payment",
        )
        .ok()?;
        let notification = Notification {
            id: uuid::Uuid::new_v4().to_string(),
            create_time: String::new(),
            resource_type: "encrypt-resource".into(),
            event_type: FINISHED_EVENT.into(),
            summary: String::new(),
            resource,
        };
        let signed = self.signed(200, serde_json::to_string(&notification).ok()?);
        Some((signed.headers, signed.body))
    }

    /// Marks a waiting bill confirmed without a callback (tests that play
    /// the callback themselves).
    pub fn confirm_quietly(&self, out_bill_no: &str) -> bool {
        self.finish(out_bill_no, BillState::Success).is_some()
    }

    /// Refuses every new transfer to `openid` for good with `code` (e.g.
    /// `NO_AUTH`: the scene is not granted; `PARAM_ERROR`: a bad openid).
    pub fn refuse_transfers_to(&self, openid: &str, code: &str) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.insert(openid.to_owned(), code.to_owned());
    }

    /// Fails a waiting bill without a callback, as WeChat Pay does when
    /// the courier's real name does not match (`reason` is WeChat Pay's
    /// code, e.g. `REAL_NAME_CHECK_FAIL`).
    pub fn fail_quietly(&self, out_bill_no: &str, reason: &str) -> bool {
        self.finish_with(out_bill_no, BillState::Fail, Some(reason))
            .is_some()
    }
}

/// A callback a simulated answer owes the service: the bill, and where.
pub type OwedCallback = (BillStatus, String);

impl TransferSimulator {
    /// Answers one request as WeChat Pay would; a cancel also owes the
    /// service its callback, which the caller sends (or not).
    pub fn answer(&self, request: &V3Request) -> (V3Answer, Option<OwedCallback>) {
        if !self.signed_by_merchant(request) {
            let refused = self.error(401, "SIGN_ERROR", "the request signature does not verify");
            return (refused, None);
        }
        let rest = request.path.strip_prefix(TRANSFER_PATH).unwrap_or("?");
        match (request.method, rest) {
            ("POST", "") => match serde_json::from_str::<TransferBill>(&request.body) {
                Ok(bill) => (self.start(bill), None),
                Err(_) => (self.error(400, "PARAM_ERROR", "body"), None),
            },
            ("GET", path) if path.starts_with("/out-bill-no/") => {
                (self.find(&path["/out-bill-no/".len()..]), None)
            }
            ("POST", path) if path.starts_with("/out-bill-no/") && path.ends_with("/cancel") => {
                let no = &path["/out-bill-no/".len()..path.len() - "/cancel".len()];
                match self.finish(no, BillState::Cancelled) {
                    // WeChat Pay answers CANCELING and calls back CANCELLED.
                    Some((status, url)) => {
                        let canceling = BillStatus {
                            state: BillState::Canceling,
                            ..status.clone()
                        };
                        (self.status_answer(&canceling), Some((status, url)))
                    }
                    None => (
                        self.error(400, "INVALID_REQUEST", "not waiting for the user"),
                        None,
                    ),
                }
            }
            _ => (self.error(404, "NOT_FOUND", "no such API"), None),
        }
    }

    /// Every bill it holds.
    pub fn bills(&self) -> Vec<BillStatus> {
        let bills = self.bills.lock().unwrap_or_else(|p| p.into_inner());
        bills.values().map(|b| b.status.clone()).collect()
    }
}

#[async_trait]
impl V3Transport for TransferSimulator {
    async fn send(&self, request: V3Request) -> Result<V3Answer, WeChatError> {
        let (answer, owed) = self.answer(&request);
        if let Some((status, url)) = owed {
            self.call_back(&status, &url).await;
        }
        Ok(answer)
    }
}
