//! WeChat Pay's trade bill (`downloadbill`, `bill_type=ALL`), pure: its
//! lines as payments and refunds in fen, and the text the sandbox serves.
//! Every value is prefixed with a backtick (so spreadsheets keep long
//! numbers as text); amounts are yuan with two decimals.

/// The columns of an ALL bill, as WeChat Pay names them.
pub const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
/// The first line of the summary that ends a bill.
pub const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// What a bill line records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillEntry {
    /// A payment of `amount_fen` for `out_trade_no`.
    Payment {
        /// Our order id.
        out_trade_no: String,
        /// Fen.
        amount_fen: u64,
    },
    /// A refund of `amount_fen` of `out_trade_no`.
    Refund {
        /// Our order id.
        out_trade_no: String,
        /// Our refund number.
        out_refund_no: String,
        /// Fen.
        amount_fen: u64,
    },
}

/// A parsed bill.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bill {
    /// Its lines.
    pub entries: Vec<BillEntry>,
    /// The summary's count of lines (checked against the lines).
    pub count: u64,
}

/// Why a bill does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the trade bill does not parse: {0}")]
pub struct BillError(pub String);

/// Yuan with up to two decimals (`3.00`) as fen, exactly.
pub fn yuan_to_fen(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || fraction.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = format!("{fraction:0<2}");
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents.parse().ok()?)
}

/// Fen as yuan with two decimals.
pub fn fen_to_yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn values(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|v| v.trim().trim_start_matches('`'))
        .collect()
}

/// Parses an ALL bill.
pub fn parse(text: &str) -> Result<Bill, BillError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok(Bill::default());
    };
    let names = values(header);
    let column = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| BillError(format!("no column {name}")))
    };
    let (trade, state, fee, refund_no, refund_fee) = (
        column("商户订单号")?,
        column("交易状态")?,
        column("应结订单金额")?,
        column("商户退款单号")?,
        column("退款金额")?,
    );
    let mut bill = Bill::default();
    let mut summary = false;
    for line in lines {
        if line.starts_with(SUMMARY_HEADER.split(',').next().unwrap_or("总交易单数")) {
            summary = true;
            continue;
        }
        let v = values(line);
        if summary {
            bill.count = v
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| BillError("bad summary".into()))?;
            break;
        }
        let get = |i: usize| v.get(i).copied().unwrap_or("");
        let amount = |i: usize| {
            yuan_to_fen(get(i)).ok_or_else(|| BillError(format!("bad amount {:?}", get(i))))
        };
        let entry = match get(state) {
            "REFUND" => BillEntry::Refund {
                out_trade_no: get(trade).to_owned(),
                out_refund_no: get(refund_no).to_owned(),
                amount_fen: amount(refund_fee)?,
            },
            "SUCCESS" => BillEntry::Payment {
                out_trade_no: get(trade).to_owned(),
                amount_fen: amount(fee)?,
            },
            // REVOKED and other states move no money.
            _ => continue,
        };
        bill.entries.push(entry);
    }
    if summary && bill.count != bill.entries.len() as u64 {
        return Err(BillError(format!(
            "the summary counts {} lines, the bill has {}",
            bill.count,
            bill.entries.len()
        )));
    }
    Ok(bill)
}

/// One line the sandbox renders.
#[derive(Debug, Clone)]
pub struct RenderLine<'a> {
    /// `yyyy-MM-dd HH:mm:ss`, China time.
    pub at: String,
    /// The entry.
    pub entry: &'a BillEntry,
    /// The payer.
    pub openid: &'a str,
    /// WeChat Pay's transaction id.
    pub transaction_id: &'a str,
}

