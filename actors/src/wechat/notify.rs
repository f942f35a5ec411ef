//! WeChat Pay's notifies, parsed and verified into typed notices before
//! they reach an actor: a forged or malformed one costs the HTTP worker
//! that received it, never the payments actor's queue.

use super::pay::{self, Fields, PayWireError};
use super::PaySigner;
use crate::domain::OrderId;

/// Longest piece of a foreign text (a reason, a body) that goes into a log
/// line or an answer: a hostile peer must not fill the log with 64 KiB.
pub const EXCERPT_CHARS: usize = 200;

/// At most [`EXCERPT_CHARS`] characters of `text`, marked when cut.
pub fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// A verified "this order is paid" from WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidNotice {
    /// Our order id.
    pub out_trade_no: OrderId,
    /// WeChat's transaction id (never empty).
    pub transaction_id: String,
    /// What the order cost (not `cash_fee`: coupons lower that).
    pub total_fee: u32,
}

/// A decrypted refund result from WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotice {
    /// Our order id.
    pub out_trade_no: OrderId,
    /// Our refund id.
    pub out_refund_no: String,
    /// How much was refunded.
    pub refund_fee: u32,
    /// What the order cost.
    pub total_fee: u32,
    /// `SUCCESS`, `CHANGE`, `REFUNDCLOSE`…
    pub refund_status: String,
}

/// What a refund notify said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundNotification {
    /// A decrypted result.
    Result(RefundNotice),
    /// `return_code` FAIL: no result inside, only a reason.
    Failed(String),
}

