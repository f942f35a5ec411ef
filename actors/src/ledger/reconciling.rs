//! The ledger's side of reconciliation: fetch WeChat Pay's trade bill of
//! a China day, compare it with what the ledger posted that day, keep the
//! report; daily at `money.reconcile_at` for the day before.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::{now_utc, unix_ms, CHINA};
use crate::wechat::{bill, WeChat};

use super::*;

/// How often the ledger looks whether yesterday's reconciliation is due.
pub const RECONCILE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// When and against what the ledger reconciles.
#[derive(Clone)]
pub struct Reconciler {
    /// WeChat Pay (its `downloadbill`).
    pub wechat: Arc<dyn WeChat>,
    /// `money.reconcile_at`, China time.
    pub at: time::Time,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// The China day before the one `now` is in, `YYYY-MM-DD`.
pub fn day_before(now: OffsetDateTime) -> String {
    let today = now.to_offset(CHINA).date();
    today.previous_day().unwrap_or(today).to_string()
}

/// Reconcile one China day (`YYYY-MM-DD`) now.
#[derive(Message)]
#[rtype(result = "Result<Reconciliation, LedgerError>")]
pub struct Reconcile {
    /// The day.
    pub day: String,
}

/// A day's stored reconciliation.
#[derive(Message)]
#[rtype(result = "Result<Option<Reconciliation>, LedgerError>")]
pub struct GetReconciliation {
    /// The day.
    pub day: String,
}

impl LedgerActor {
    /// Runs yesterday's reconciliation once it is due and not done.
    pub(super) fn reconcile_when_due(&mut self, ctx: &mut Context<Self>) {
        let Some(reconciler) = &self.reconciler else {
            return;
        };
        let now = now_utc();
        if now.to_offset(CHINA).time() < reconciler.at {
            return;
        }
        let day = day_before(now);
        if self.reconciling.as_deref() == Some(day.as_str()) {
            return;
        }
        match self.repo.reconciliation(&day) {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.reconciling = Some(day.clone());
                ctx.address().do_send(Reconcile { day });
            }
            Err(e) => {
                tracing::error!(error = %crate::errors::chain(&e), "reconciliations unreadable")
            }
        }
    }

    /// Compares a fetched bill with the ledger's day and keeps the report.
    fn settle_day(&mut self, day: &str, text: &str) -> Result<Reconciliation, LedgerError> {
        let bill = bill::parse(text).map_err(|e| LedgerError::Bill(e.to_string()))?;
        self.drain();
        let ledger = self.repo.ledger_day(day)?;
        let report = compare(day, &bill, &ledger, unix_ms(now_utc()));
        self.repo.save_reconciliation(&report)?;
        metrics::gauge!("lastmile_reconciliation_mismatches").set(report.mismatches.len() as f64);
        if report.mismatches.is_empty() {
            tracing::info!(
                day,
                lines = report.bill_lines,
                "reconciled: the bill agrees"
            );
        } else {
            tracing::warn!(
                day,
                mismatches = report.mismatches.len(),
                "reconciled: the bill disagrees"
            );
        }
        Ok(report)
    }
}

impl Handler<Reconcile> for LedgerActor {
    type Result = ResponseActFuture<Self, Result<Reconciliation, LedgerError>>;

    fn handle(&mut self, Reconcile { day }: Reconcile, _: &mut Self::Context) -> Self::Result {
        let Some(reconciler) = self.reconciler.clone() else {
            return Box::pin(fut::ready(Err(LedgerError::Bill(
                "no WeChat Pay to ask".into(),
            ))));
        };
        let bill_date = day.replace('-', "");
        let fetch = async move { reconciler.wechat.pay().download_bill(&bill_date).await };
        Box::pin(fetch.into_actor(self).map(move |fetched, ledger, _| {
            ledger.reconciling = None;
            let text = fetched.map_err(|e| LedgerError::WeChat(crate::errors::chain(&e)))?;
            let report = ledger.settle_day(&day, &text);
            if let Err(e) = &report {
                tracing::error!(day, error = %crate::errors::chain(e), "reconciliation failed");
            }
            report
        }))
    }
}

impl Handler<GetReconciliation> for LedgerActor {
    type Result = Result<Option<Reconciliation>, LedgerError>;

    fn handle(&mut self, msg: GetReconciliation, _: &mut Self::Context) -> Self::Result {
        Ok(self.repo.reconciliation(&msg.day)?)
    }
}

impl Ledger {
    /// Reconciles a China day (`YYYY-MM-DD`) now.
    pub async fn reconcile(&self, day: String) -> Result<Reconciliation, LedgerError> {
        self.addr.send(Reconcile { day }).await?
    }

    /// A day's stored reconciliation.
    pub async fn reconciliation(&self, day: String) -> Result<Option<Reconciliation>, LedgerError> {
        self.addr.send(GetReconciliation { day }).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_before_is_the_china_day_before() {
        let at = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("time")
        };
        assert_eq!(day_before(at("2026-12-03T01:00:00Z")), "2026-12-02");
        assert_eq!(
            day_before(at("2026-12-03T17:00:00Z")),
            "2026-12-03",
            "already the 4th in China"
        );
    }
}

/// A courier's balances.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CourierBalance {
    /// The courier's openid.
    pub openid: String,
    /// What they may withdraw.
    pub available_fen: i64,
    /// What they asked to withdraw, not yet paid or returned.
    pub withdrawing_fen: i64,
}

/// A China day's money, for the console.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MoneyDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Customers' payments that day.
    pub payments_fen: u64,
    /// Refunds through WeChat Pay that day.
    pub refunds_fen: u64,
    /// The platform's commission on the orders completed that day.
    pub commission_fen: u64,
    /// Every courier's balances now, most available first.
    pub couriers: Vec<CourierBalance>,
}

/// A China day's money.
#[derive(Message)]
#[rtype(result = "Result<MoneyDay, LedgerError>")]
pub struct GetMoneyDay {
    /// The day.
    pub day: String,
}

impl Handler<GetMoneyDay> for LedgerActor {
    type Result = Result<MoneyDay, LedgerError>;

    fn handle(&mut self, GetMoneyDay { day }: GetMoneyDay, _: &mut Self::Context) -> Self::Result {
        self.drain();
        let sums = self.repo.ledger_day(&day)?;
        let total = |what: &str| -> u64 {
            sums.iter()
                .filter(|((w, _), _)| w == what)
                .map(|(_, fen)| *fen)
                .sum()
        };
        let mut couriers: std::collections::BTreeMap<String, CourierBalance> = Default::default();
        for (account, balance) in self.repo.balances()? {
            let (openid, available) = match &account {
                Account::Available(c) => (c.to_string(), true),
                Account::Withdrawing(c) => (c.to_string(), false),
                _ => continue,
            };
            let entry = couriers.entry(openid.clone()).or_insert(CourierBalance {
                openid,
                available_fen: 0,
                withdrawing_fen: 0,
            });
            if available {
                entry.available_fen = balance;
            } else {
                entry.withdrawing_fen = balance;
            }
        }
        let mut couriers: Vec<CourierBalance> = couriers.into_values().collect();
        couriers.sort_by_key(|c| std::cmp::Reverse(c.available_fen));
        Ok(MoneyDay {
            payments_fen: total("payment"),
            refunds_fen: total("refund"),
            commission_fen: total("commission"),
            date: day,
            couriers,
        })
    }
}

impl Ledger {
    /// A China day's money and every courier's balances.
    pub async fn money_day(&self, day: String) -> Result<MoneyDay, LedgerError> {
        self.addr.send(GetMoneyDay { day }).await?
    }
}
