//! A payment session as the payments actor keeps it per order, and the
//! parameters a mini-program pays with. Pure values.

use serde::{Deserialize, Serialize};

use super::OrderId;

/// The parameters the mini-program passes to `wx.requestPayment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayParams {
    /// Unix seconds, as a string (WeChat requires a string).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Random string.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=...`.
    pub package: String,
    /// `MD5` or `HMAC-SHA256`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// The signature over appId and the four above.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

/// One order's payment session, owned by the payments actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The order (`out_trade_no`).
    pub order_id: OrderId,
    /// unifiedorder's prepay id.
    pub prepay_id: Option<String>,
    /// What `pay` answered, replayed while the prepay is valid.
    pub params: Option<PayParams>,
    /// When the prepay was made (unix seconds; a plain number keeps the
    /// binary record format simple).
    pub prepaid_at: Option<i64>,
    /// WeChat's transaction id once paid.
    pub transaction_id: Option<String>,
    /// Our refund id once a refund was requested.
    pub out_refund_no: Option<String>,
}

impl PaymentRecord {
    /// An empty session for `order_id`.
    pub fn new(order_id: OrderId) -> Self {
        Self {
            order_id,
            prepay_id: None,
            params: None,
            prepaid_at: None,
            transaction_id: None,
            out_refund_no: None,
        }
    }
}
