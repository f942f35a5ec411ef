//! Payment sessions as stored.

use super::*;

/// The `wx.requestPayment` parameters handed out, kept to replay them.
#[derive(Serialize, Deserialize)]
struct PayParamsRecord {
    time_stamp: String,
    nonce_str: String,
    package: String,
    sign_type: String,
    pay_sign: String,
}

/// A payment session (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct PaymentV1 {
    order_id: String,
    prepay_id: Option<String>,
    params: Option<PayParamsRecord>,
    prepaid_at: Option<i64>,
    transaction_id: Option<String>,
    out_refund_no: Option<String>,
}

impl Stored for PaymentRecord {
    type Record = PaymentV1;
    fn to_record(&self) -> PaymentV1 {
        PaymentV1 {
            order_id: self.order_id.as_str().to_owned(),
            prepay_id: self.prepay_id.clone(),
            params: self.params.as_ref().map(|p| PayParamsRecord {
                time_stamp: p.time_stamp.clone(),
                nonce_str: p.nonce_str.clone(),
                package: p.package.clone(),
                sign_type: p.sign_type.clone(),
                pay_sign: p.pay_sign.clone(),
            }),
            prepaid_at: self.prepaid_at,
            transaction_id: self.transaction_id.clone(),
            out_refund_no: self.out_refund_no.clone(),
        }
    }
    fn from_record(r: PaymentV1) -> Result<Self, Unreadable> {
        Ok(PaymentRecord {
            order_id: order_id(&r.order_id)?,
            prepay_id: r.prepay_id,
            params: r.params.map(|p| PayParams {
                time_stamp: p.time_stamp,
                nonce_str: p.nonce_str,
                package: p.package,
                sign_type: p.sign_type,
                pay_sign: p.pay_sign,
            }),
            prepaid_at: r.prepaid_at,
            transaction_id: r.transaction_id,
            out_refund_no: r.out_refund_no,
        })
    }
}
