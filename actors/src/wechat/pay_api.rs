//! WeChat Pay v2 API calls (unifiedorder, orderquery, closeorder, refund,
//! refundquery) over a transport: HTTP for the live client, the in-process
//! simulator for the sandbox. Both see the same signed XML.

use async_trait::async_trait;
use rand::distributions::Alphanumeric;
use rand::Rng;

use super::pay::{self, Fields};
use super::{Secret, SignType, WeChatError};
use crate::domain::PayParams;

/// Carries a signed XML request to WeChat Pay and brings the answer back.
#[async_trait]
pub trait PayTransport: Send + Sync + 'static {
    /// POSTs `xml` to `path`; `with_cert` asks for the merchant certificate (mutual TLS).
    async fn post(
        &self,
        path: &'static str,
        xml: String,
        with_cert: bool,
    ) -> Result<Vec<u8>, WeChatError>;
}

/// What the merchant signs with.
#[derive(Debug, Clone)]
pub struct PaySigner {
    /// The mini-program's appid.
    pub appid: String,
    /// The merchant id.
    pub mch_id: String,
    /// The API key.
    pub api_key: Secret,
    /// MD5 or HMAC-SHA256.
    pub sign_type: SignType,
}

impl PaySigner {
    /// Adds appid, mch_id, nonce_str, sign_type (when not MD5) and sign.
    pub fn seal(&self, mut fields: Fields) -> Fields {
        fields.insert("appid".into(), self.appid.clone());
        fields.insert("mch_id".into(), self.mch_id.clone());
        fields.insert("nonce_str".into(), nonce());
        if self.sign_type == SignType::HmacSha256 {
            fields.insert("sign_type".into(), "HMAC-SHA256".into());
        }
        let sign = pay::sign(&fields, self.api_key.expose(), self.sign_type);
        fields.insert("sign".into(), sign);
        fields
    }

    /// The `wx.requestPayment` parameters for a prepay id.
    pub fn request_payment(&self, prepay_id: &str, unix_seconds: i64) -> PayParams {
        let sign_type = match self.sign_type {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        };
        let mut f = pay::fields([
            ("appId", self.appid.clone()),
            ("timeStamp", unix_seconds.to_string()),
            ("nonceStr", nonce()),
            ("package", format!("prepay_id={prepay_id}")),
            ("signType", sign_type.to_owned()),
        ]);
        let pay_sign = pay::sign(&f, self.api_key.expose(), self.sign_type);
        let mut take = |k: &str| f.remove(k).unwrap_or_default();
        PayParams {
            time_stamp: take("timeStamp"),
            nonce_str: take("nonceStr"),
            package: take("package"),
            sign_type: take("signType"),
            pay_sign,
        }
    }

    /// Verifies a document from WeChat Pay (sign mandatory, over all fields).
    pub fn verify(&self, fields: &Fields) -> Result<(), pay::PayWireError> {
        pay::verify(fields, self.api_key.expose(), self.sign_type)
    }
}

/// A 32-character random nonce.
pub fn nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A unifiedorder request (JSAPI).
#[derive(Debug, Clone)]
pub struct UnifiedOrder {
    /// Our order id.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// The payer.
    pub openid: String,
    /// What the payer sees.
    pub body: String,
    /// Where WeChat sends the notify.
    pub notify_url: String,
}

/// What orderquery says about a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    /// Paid.
    Success {
        /// WeChat's transaction id.
        transaction_id: String,
        /// The amount paid.
        total_fee: u32,
    },
    /// Not paid (NOTPAY, USERPAYING, PAYERROR).
    NotPaid,
    /// Closed or revoked.
    Closed,
    /// Paid and refunded.
    Refunded,
    /// WeChat does not know the trade.
    NotFound,
    /// A state this code does not know; logged, treated as not paid.
    Unknown(String),
}

/// What closeorder did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The trade is closed; no payment can arrive any more.
    Closed,
    /// Too late: the customer paid.
    AlreadyPaid,
}

/// A refund request.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// The paid order.
    pub out_trade_no: String,
    /// Our refund id (idempotency key at WeChat).
    pub out_refund_no: String,
    /// The order's amount.
    pub total_fee: u32,
    /// How much to refund.
    pub refund_fee: u32,
    /// Where WeChat sends the refund notify.
    pub notify_url: String,
}

/// What refundquery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    /// The money is back.
    Success,
    /// Still under way.
    Processing,
    /// Failed or needs a manual step.
    Failed(String),
}

/// WeChat Pay calls over a transport.
pub struct PayApi<T> {
    transport: T,
    signer: PaySigner,
}

impl<T: PayTransport> PayApi<T> {
    /// A client that signs with `signer` and talks over `transport`.
    pub fn new(transport: T, signer: PaySigner) -> Self {
        Self { transport, signer }
    }

