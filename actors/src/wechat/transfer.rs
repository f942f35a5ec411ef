//! WeChat Pay's 商家转账 (API v3): start a transfer, query it by
//! `out_bill_no`, cancel it, and read its callback. Requests are signed
//! with the merchant key and answers verified with the WeChat Pay public
//! key here, over a transport: HTTP in live mode, the simulator in the
//! sandbox — so both exercise the same signed bytes.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::v3::{self, Notification, V3Headers, V3Signer, V3Verifier};
use super::WeChatError;

/// Where transfers are started.
pub const TRANSFER_PATH: &str = "/v3/fund-app/mch-transfer/transfer-bills";
/// The event of a finished transfer's callback.
pub const FINISHED_EVENT: &str = "MCHTRANSFER.BILL.FINISHED";

/// One HTTP exchange with WeChat Pay v3.
#[derive(Debug, Clone)]
pub struct V3Request {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body (empty for GET).
    pub body: String,
    /// The signed `Authorization` header.
    pub authorization: String,
}

/// An answer: status, signature headers, body.
#[derive(Debug, Clone)]
pub struct V3Answer {
    /// HTTP status.
    pub status: u16,
    /// Its signature headers.
    pub headers: V3Headers,
    /// Its body.
    pub body: String,
}

/// Carries v3 requests: HTTP, or the simulator.
#[async_trait]
pub trait V3Transport: Send + Sync + 'static {
    /// Sends one request.
    async fn send(&self, request: V3Request) -> Result<V3Answer, WeChatError>;
}

/// A transfer to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferBill {
    /// The mini-program's appid.
    pub appid: String,
    /// Our id (the withdrawal's), reused by every retry.
    pub out_bill_no: String,
    /// The transfer scene (`wechat.transfer_scene_id`).
    pub transfer_scene_id: String,
    /// The courier.
    pub openid: String,
    /// Fen.
    pub transfer_amount: u32,
    /// What the courier sees (≤ 32 characters).
    pub transfer_remark: String,
    /// Where the callback goes.
    pub notify_url: String,
    /// What the scene asks us to report.
    pub transfer_scene_report_infos: Vec<ReportInfo>,
}

/// One line of the scene report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportInfo {
    /// E.g. `岗位类型`.
    pub info_type: String,
    /// E.g. `校园跑腿`.
    pub info_content: String,
}

/// Where a transfer is, as WeChat Pay says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillState {
    /// Taken.
    Accepted,
    /// Being processed.
    Processing,
    /// Waiting for the courier to confirm in WeChat.
    WaitUserConfirm,
    /// Being transferred after the confirmation.
    Transfering,
    /// Paid.
    Success,
    /// Failed.
    Fail,
    /// Being cancelled.
    Canceling,
    /// Cancelled.
    Cancelled,
}

/// A transfer as WeChat Pay knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillStatus {
    /// Our id.
    pub out_bill_no: String,
    /// WeChat Pay's.
    #[serde(default)]
    pub transfer_bill_no: String,
    /// Where it is.
    pub state: BillState,
    /// For `wx.requestMerchantTransfer` while waiting for the courier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_info: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// Fen, as WeChat Pay has it (callbacks and queries say it; the answer
    /// to a new transfer does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_amount: Option<u32>,
    /// Whom it pays, as WeChat Pay has it (callbacks and queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

/// Whether WeChat Pay's refusal of a new transfer is for good: the same
/// request would be refused again (a bad openid, a scene not granted, a
/// malformed field). Busy, rate-limited, out of funds and our own
/// signature are not: they pass once the cause does.
pub fn refused_for_good(code: &str) -> bool {
    !matches!(
        code,
        "SYSTEM_ERROR" | "FREQUENCY_LIMITED" | "NOT_ENOUGH" | "SIGN_ERROR" | "NOT_FOUND"
    )
}

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Its signature does not hold.
    #[error("callback signature: {0}")]
    Signature(#[source] v3::V3Error),
    /// It does not decrypt or parse.
    #[error("callback content: {0}")]
    Content(String),
}

/// The 商家转账 API over a transport.
pub struct TransferApi {
    transport: Arc<dyn V3Transport>,
    signer: V3Signer,
    verifier: V3Verifier,
    api_v3_key: super::Secret,
}

impl std::fmt::Debug for TransferApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferApi").finish_non_exhaustive()
    }
}

