//! Posting money events: the book's rules. A [`Batch`] reads what it needs
//! (is a key posted, what an escrow holds, the rate an order was paid at)
//! through the repository, decides every posting, balance move, statement
//! line, day line and rate stamp, and hands the repository one
//! [`Postings`] to store atomically. The ledger is the book's only writer,
//! so what it read stays true until its batch is stored.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::domain::{
    Account, Commission, DayLine, Entry, MoneyEvent, OrderId, Posted, Postings, Sequence,
};
use crate::storage::{LedgerRepo, StorageError};

/// The postings of one batch of money events, in the making.
pub struct Batch<'a> {
    repo: &'a dyn LedgerRepo,
    ids: &'a Sequence,
    out: Postings,
    /// Balance moves so far (a completion after its payment in the same
    /// batch reads the escrow the payment filled).
    moved: BTreeMap<Account, i64>,
    /// Keys posted by this batch (an event told twice posts once).
    keys: HashSet<String>,
    /// Rates stamped by this batch.
    rates: HashMap<OrderId, u8>,
    /// Keys asked about up front, and which of them were posted.
    asked: HashSet<String>,
    posted: HashSet<String>,
}

impl<'a> Batch<'a> {
    /// An empty batch over `repo`'s book; statement lines numbered by `ids`.
    pub fn new(repo: &'a dyn LedgerRepo, ids: &'a Sequence) -> Self {
        Self {
            repo,
            ids,
            out: Postings::default(),
            moved: BTreeMap::new(),
            keys: HashSet::new(),
            rates: HashMap::new(),
            asked: HashSet::new(),
            posted: HashSet::new(),
        }
    }