    /// The transport (the sandbox exposes its simulator through it).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    async fn call(
        &self,
        path: &'static str,
        fields: Fields,
        with_cert: bool,
    ) -> Result<Fields, WeChatError> {
        let started = std::time::Instant::now();
        let xml = pay::to_xml(&self.signer.seal(fields));
        let result = self
            .transport
            .post(path, xml, with_cert)
            .await
            .and_then(|body| self.answer(&body));
        super::record_call(path, started, &result);
        result
    }

    /// Parses and checks an answer: return_code, then its sign.
    fn answer(&self, body: &[u8]) -> Result<Fields, WeChatError> {
        let fields = pay::from_xml(body).map_err(|e| WeChatError::Protocol(e.to_string()))?;
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            let msg = super::notify::excerpt(fields.get("return_msg").map_or("", String::as_str));
            return Err(WeChatError::Pay {
                code: "FAIL".into(),
                message: msg,
            });
        }
        self.signer
            .verify(&fields)
            .map_err(|e| WeChatError::Protocol(format!("answer sign: {e}")))?;
        Ok(fields)
    }

    /// Is an answer about this app and merchant?
    fn same_merchant(&self, answer: &Fields) -> bool {
        answer.get("appid") == Some(&self.signer.appid)
            && answer.get("mch_id") == Some(&self.signer.mch_id)
    }

    /// unifiedorder → prepay_id.
    pub async fn unified_order(&self, req: &UnifiedOrder) -> Result<String, WeChatError> {
        let fields = pay::fields([
            ("body", req.body.clone()),
            ("out_trade_no", req.out_trade_no.clone()),
            ("total_fee", req.total_fee.to_string()),
            ("spbill_create_ip", "127.0.0.1".to_owned()),
            ("notify_url", req.notify_url.clone()),
            ("trade_type", "JSAPI".to_owned()),
            ("openid", req.openid.clone()),
        ]);
        let answer = self.call("/pay/unifiedorder", fields, false).await?;
        result_ok(&answer)?;
        answer
            .get("prepay_id")
            .filter(|p| !p.is_empty())
            .cloned()
            .ok_or_else(|| WeChatError::Protocol("unifiedorder answered no prepay_id".into()))
    }

    /// orderquery by out_trade_no.
    pub async fn order_query(&self, out_trade_no: &str) -> Result<TradeState, WeChatError> {
        let fields = pay::fields([("out_trade_no", out_trade_no.to_owned())]);
        let answer = self.call("/pay/orderquery", fields, false).await?;
        if answer.get("result_code").map(String::as_str) != Some("SUCCESS") {
            return match answer.get("err_code").map(String::as_str) {
                Some("ORDERNOTEXIST") => Ok(TradeState::NotFound),
                _ => Err(result_error(&answer)),
            };
        }
        Ok(
            match answer.get("trade_state").map(String::as_str).unwrap_or("") {
                "SUCCESS" if !self.same_merchant(&answer) => {
                    return Err(WeChatError::Protocol(
                        "orderquery answered for another appid or mch_id".into(),
                    ))
                }
                "SUCCESS" => TradeState::Success {
                    transaction_id: answer.get("transaction_id").cloned().unwrap_or_default(),
                    total_fee: answer
                        .get("total_fee")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                },
                "NOTPAY" | "USERPAYING" | "PAYERROR" => TradeState::NotPaid,
                "CLOSED" | "REVOKED" => TradeState::Closed,
                "REFUND" => TradeState::Refunded,
                other => TradeState::Unknown(other.to_owned()),
            },
        )
    }

    /// closeorder by out_trade_no.
    pub async fn close_order(&self, out_trade_no: &str) -> Result<CloseOutcome, WeChatError> {
        let fields = pay::fields([("out_trade_no", out_trade_no.to_owned())]);
        let answer = self.call("/pay/closeorder", fields, false).await?;
        if answer.get("result_code").map(String::as_str) == Some("SUCCESS") {
            return Ok(CloseOutcome::Closed);
        }
        match answer.get("err_code").map(String::as_str) {
            Some("ORDERPAID") => Ok(CloseOutcome::AlreadyPaid),
            Some("ORDERCLOSED") => Ok(CloseOutcome::Closed),
            _ => Err(result_error(&answer)),
        }
    }

    /// secapi/pay/refund (mutual TLS in live mode).
    pub async fn refund(&self, req: &RefundRequest) -> Result<(), WeChatError> {
        let fields = pay::fields([
            ("out_trade_no", req.out_trade_no.clone()),
            ("out_refund_no", req.out_refund_no.clone()),
            ("total_fee", req.total_fee.to_string()),
            ("refund_fee", req.refund_fee.to_string()),
            ("notify_url", req.notify_url.clone()),
        ]);
        let answer = self.call("/secapi/pay/refund", fields, true).await?;
        result_ok(&answer)
    }

    /// refundquery by out_trade_no (the first refund of the order).
    pub async fn refund_query(&self, out_trade_no: &str) -> Result<RefundState, WeChatError> {
        let fields = pay::fields([("out_trade_no", out_trade_no.to_owned())]);
        let answer = self.call("/pay/refundquery", fields, false).await?;
        result_ok(&answer)?;
        Ok(
            match answer
                .get("refund_status_0")
                .map(String::as_str)
                .unwrap_or("")
            {
                "SUCCESS" => RefundState::Success,
                "PROCESSING" => RefundState::Processing,
                other => RefundState::Failed(other.to_owned()),
            },
        )
    }
}

