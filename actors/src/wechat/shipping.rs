//! WeChat's shipping-info service: the report of a delivered order and
//! what its answer means.

use super::*;

/// One delivered order as WeChat's shipping-info service takes it: by the
/// merchant's order number, 同城配送 (logistics_type 2), one parcel
/// (delivery_mode 1), with the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingReport {
    /// `order_key`: `order_number_type` 1 (mchid + out_trade_no).
    pub order_key: ShippingOrderKey,
    /// 2: 同城配送.
    pub logistics_type: u8,
    /// 1: UNIFIED_DELIVERY.
    pub delivery_mode: u8,
    /// One entry: what was delivered.
    pub shipping_list: Vec<ShippingItem>,
    /// RFC 3339 with milliseconds and +08:00, as WeChat's examples show.
    pub upload_time: String,
    /// The payer.
    pub payer: ShippingPayer,
}

/// `order_key` of a shipping report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingOrderKey {
    /// 1: the merchant's own order number.
    pub order_number_type: u8,
    /// The merchant id.
    pub mchid: String,
    /// The order id.
    pub out_trade_no: String,
}

/// One shipped item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingItem {
    /// What it was (≤ 120 characters).
    pub item_desc: String,
}

/// The payer of a shipping report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingPayer {
    /// Their openid.
    pub openid: String,
}

impl ShippingReport {
    /// The report of order `out_trade_no`, paid by `openid`, delivered.
    pub fn delivered(
        mchid: &str,
        out_trade_no: &str,
        openid: &str,
        item_desc: &str,
        at: time::OffsetDateTime,
    ) -> Self {
        Self {
            order_key: ShippingOrderKey {
                order_number_type: 1,
                mchid: mchid.to_owned(),
                out_trade_no: out_trade_no.to_owned(),
            },
            logistics_type: 2,
            delivery_mode: 1,
            shipping_list: vec![ShippingItem {
                item_desc: item_desc.to_owned(),
            }],
            upload_time: china_rfc3339_millis(at),
            payer: ShippingPayer {
                openid: openid.to_owned(),
            },
        }
    }
}

/// `2022-12-15T13:29:35.120+08:00`: China time, milliseconds.
fn china_rfc3339_millis(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(crate::domain::CHINA);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+08:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// What to do after a shipping report's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingOutcome {
    /// WeChat has it (now, or already: 10060002 delivered already,
    /// 10060003 re-delivery used, 10060023 nothing changed).
    Done,
    /// Busy or not there yet: ask again later (-1, 10060001 the payment
    /// not yet in WeChat's system, 10060012, 10060019, unreachable).
    Retry,
    /// Refused for good (a wrong state or field): an operator must look.
    GiveUp,
}

impl ShippingOutcome {
    /// Classifies a failed `upload_shipping_info`.
    pub fn of_error(error: &WeChatError) -> Self {
        match error {
            WeChatError::Api { errcode, .. } => match errcode {
                10060002 | 10060003 | 10060023 => ShippingOutcome::Done,
                -1 | 10060001 | 10060012 | 10060019 => ShippingOutcome::Retry,
                _ => ShippingOutcome::GiveUp,
            },
            WeChatError::Unreachable(_) => ShippingOutcome::Retry,
            _ => ShippingOutcome::GiveUp,
        }
    }
}

#[cfg(test)]
mod shipping_tests {
    use super::*;

    fn api(errcode: i64) -> WeChatError {
        WeChatError::Api {
            errcode,
            errmsg: String::new(),
        }
    }

    #[test]
    fn shipping_answers_are_done_retried_or_given_up() {
        for done in [10060002, 10060003, 10060023] {
            assert_eq!(ShippingOutcome::of_error(&api(done)), ShippingOutcome::Done);
        }
        for retry in [-1, 10060001, 10060012, 10060019] {
            assert_eq!(
                ShippingOutcome::of_error(&api(retry)),
                ShippingOutcome::Retry
            );
        }
        assert_eq!(
            ShippingOutcome::of_error(&WeChatError::Unreachable(None)),
            ShippingOutcome::Retry
        );
        for refused in [10060004, 10060005, 47001, 268485216] {
            assert_eq!(
                ShippingOutcome::of_error(&api(refused)),
                ShippingOutcome::GiveUp
            );
        }
    }

    #[test]
    fn a_report_is_same_city_one_parcel_by_merchant_order_number_in_china_time() {
        let at = time::macros::datetime!(2026-12-04 05:29:35.120 UTC);
        let report = ShippingReport::delivered("1900000109", "A1", "oPAYER", "校园跑腿配送", at);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "order_key": {"order_number_type": 1, "mchid": "1900000109", "out_trade_no": "A1"},
                "logistics_type": 2,
                "delivery_mode": 1,
                "shipping_list": [{"item_desc": "校园跑腿配送"}],
                "upload_time": "2026-12-04T13:29:35.120+08:00",
                "payer": {"openid": "oPAYER"}
            })
        );
    }
}