/// An ALL bill as WeChat Pay writes one (the sandbox's `downloadbill`).
pub fn render(appid: &str, mch_id: &str, lines: &[RenderLine<'_>]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\r\n");
    let (mut paid, mut refunded) = (0u64, 0u64);
    for line in lines {
        let (state, trade_no, paid_fen, refund_no, refund_fen) = match line.entry {
            BillEntry::Payment {
                out_trade_no,
                amount_fen,
            } => ("SUCCESS", out_trade_no.as_str(), *amount_fen, "0", 0),
            BillEntry::Refund {
                out_trade_no,
                out_refund_no,
                amount_fen,
            } => (
                "REFUND",
                out_trade_no.as_str(),
                0,
                out_refund_no.as_str(),
                *amount_fen,
            ),
        };
        paid += paid_fen;
        refunded += refund_fen;
        let refund_id = if refund_fen > 0 {
            "50300000000000000000000001"
        } else {
            "0"
        };
        let refund_state = if refund_fen > 0 { "SUCCESS" } else { "" };
        let cells = [
            line.at.as_str(),
            appid,
            mch_id,
            "0",
            "",
            line.transaction_id,
            trade_no,
            line.openid,
            "JSAPI",
            state,
            "CMC",
            "CNY",
            &fen_to_yuan(paid_fen),
            "0.00",
            refund_id,
            refund_no,
            &fen_to_yuan(refund_fen),
            "0.00",
            if refund_fen > 0 { "ORIGINAL" } else { "" },
            refund_state,
            "校园跑腿",
            "",
            "0.00",
            "0.60%",
            &fen_to_yuan(paid_fen),
            &fen_to_yuan(refund_fen),
            "",
        ];
        let row: Vec<String> = cells.iter().map(|c| format!("`{c}")).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out.push_str(SUMMARY_HEADER);
    out.push_str("\r\n");
    out.push_str(&format!(
        "`{},`{},`{},`0.00,`0.00,`{},`{}\r\n",
        lines.len(),
        fen_to_yuan(paid),
        fen_to_yuan(refunded),
        fen_to_yuan(paid),
        fen_to_yuan(refunded)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two lines as WeChat Pay's documentation shows an ALL bill.
    const DOCUMENTED: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r
`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%,`0.01,`0,`\r
`2014-11-10 16:46:14,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1002780740201411100005729794,`1415635270,`085e9858e90ca40c0b5aee463,`MICROPAY,`REFUND,`OTHERS,`CNY,`0.00,`0.0,`2002780740201411100005729794,`1415635270-R1,`1.00,`0.0,`ORIGINAL,`SUCCESS,`被扫支付测试,`订单额外描述,`0,`0.60%,`1.00,`1.00,`\r
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r
`2,`0.01,`1.00,`0.00,`0,`1.01,`1.00\r
";

    #[test]
    fn a_documented_bill_reads_as_payments_and_refunds_in_fen() {
        let bill = parse(DOCUMENTED).expect("parses");
        assert_eq!(bill.count, 2);
        assert_eq!(
            bill.entries,
            vec![
                BillEntry::Payment {
                    out_trade_no: "1415640626".into(),
                    amount_fen: 1
                },
                BillEntry::Refund {
                    out_trade_no: "1415635270".into(),
                    out_refund_no: "1415635270-R1".into(),
                    amount_fen: 100
                },
            ]
        );
    }

    #[test]
    fn what_the_sandbox_renders_reads_back_and_bad_bills_are_named() {
        let pay = BillEntry::Payment {
            out_trade_no: "A1".into(),
            amount_fen: 450,
        };
        let refund = BillEntry::Refund {
            out_trade_no: "A1".into(),
            out_refund_no: "RA1".into(),
            amount_fen: 450,
        };
        let lines = [
            RenderLine {
                at: "2026-12-02 10:00:00".into(),
                entry: &pay,
                openid: "o1",
                transaction_id: "42",
            },
            RenderLine {
                at: "2026-12-02 11:00:00".into(),
                entry: &refund,
                openid: "o1",
                transaction_id: "42",
            },
        ];
        let text = render("wx1", "1900000109", &lines);
        assert_eq!(parse(&text).expect("parses").entries, vec![pay, refund]);
        assert_eq!(parse("").expect("empty"), Bill::default());
        assert!(parse("a,b\n").is_err(), "not a trade bill");
        let short = text.replace("`2,`4.50", "`3,`4.50");
        assert!(parse(&short).is_err(), "the summary must count the lines");
        assert_eq!(yuan_to_fen("3.5"), Some(350));
        assert_eq!(yuan_to_fen("0.01"), Some(1));
        assert_eq!(yuan_to_fen("1.234"), None);
        assert_eq!(yuan_to_fen("-1.00"), None);
        assert_eq!(fen_to_yuan(305), "3.05");
    }
}