    /// Asks the repository at once which of `events` are posted already
    /// (rather than one read per event).
    pub fn ask_posted<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e MoneyEvent>,
    ) -> Result<(), StorageError> {
        let keys: Vec<String> = events.into_iter().map(MoneyEvent::key).collect();
        self.posted.extend(self.repo.posted_among(&keys)?);
        self.asked.extend(keys);
        Ok(())
    }

    fn is_posted(&self, key: &str) -> Result<bool, StorageError> {
        match self.asked.contains(key) {
            true => Ok(self.posted.contains(key)),
            false => self.repo.is_posted(key),
        }
    }

    /// Posts an inbox event (key `seq`) with the commission its order was
    /// paid under, and takes it out of the inbox; answers whether it was
    /// new (a replayed event only leaves the inbox).
    pub fn post_told(
        &mut self,
        seq: u64,
        event: &MoneyEvent,
        commission: &Commission,
        at_unix_ms: i64,
    ) -> Result<bool, StorageError> {
        self.out.taken.push(seq);
        let percent = self.percent(event, commission)?;
        let fresh = self.post(event, percent, at_unix_ms)?;
        if let (true, MoneyEvent::Paid { order, .. }) = (fresh, event) {
            self.rates.insert(order.clone(), percent);
            self.out.rates.push((order.clone(), percent));
        }
        Ok(fresh)
    }

    /// Posts `event` at `percent` unless its key is posted already;
    /// answers whether it was new.
    pub fn post(
        &mut self,
        event: &MoneyEvent,
        percent: u8,
        at_unix_ms: i64,
    ) -> Result<bool, StorageError> {
        let key = event.key();
        if self.keys.contains(&key) || self.is_posted(&key)? {
            return Ok(false);
        }
        let escrow = match event.escrow() {
            Some(account) => self.balance(&account)?,
            None => 0,
        };
        let posted = Posted {
            at_unix_ms,
            posting: event.posting(escrow, percent),
        };
        for leg in &posted.posting.legs {
            *self.moved.entry(leg.account.clone()).or_insert(0) += leg.amount;
            // Statements are read for couriers' wallets only: the other
            // accounts' history is the postings themselves.
            if matches!(leg.account, Account::Available(_) | Account::Withdrawing(_)) {
                let line = Entry {
                    seq: self.ids.next(at_unix_ms),
                    at_unix_ms,
                    kind: posted.posting.kind,
                    subject: posted.posting.subject.clone(),
                    amount: leg.amount,
                };
                self.out.lines.push((leg.account.clone(), line));
            }
        }
        self.out.days.extend(DayLine::of(&posted));
        self.keys.insert(key);
        self.out.posted.push(posted);
        Ok(true)
    }

    /// How many postings are new.
    pub fn new_postings(&self) -> usize {
        self.out.posted.len()
    }

    /// What the repository stores.
    pub fn finish(mut self) -> Postings {
        self.out.moves = self.moved.into_iter().filter(|(_, m)| *m != 0).collect();
        self.out
    }

    /// A completion pays the commission in force when its order was paid
    /// (stamped then); an order paid before stamps existed pays today's.
    fn percent(&self, event: &MoneyEvent, commission: &Commission) -> Result<u8, StorageError> {
        let MoneyEvent::Completed { order, .. } = event else {
            return Ok(commission.of(event));
        };
        let stamped = match self.rates.get(order) {
            Some(rate) => Some(*rate),
            None => self
                .repo
                .rates_of(std::slice::from_ref(order))?
                .first()
                .copied()
                .flatten(),
        };
        Ok(stamped.unwrap_or_else(|| commission.of(event)))
    }

    /// An account's balance with this batch's moves.
    fn balance(&self, account: &Account) -> Result<i64, StorageError> {
        let moved = self.moved.get(account).copied().unwrap_or(0);
        Ok(self.repo.balance(account)? + moved)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{LineKind, OpenId, PostingKind};
    use crate::storage::Engine;

    fn order(n: u8) -> OrderId {
        OrderId::parse(&format!("oPOSTING{n:02}")).expect("order id")
    }

    fn paid(n: u8, total: u32) -> MoneyEvent {
        MoneyEvent::Paid {
            order: order(n),
            total,
            campus: None,
        }
    }

    fn completed(n: u8, total: u32, tip: u32) -> MoneyEvent {
        MoneyEvent::Completed {
            order: order(n),
            courier: OpenId::parse("oPostingCourier").expect("openid"),
            total,
            tip,
            campus: None,
        }
    }

    fn percent(p: u8) -> Commission {
        Commission {
            default: p,
            ..Commission::default()
        }
    }

    #[test]
    fn a_completion_in_the_payments_batch_pays_out_its_escrow_at_the_stamped_rate() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Engine::sled(&dir.path().join("db"), Duration::from_millis(1)).expect("open");
        let repo = store.ledger_repo();
        let ids = repo.ids();
        let mut batch = Batch::new(repo.as_ref(), &ids);
        assert!(batch
            .post_told(1, &paid(1, 1_000), &percent(10), 0)
            .expect("paid"));
        // The same payment told twice posts once.
        assert!(!batch
            .post_told(2, &paid(1, 1_000), &percent(10), 0)
            .expect("again"));
        // Today's rate is 50 %, the order was paid at 10 %.
        let fresh = batch.post_told(3, &completed(1, 1_000, 200), &percent(50), 0);
        assert!(fresh.expect("completed"));
        let postings = batch.finish();
        assert_eq!(postings.taken, vec![1, 2, 3]);
        assert_eq!(postings.rates, vec![(order(1), 10)]);
        // The escrow was filled and emptied inside the batch: no move left.
        let courier = Account::Available(OpenId::parse("oPostingCourier").expect("openid"));
        assert_eq!(
            postings.moves,
            vec![
                (Account::Clearing, -1_000),
                (Account::Platform, 80),
                (courier.clone(), 920)
            ]
        );
        let lines: Vec<_> = postings
            .lines
            .iter()
            .map(|(a, e)| (a, e.kind, e.amount))
            .collect();
        assert_eq!(lines, vec![(&courier, PostingKind::Earning, 920)]);
        let days: Vec<_> = postings.days.iter().map(|d| (d.what, d.fen)).collect();
        assert_eq!(
            days,
            vec![(LineKind::Payment, 1_000), (LineKind::Commission, 80)]
        );
        repo.write_postings(&postings).expect("write");
        assert_eq!(repo.balance(&courier).expect("balance"), 920);
        assert!(repo.inbox(10).expect("inbox").is_empty());
        assert_eq!(repo.rates_of(&[order(1)]).expect("rates"), vec![Some(10)]);
    }

    #[test]
    fn an_event_posted_by_an_earlier_batch_only_leaves_the_inbox() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Engine::sled(&dir.path().join("db"), Duration::from_millis(1)).expect("open");
        let repo = store.ledger_repo();
        let ids = repo.ids();
        let mut first = Batch::new(repo.as_ref(), &ids);
        first
            .post_told(1, &paid(2, 500), &percent(10), 0)
            .expect("paid");
        repo.write_postings(&first.finish()).expect("write");
        let mut second = Batch::new(repo.as_ref(), &ids);
        assert!(!second
            .post_told(7, &paid(2, 500), &percent(10), 0)
            .expect("again"));
        assert_eq!(second.new_postings(), 0);
        let postings = second.finish();
        assert_eq!(postings.taken, vec![7]);
        assert!(postings.posted.is_empty() && postings.moves.is_empty());
        assert_eq!(
            repo.balance(&Account::Escrow(order(2))).expect("escrow"),
            500
        );
    }
}
