//! The ledger's side of reconciliation: fetch WeChat Pay's trade bill of
//! a China day, compare it with what the ledger posted that day, keep the
//! report; daily at `money.reconcile_at` for the day before.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::{now_utc, unix_ms, ChinaDay, CHINA};
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

/// Reconcile one China day (`YYYY-MM-DD`) now.
#[derive(Message)]
#[rtype(result = "Result<Reconciliation, LedgerError>")]
pub struct Reconcile {
    /// The day.
    pub day: ChinaDay,
}

/// A day's stored reconciliation.
#[derive(Message)]
#[rtype(result = "Result<Option<Reconciliation>, LedgerError>")]
pub struct GetReconciliation {
    /// The day.
    pub day: ChinaDay,
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
        let day = ChinaDay::of(now).before();
        if self.reconciling == Some(day) {
            return;
        }
        match self.repo.reconciliation(day) {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.reconciling = Some(day);
                ctx.address().do_send(Reconcile { day });
            }
            Err(e) => {
                tracing::error!(error = %crate::errors::chain(&e), "reconciliations unreadable")
            }
        }
    }

    /// Compares the fetched bills (the day's and the day before's) with
    /// the ledger's day and the day after, and keeps the report.
    fn settle_day(
        &mut self,
        day: ChinaDay,
        text: &str,
        text_before: &str,
    ) -> Result<Reconciliation, LedgerError> {
        let parse = |text: &str| bill::parse(text).map_err(|e| LedgerError::Bill(e.to_string()));
        let (bill, bill_before) = (parse(text)?, parse(text_before)?);
        self.drain();
        let ledger = self.repo.ledger_day(day)?;
        let ledger_after = self.repo.ledger_day(day.after())?;
        let sides = Sides {
            bill: &bill,
            bill_before: &bill_before,
            ledger: &ledger,
            ledger_after: &ledger_after,
        };
        let report = compare(day, sides, unix_ms(now_utc()));
        self.repo.save_reconciliation(&report)?;
        metrics::gauge!("lastmile_reconciliation_mismatches").set(report.mismatches.len() as f64);
        if report.mismatches.is_empty() {
            tracing::info!(
                %day,
                lines = report.bill_lines,
                "reconciled: the bill agrees"
            );
        } else {
            tracing::warn!(
                %day,
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
        let fetch = async move {
            let pay = reconciler.wechat.pay();
            let today = pay.download_bill(&day.compact()).await?;
            let before = pay.download_bill(&day.before().compact()).await?;
            Ok::<_, crate::wechat::WeChatError>((today, before))
        };
        Box::pin(fetch.into_actor(self).map(move |fetched, ledger, _| {
            ledger.reconciling = None;
            let (text, before) =
                fetched.map_err(|e| LedgerError::WeChat(crate::errors::chain(&e)))?;
            let report = ledger.settle_day(day, &text, &before);
            if let Err(e) = &report {
                tracing::error!(%day, error = %crate::errors::chain(e), "reconciliation failed");
            }
            report
        }))
    }
}

impl Handler<GetReconciliation> for LedgerActor {
    type Result = Result<Option<Reconciliation>, LedgerError>;

    fn handle(&mut self, msg: GetReconciliation, _: &mut Self::Context) -> Self::Result {
        Ok(self.repo.reconciliation(msg.day)?)
    }
}

impl Ledger {
    /// Reconciles a China day (`YYYY-MM-DD`) now.
    pub async fn reconcile(&self, day: ChinaDay) -> Result<Reconciliation, LedgerError> {
        self.addr.send(Reconcile { day }).await?
    }

    /// A day's stored reconciliation.
    pub async fn reconciliation(
        &self,
        day: ChinaDay,
    ) -> Result<Option<Reconciliation>, LedgerError> {
        self.addr.send(GetReconciliation { day }).await?
    }
}
