//! Reconciliation, pure: WeChat Pay's trade bill of a day against what the
//! ledger posted that day. A payment or refund on one side only, or with
//! another amount, is a mismatch.

use std::collections::BTreeMap;

use crate::domain::{ChinaDay, LedgerDay, LineKind, Mismatch, MismatchKind, Reconciliation};
use crate::wechat::bill::{Bill, BillEntry};

/// What a day is compared with. WeChat Pay dates a line by its own clock,
/// the ledger by when the notify was posted, which is always later: a
/// payment at 23:59:59 posted at 00:00:02 is on the bill of one day and in
/// the ledger of the next. So the bill of the day before and the ledger of
/// the day after are looked at too, for the same line with the same amount.
#[derive(Debug, Clone, Copy)]
pub struct Sides<'a> {
    /// WeChat Pay's bill of the day.
    pub bill: &'a Bill,
    /// WeChat Pay's bill of the day before.
    pub bill_before: &'a Bill,
    /// The ledger's payments and refunds of the day.
    pub ledger: &'a LedgerDay,
    /// The ledger's of the day after (so far).
    pub ledger_after: &'a LedgerDay,
}

/// A bill's lines as `payment` / `refund` → order → fen.
fn billed(bill: &Bill) -> LedgerDay {
    let mut billed: LedgerDay = BTreeMap::new();
    for entry in &bill.entries {
        let (what, order, fen) = match entry {
            BillEntry::Payment {
                out_trade_no,
                amount_fen,
            } => (LineKind::Payment, out_trade_no, *amount_fen),
            BillEntry::Refund {
                out_trade_no,
                amount_fen,
                ..
            } => (LineKind::Refund, out_trade_no, *amount_fen),
        };
        *billed.entry((what, order.clone())).or_default() += fen;
    }
    billed
}

/// Compares a day's bill with the ledger's postings of that day; a line
/// that crossed midnight between WeChat Pay's clock and ours (same line,
/// same amount, one day later in the ledger) agrees.
pub fn compare(date: ChinaDay, sides: Sides<'_>, ran_at_unix_ms: i64) -> Reconciliation {
    let billed_today = billed(sides.bill);
    let billed_before = billed(sides.bill_before);
    let mut mismatches = Vec::new();
    let mut matched = 0;
    // Only bill lines are ever compared, so a commission never gets here.
    let mismatch = |kind, (what, order): &(LineKind, String), bill_fen, ledger_fen| {
        what.on_bill().map(|what| Mismatch {
            kind,
            what,
            order_id: order.clone(),
            bill_fen,
            ledger_fen,
        })
    };
    for (key, &fen) in &billed_today {
        match sides.ledger.get(key) {
            None if sides.ledger_after.get(key) == Some(&fen) => matched += 1,
            None => mismatches.extend(mismatch(
                MismatchKind::MissingInLedger,
                key,
                Some(fen),
                None,
            )),
            Some(&ours) if ours != fen => mismatches.extend(mismatch(
                MismatchKind::AmountDiffers,
                key,
                Some(fen),
                Some(ours),
            )),
            Some(_) => matched += 1,
        }
    }
    let ours = sides
        .ledger
        .iter()
        .filter(|((what, _), _)| what.through_wechat());
    for (key, &fen) in ours {
        // Matched in the day before's report, where it was billed.
        let crossed = billed_before.get(key) == Some(&fen);
        if !billed_today.contains_key(key) && !crossed {
            mismatches.extend(mismatch(MismatchKind::MissingInBill, key, None, Some(fen)));
        }
    }
    Reconciliation {
        date,
        ran_at_unix_ms,
        bill_lines: sides.bill.entries.len() as u64,
        ledger_lines: sides
            .ledger
            .keys()
            .filter(|(what, _)| what.through_wechat())
            .count() as u64,
        matched,
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> ChinaDay {
        ChinaDay::parse(text).expect("day")
    }

    fn day(items: &[(&str, &str, u64)]) -> LedgerDay {
        items
            .iter()
            .map(|(w, o, f)| ((LineKind::parse(w).expect("kind"), o.to_string()), *f))
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
        let none = Bill {
            entries: Vec::new(),
            count: 0,
        };
        let empty = LedgerDay::new();
        let sides = |bill, ledger| Sides {
            bill,
            bill_before: &none,
            ledger,
            ledger_after: &empty,
        };
        let r = compare(date("2026-12-02"), sides(&bill, &ledger), 0);
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
        let agreeing = day(&[
            ("payment", "A", 300),
            ("payment", "B", 450),
            ("refund", "A", 200),
        ]);
        let agreeing = compare(date("2026-12-02"), sides(&bill, &agreeing), 0);
        assert!(agreeing.mismatches.is_empty());
        assert_eq!(agreeing.matched, 3);
    }

    #[test]
    fn a_line_that_crossed_midnight_agrees_only_with_the_same_amount() {
        let paid = |order: &str, fen| BillEntry::Payment {
            out_trade_no: order.into(),
            amount_fen: fen,
        };
        // WeChat Pay: D paid at 23:59:59; the ledger posted it on D+1.
        let bill_d = Bill {
            entries: vec![paid("LATE", 300), paid("OTHER", 200)],
            count: 2,
        };
        let ledger_d = LedgerDay::new();
        let ledger_d1 = day(&[("payment", "LATE", 300), ("payment", "OTHER", 250)]);
        let none = Bill {
            entries: Vec::new(),
            count: 0,
        };
        let d = compare(
            date("2026-12-02"),
            Sides {
                bill: &bill_d,
                bill_before: &none,
                ledger: &ledger_d,
                ledger_after: &ledger_d1,
            },
            0,
        );
        assert_eq!(d.matched, 1, "LATE is on the next day's ledger");
        assert_eq!(d.mismatches.len(), 1, "another amount still disagrees");
        assert_eq!(d.mismatches[0].order_id, "OTHER");
        assert_eq!(d.mismatches[0].kind, MismatchKind::MissingInLedger);
        // The next day: LATE was billed the day before; OTHER was not billed
        // at that amount, so it stays a mismatch on this side too.
        let d1 = compare(
            date("2026-12-03"),
            Sides {
                bill: &none,
                bill_before: &bill_d,
                ledger: &ledger_d1,
                ledger_after: &LedgerDay::new(),
            },
            0,
        );
        let left: Vec<_> = d1.mismatches.iter().map(|m| m.order_id.as_str()).collect();
        assert_eq!(left, vec!["OTHER"]);
    }
}