/// Why a notify was refused (answered FAIL, nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyRefusal {
    /// Not a flat document, bad sign, or undecryptable `req_info`.
    #[error(transparent)]
    Wire(#[from] PayWireError),
    /// A payment notify that reports no payment.
    #[error("not a successful payment")]
    NotSuccess,
    /// Addressed to another app or merchant.
    #[error("appid or mch_id mismatch")]
    WrongMerchant,
    /// A field is missing or does not parse.
    #[error("bad or missing {0}")]
    BadField(&'static str),
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or("")
}

fn amount(fields: &Fields, name: &'static str) -> Result<u32, NotifyRefusal> {
    field(fields, name)
        .parse()
        .map_err(|_| NotifyRefusal::BadField(name))
}

fn order_id(fields: &Fields) -> Result<OrderId, NotifyRefusal> {
    OrderId::parse(field(fields, "out_trade_no"))
        .map_err(|_| NotifyRefusal::BadField("out_trade_no"))
}

fn same_merchant(signer: &PaySigner, fields: &Fields) -> Result<(), NotifyRefusal> {
    if field(fields, "appid") == signer.appid && field(fields, "mch_id") == signer.mch_id {
        Ok(())
    } else {
        Err(NotifyRefusal::WrongMerchant)
    }
}

/// Parses and verifies a pay notify: `sign` over every received field,
/// then return/result codes, appid and mch_id, and the fields we use.
pub fn paid_notice(signer: &PaySigner, body: &[u8]) -> Result<PaidNotice, NotifyRefusal> {
    let fields = pay::from_xml(body)?;
    signer.verify(&fields)?;
    if field(&fields, "return_code") != "SUCCESS" || field(&fields, "result_code") != "SUCCESS" {
        return Err(NotifyRefusal::NotSuccess);
    }
    same_merchant(signer, &fields)?;
    let transaction_id = field(&fields, "transaction_id");
    if transaction_id.is_empty() {
        return Err(NotifyRefusal::BadField("transaction_id"));
    }
    Ok(PaidNotice {
        out_trade_no: order_id(&fields)?,
        transaction_id: transaction_id.to_owned(),
        total_fee: amount(&fields, "total_fee")?,
    })
}

/// Parses a refund notify and decrypts its `req_info` (AES-256-ECB with
/// md5 of the API key: only WeChat Pay and we can make one that decrypts).
pub fn refund_notification(
    signer: &PaySigner,
    body: &[u8],
) -> Result<RefundNotification, NotifyRefusal> {
    let fields = pay::from_xml(body)?;
    // Anyone can post a FAIL (it carries nothing signed): its text is taken,
    // logged and counted only when it names our app and merchant.
    same_merchant(signer, &fields)?;
    if field(&fields, "return_code") != "SUCCESS" {
        return Ok(RefundNotification::Failed(excerpt(field(
            &fields,
            "return_msg",
        ))));
    }
    let info = pay::decrypt_req_info(field(&fields, "req_info"), signer.api_key.expose())?;
    let out_refund_no = field(&info, "out_refund_no");
    if out_refund_no.is_empty() {
        return Err(NotifyRefusal::BadField("out_refund_no"));
    }
    Ok(RefundNotification::Result(RefundNotice {
        out_trade_no: order_id(&info)?,
        out_refund_no: out_refund_no.to_owned(),
        refund_fee: amount(&info, "refund_fee")?,
        total_fee: amount(&info, "total_fee")?,
        refund_status: field(&info, "refund_status").to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::{Secret, SignType};
    use proptest::prelude::*;

    fn signer() -> PaySigner {
        PaySigner {
            appid: "wxapp".into(),
            mch_id: "1900".into(),
            api_key: Secret::new("k".repeat(32)),
            sign_type: SignType::Md5,
        }
    }

    fn signed(mut f: Fields) -> Vec<u8> {
        let s = pay::sign(&f, signer().api_key.expose(), SignType::Md5);
        f.insert("sign".into(), s);
        pay::to_xml(&f).into_bytes()
    }

    fn paid_fields() -> Fields {
        pay::fields([
            ("appid", "wxapp".to_owned()),
            ("mch_id", "1900".to_owned()),
            ("return_code", "SUCCESS".to_owned()),
            ("result_code", "SUCCESS".to_owned()),
            ("out_trade_no", "ORDER1".to_owned()),
            ("transaction_id", "4200".to_owned()),
            ("total_fee", "300".to_owned()),
            ("cash_fee", "200".to_owned()),
        ])
    }

    #[test]
    fn a_signed_notify_becomes_a_notice() {
        let notice = paid_notice(&signer(), &signed(paid_fields())).expect("valid");
        assert_eq!(notice.total_fee, 300, "total_fee, not cash_fee");
        assert_eq!(notice.transaction_id, "4200");
        assert_eq!(notice.out_trade_no.as_str(), "ORDER1");
    }

    #[test]
    fn each_broken_notify_is_refused_for_its_reason() {
        let cases: Vec<(&str, Fields, NotifyRefusal)> = vec![
            (
                "wrong mch",
                {
                    let mut f = paid_fields();
                    f.insert("mch_id".into(), "1".into());
                    f
                },
                NotifyRefusal::WrongMerchant,
            ),
            (
                "not paid",
                {
                    let mut f = paid_fields();
                    f.insert("result_code".into(), "FAIL".into());
                    f
                },
                NotifyRefusal::NotSuccess,
            ),
            (
                "no transaction",
                {
                    let mut f = paid_fields();
                    f.remove("transaction_id");
                    f
                },
                NotifyRefusal::BadField("transaction_id"),
            ),
            (
                "bad fee",
                {
                    let mut f = paid_fields();
                    f.insert("total_fee".into(), "3.00".into());
                    f
                },
                NotifyRefusal::BadField("total_fee"),
            ),
            (
                "bad id",
                {
                    let mut f = paid_fields();
                    f.insert("out_trade_no".into(), "not/an/id".into());
                    f
                },
                NotifyRefusal::BadField("out_trade_no"),
            ),
        ];
        for (why, fields, expected) in cases {
            assert_eq!(
                paid_notice(&signer(), &signed(fields)),
                Err(expected),
                "{why}"
            );
        }
        let mut forged = pay::to_xml(&paid_fields());
        forged = forged.replace("</xml>", "<sign>00</sign></xml>");
        assert_eq!(
            paid_notice(&signer(), forged.as_bytes()),
            Err(NotifyRefusal::Wire(PayWireError::BadSign))
        );
    }

    #[test]
    fn excerpts_are_bounded() {
        let long = "x".repeat(70_000);
        assert!(excerpt(&long).chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt("short"), "short");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_notify_parsers(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert!(paid_notice(&signer(), &body).is_err());
            let _ = refund_notification(&signer(), &body);
        }

        #[test]
        fn arbitrary_xml_like_text_never_panics(body in "(<xml>)?(<[a-z_]{1,12}>(<!\\[CDATA\\[)?[^<]{0,40}(\\]\\]>)?</[a-z_]{1,12}>){0,8}(</xml>)?") {
            let _ = pay::from_xml(body.as_bytes());
            prop_assert!(paid_notice(&signer(), body.as_bytes()).is_err());
            let _ = refund_notification(&signer(), body.as_bytes());
        }

        #[test]
        fn arbitrary_req_info_never_panics(req_info in "[A-Za-z0-9+/=]{0,400}") {
            let _ = pay::decrypt_req_info(&req_info, "k");
            let mut f = pay::fields([
                ("appid", "wxapp".to_owned()),
                ("mch_id", "1900".to_owned()),
                ("return_code", "SUCCESS".to_owned()),
                ("req_info", req_info),
            ]);
            f.insert("x".into(), String::new());
            let _ = refund_notification(&signer(), pay::to_xml(&f).as_bytes());
        }
    }
}
