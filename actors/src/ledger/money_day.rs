//! A China day's money for the console: what customers paid, what went
//! back, the platform's commission, and every courier's balances now.

use actix::prelude::*;

use crate::domain::{ChinaDay, LineKind};

use super::*;

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
    pub date: ChinaDay,
    /// Customers' payments that day.
    pub payments_fen: u64,
    /// Refunds through WeChat Pay that day.
    pub refunds_fen: u64,
    /// The platform's commission on the orders completed that day.
    pub commission_fen: u64,
    /// Every courier's balances now, most available first.
    pub couriers: Vec<CourierBalance>,
    /// The day's lines the sums are made of, by (kind, order id).
    #[serde(skip)]
    pub lines: LedgerDay,
}

/// A China day's money.
#[derive(Message)]
#[rtype(result = "Result<MoneyDay, LedgerError>")]
pub struct GetMoneyDay {
    /// The day.
    pub day: ChinaDay,
}

impl Handler<GetMoneyDay> for LedgerActor {
    type Result = Result<MoneyDay, LedgerError>;

    fn handle(&mut self, GetMoneyDay { day }: GetMoneyDay, _: &mut Self::Context) -> Self::Result {
        self.drain();
        let sums = self.repo.ledger_day(day)?;
        let total = |what: LineKind| -> u64 {
            sums.iter()
                .filter(|((w, _), _)| *w == what)
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
            payments_fen: total(LineKind::Payment),
            refunds_fen: total(LineKind::Refund),
            commission_fen: total(LineKind::Commission),
            date: day,
            couriers,
            lines: sums,
        })
    }
}

impl Ledger {
    /// A China day's money and every courier's balances.
    pub async fn money_day(&self, day: ChinaDay) -> Result<MoneyDay, LedgerError> {
        self.addr.send(GetMoneyDay { day }).await?
    }
}