fn nonce() -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    hex::encode_upper(raw)
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl TransferApi {
    /// The API with its keys.
    pub fn new(
        transport: Arc<dyn V3Transport>,
        signer: V3Signer,
        verifier: V3Verifier,
        api_v3_key: super::Secret,
    ) -> Self {
        Self {
            transport,
            signer,
            verifier,
            api_v3_key,
        }
    }

    /// Sends a signed request; answers a verified answer.
    async fn call(
        &self,
        method: &'static str,
        path: String,
        body: String,
    ) -> Result<V3Answer, WeChatError> {
        let authorization = self
            .signer
            .authorization(method, &path, &body, now_unix(), &nonce());
        let started = std::time::Instant::now();
        let answer = self
            .transport
            .send(V3Request {
                method,
                path,
                body,
                authorization,
            })
            .await;
        super::record_call("transfer", started, &answer);
        let answer = answer?;
        // Errors are signed too; an unsigned answer is not WeChat Pay's.
        self.verifier
            .verify(&answer.headers, &answer.body, now_unix())
            .map_err(|e| WeChatError::Protocol(format!("answer signature: {e}")))?;
        Ok(answer)
    }

    fn status_of(answer: &V3Answer) -> Result<BillStatus, WeChatError> {
        if (200..300).contains(&answer.status) {
            return serde_json::from_str(&answer.body)
                .map_err(|e| WeChatError::Protocol(format!("transfer answer: {e}")));
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            code: String,
            #[serde(default)]
            message: String,
        }
        let error: ErrorBody = serde_json::from_str(&answer.body).map_err(|_| {
            WeChatError::Protocol(format!("transfer answered HTTP {}", answer.status))
        })?;
        Err(WeChatError::Pay {
            code: error.code,
            message: error.message,
        })
    }

    /// Starts (or, with the same `out_bill_no`, finds) a transfer.
    pub async fn transfer(&self, bill: &TransferBill) -> Result<BillStatus, WeChatError> {
        let body = serde_json::to_string(bill).map_err(|e| WeChatError::Protocol(e.to_string()))?;
        let answer = self.call("POST", TRANSFER_PATH.into(), body).await?;
        Self::status_of(&answer)
    }

    /// A transfer by our id; None when WeChat Pay never took it.
    pub async fn query(&self, out_bill_no: &str) -> Result<Option<BillStatus>, WeChatError> {
        let path = format!("{TRANSFER_PATH}/out-bill-no/{out_bill_no}");
        let answer = self.call("GET", path, String::new()).await?;
        match Self::status_of(&answer) {
            Err(WeChatError::Pay { code, .. }) if code == "NOT_FOUND" => Ok(None),
            other => other.map(Some),
        }
    }

    /// Asks WeChat Pay to cancel a transfer the courier has not confirmed.
    pub async fn cancel(&self, out_bill_no: &str) -> Result<BillStatus, WeChatError> {
        let path = format!("{TRANSFER_PATH}/out-bill-no/{out_bill_no}/cancel");
        let answer = self.call("POST", path, String::new()).await?;
        Self::status_of(&answer)
    }

    /// Verifies and decrypts a transfer callback.
    pub fn read_callback(
        &self,
        headers: &V3Headers,
        body: &str,
    ) -> Result<BillStatus, CallbackError> {
        self.verifier
            .verify(headers, body, now_unix())
            .map_err(CallbackError::Signature)?;
        let notification: Notification = serde_json::from_str(body)
            .map_err(|e| CallbackError::Content(format!("not a v3 notification: {e}")))?;
        let plain = v3::decrypt_resource(self.api_v3_key.expose(), &notification.resource)
            .map_err(|e| CallbackError::Content(e.to_string()))?;
        serde_json::from_str(&plain)
            .map_err(|e| CallbackError::Content(format!("not a transfer bill: {e}")))
    }
}

/// HTTP to WeChat Pay (`wechat.pay_base`).
pub struct HttpTransport {
    client: reqwest::Client,
    base: String,
}

impl HttpTransport {
    /// A transport to `base`.
    pub fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[async_trait]
impl V3Transport for HttpTransport {
    async fn send(&self, request: V3Request) -> Result<V3Answer, WeChatError> {
        let url = format!("{}{}", self.base, request.path);
        let builder = match request.method {
            "GET" => self.client.get(url),
            _ => self.client.post(url).body(request.body.clone()),
        };
        let response = builder
            .header("Authorization", request.authorization)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .header("User-Agent", "lastmile")
            .send()
            .await
            .map_err(super::unreachable)?;
        let status = response.status().as_u16();
        if status >= 500 {
            return Err(WeChatError::Unreachable(None));
        }
        let headers = V3Headers {
            timestamp: header(response.headers(), "Wechatpay-Timestamp"),
            nonce: header(response.headers(), "Wechatpay-Nonce"),
            signature: header(response.headers(), "Wechatpay-Signature"),
            serial: header(response.headers(), "Wechatpay-Serial"),
        };
        let body = response.text().await.map_err(super::unreachable)?;
        Ok(V3Answer {
            status,
            headers,
            body,
        })
    }
}