impl<T: PayTransport> PayApi<T> {
    /// downloadbill (ALL) of a China day, `yyyyMMdd`: the bill's text, or
    /// empty when WeChat Pay has none for that day ("No Bill Exist").
    pub async fn download_bill(&self, bill_date: &str) -> Result<String, WeChatError> {
        let fields = pay::fields([
            ("bill_date", bill_date.to_owned()),
            ("bill_type", "ALL".to_owned()),
        ]);
        let xml = pay::to_xml(&self.signer.seal(fields));
        let started = std::time::Instant::now();
        let result = self.transport.post("/pay/downloadbill", xml, false).await;
        super::record_call("/pay/downloadbill", started, &result);
        let body = result?;
        // The bill is text; an error is WeChat Pay's XML.
        if body.starts_with(b"<xml") {
            let fields = pay::from_xml(&body).map_err(|e| WeChatError::Protocol(e.to_string()))?;
            let message = fields.get("return_msg").cloned().unwrap_or_default();
            if message.contains("No Bill Exist") {
                return Ok(String::new());
            }
            return Err(WeChatError::Pay {
                code: fields
                    .get("error_code")
                    .cloned()
                    .unwrap_or_else(|| "FAIL".into()),
                message: super::notify::excerpt(&message),
            });
        }
        String::from_utf8(body).map_err(|_| WeChatError::Protocol("the bill is not UTF-8".into()))
    }
}

fn result_ok(answer: &Fields) -> Result<(), WeChatError> {
    if answer.get("result_code").map(String::as_str) == Some("SUCCESS") {
        Ok(())
    } else {
        Err(result_error(answer))
    }
}

fn result_error(answer: &Fields) -> WeChatError {
    WeChatError::Pay {
        code: answer
            .get("err_code")
            .map_or_else(|| "FAIL".into(), |c| super::notify::excerpt(c)),
        message: super::notify::excerpt(answer.get("err_code_des").map_or("", String::as_str)),
    }
}

/// WeChat Pay as the actors see it (object-safe, so sandbox and live swap).
#[async_trait]
pub trait WeChatPay: Send + Sync {
    /// What signs for this merchant.
    fn signer(&self) -> &PaySigner;
    /// unifiedorder (JSAPI) → prepay_id.
    async fn unified_order(&self, req: &UnifiedOrder) -> Result<String, WeChatError>;
    /// orderquery.
    async fn order_query(&self, out_trade_no: &str) -> Result<TradeState, WeChatError>;
    /// closeorder.
    async fn close_order(&self, out_trade_no: &str) -> Result<CloseOutcome, WeChatError>;
    /// secapi/pay/refund.
    async fn refund(&self, req: &RefundRequest) -> Result<(), WeChatError>;
    /// refundquery.
    async fn refund_query(&self, out_trade_no: &str) -> Result<RefundState, WeChatError>;
    /// downloadbill (ALL) of a China day `yyyyMMdd` (empty: no bill).
    async fn download_bill(&self, bill_date: &str) -> Result<String, WeChatError>;
}

#[async_trait]
impl<T: PayTransport> WeChatPay for PayApi<T> {
    fn signer(&self) -> &PaySigner {
        &self.signer
    }
    async fn unified_order(&self, req: &UnifiedOrder) -> Result<String, WeChatError> {
        PayApi::unified_order(self, req).await
    }
    async fn order_query(&self, out_trade_no: &str) -> Result<TradeState, WeChatError> {
        PayApi::order_query(self, out_trade_no).await
    }
    async fn close_order(&self, out_trade_no: &str) -> Result<CloseOutcome, WeChatError> {
        PayApi::close_order(self, out_trade_no).await
    }
    async fn refund(&self, req: &RefundRequest) -> Result<(), WeChatError> {
        PayApi::refund(self, req).await
    }
    async fn refund_query(&self, out_trade_no: &str) -> Result<RefundState, WeChatError> {
        PayApi::refund_query(self, out_trade_no).await
    }
    async fn download_bill(&self, bill_date: &str) -> Result<String, WeChatError> {
        PayApi::download_bill(self, bill_date).await
    }
}
