//! Reconciliation, pure: WeChat Pay's trade bill of a day against what the
//! ledger posted that day. A payment or refund on one side only, or with
//! another amount, is a mismatch.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::wechat::bill::{Bill, BillEntry};

/// What disagrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// In WeChat Pay's bill, not in the ledger (a payment we missed).
    MissingInLedger,
    /// In the ledger, not in the bill.
    MissingInBill,
    /// On both sides with different amounts.
    AmountDiffers,
}

/// One disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    /// How they disagree.
    pub kind: MismatchKind,
    /// `payment` or `refund`.
    pub what: String,
    /// The order (`out_trade_no`).
    pub order_id: String,
    /// What the bill says, in fen.
    pub bill_fen: Option<u64>,
    /// What the ledger says, in fen.
    pub ledger_fen: Option<u64>,
}

/// A day's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// The China day, `YYYY-MM-DD`.
    pub date: String,
    /// When it ran (unix ms).
    pub ran_at_unix_ms: i64,
    /// Lines in WeChat Pay's bill.
    pub bill_lines: u64,
    /// Payments and refunds the ledger posted that day.
    pub ledger_lines: u64,
    /// What agrees.
    pub matched: u64,
    /// What does not.
    pub mismatches: Vec<Mismatch>,
}

/// The ledger's side of a day: `payment` / `refund` → order → fen.
pub type LedgerDay = BTreeMap<(String, String), u64>;

/// Compares a bill with the ledger's postings of the same day.
pub fn compare(date: &str, bill: &Bill, ledger: &LedgerDay, ran_at_unix_ms: i64) -> Reconciliation {
    let mut billed: LedgerDay = BTreeMap::new();
    for entry in &bill.entries {
        let (what, order, fen) = match entry {
            BillEntry::Payment {
                out_trade_no,
                amount_fen,
            } => ("payment", out_trade_no, *amount_fen),
            BillEntry::Refund {
                out_trade_no,
                amount_fen,
                ..
            } => ("refund", out_trade_no, *amount_fen),
        };
        *billed.entry((what.into(), order.clone())).or_default() += fen;
    }
    let mut mismatches = Vec::new();
    let mut matched = 0;
    let mismatch = |kind, (what, order): &(String, String), bill_fen, ledger_fen| Mismatch {
        kind,
        what: what.clone(),
        order_id: order.clone(),
        bill_fen,
        ledger_fen,
    };
    for (key, &fen) in &billed {
        match ledger.get(key) {
            None => mismatches.push(mismatch(
                MismatchKind::MissingInLedger,
                key,
                Some(fen),
                None,
            )),
            Some(&ours) if ours != fen => mismatches.push(mismatch(
                MismatchKind::AmountDiffers,
                key,
                Some(fen),
                Some(ours),
            )),
            Some(_) => matched += 1,
        }
    }
    let through_wechat = |what: &str| what == "payment" || what == "refund";
    for (key, &fen) in ledger.iter().filter(|((what, _), _)| through_wechat(what)) {
        if !billed.contains_key(key) {
            mismatches.push(mismatch(MismatchKind::MissingInBill, key, None, Some(fen)));
        }
    }
    Reconciliation {
        date: date.to_owned(),
        ran_at_unix_ms,
        bill_lines: bill.entries.len() as u64,
        ledger_lines: ledger
            .keys()
            .filter(|(what, _)| through_wechat(what))
            .count() as u64,
        matched,
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(items: &[(&str, &str, u64)]) -> LedgerDay {
        items
            .iter()
            .map(|(w, o, f)| ((w.to_string(), o.to_string()), *f))
            .collect()
    }

    #[test]
    fn missing_lines_and_other_amounts_are_mismatches_the_rest_matches() {
        let bill = Bill {
            entries: vec![
                BillEntry::Payment {
                    out_trade_no: "A".into(),
                    amount_fen: 300,
                },
                BillEntry::Payment {
                    out_trade_no: "B".into(),
                    amount_fen: 450,
                },
                BillEntry::Refund {
                    out_trade_no: "A".into(),
                    out_refund_no: "RA".into(),
                    amount_fen: 200,
                },
            ],
            count: 3,
        };
        let ledger = day(&[
            ("payment", "A", 300),
            ("refund", "A", 300),
            ("payment", "C", 100),
        ]);
        let r = compare("2026-12-02", &bill, &ledger, 0);
        assert_eq!(r.matched, 1);
        let kinds: Vec<_> = r
            .mismatches
            .iter()
            .map(|m| (m.kind, m.order_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (MismatchKind::MissingInLedger, "B"),
                (MismatchKind::AmountDiffers, "A"),
                (MismatchKind::MissingInBill, "C"),
            ]
        );
        let agreeing = compare(
            "2026-12-02",
            &bill,
            &day(&[
                ("payment", "A", 300),
                ("payment", "B", 450),
                ("refund", "A", 200),
            ]),
            0,
        );
        assert!(agreeing.mismatches.is_empty());
        assert_eq!(agreeing.matched, 3);
    }
}
