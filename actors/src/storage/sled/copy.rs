//! The whole store as items, for `lastmile store copy`: every tree read in
//! key order, items written where they are missing.

use std::ops::Bound;

use ::sled::transaction::ConflictableTransactionError;

use super::ledger::{courier_key, day_key, entry_key, move_balance, status_key};
use super::*;
use crate::domain::{
    Account, ChinaDay, DayLine, Entry, LineKind, MoneyEvent, ObjectKey, Posted, Reconciliation,
    Visibility, Withdrawal, WithdrawalId,
};
use crate::storage::copy::{Dump, Item, Kind, Reader};
use crate::storage::ObjectRepo;

/// A sled store and the objects beside it, seen whole.
pub struct SledDump {
    store: SledStore,
    objects: SledObjects,
}

impl SledDump {
    /// `store` with its objects.
    pub fn new(store: SledStore, objects: SledObjects) -> Self {
        Self { store, objects }
    }

    /// The trees a kind is read from, in order.
    fn trees(&self, kind: Kind) -> Vec<&::sled::Tree> {
        let i = &self.store.inner;
        match kind {
            Kind::Orders => vec![&i.active, &i.archive],
            Kind::IdempotencyKeys => vec![&i.idempotency],
            Kind::Payments => vec![&i.payments],
            Kind::Sessions => vec![&i.sessions],
            Kind::Blocks => vec![&i.blocked],
            Kind::Operators => vec![&i.operators],
            Kind::FormIds => vec![&i.formids],
            Kind::Grants => vec![&i.grants],
            Kind::Tokens => vec![&i.meta],
            Kind::ShareCodes => vec![&i.share_codes],
            Kind::Couriers => vec![&i.couriers],
            Kind::CourierReleases => vec![&i.courier_releases],
            Kind::Uploads => vec![&i.uploads],
            Kind::UploadDays => vec![&i.upload_days],
            Kind::Objects => vec![],
            Kind::Outbox => vec![&i.outbox],
            Kind::LedgerInbox => vec![&i.ledger_inbox],
            Kind::Postings => vec![&i.ledger_postings],
            Kind::Statements => vec![&i.ledger_entries],
            Kind::DayLines => vec![&i.ledger_days],
            Kind::Rates => vec![&i.ledger_rates],
            Kind::Withdrawals => vec![&i.withdrawals],
            Kind::WithdrawalKeys => vec![&i.withdrawal_keys],
            Kind::Reconciliations => vec![&i.reconciliations],
        }
    }

    /// The tree, key and value an item is kept under.
    fn place(&self, item: &Item) -> Result<(&::sled::Tree, Vec<u8>, Vec<u8>), StorageError> {
        let i = &self.store.inner;
        Ok(match item {
            Item::Order(order) => {
                let tree = if order.status().is_terminal() {
                    &i.archive
                } else {
                    &i.active
                };
                (
                    tree,
                    order.id.as_str().into(),
                    encode_order(order.as_ref())?,
                )
            }
            Item::IdempotencyKey {
                customer,
                key,
                order,
            } => (
                &i.idempotency,
                idempotency_key(customer, key),
                order.as_str().into(),
            ),
            Item::Payment(p) => (&i.payments, p.order_id.as_str().into(), store(p)?),
            Item::Session {
                token_hash,
                session,
            } => (&i.sessions, token_hash.to_vec(), store(session)?),
            Item::Block { openid, block } => (&i.blocked, openid.as_str().into(), store(block)?),
            Item::Operator(o) => (&i.operators, o.name.as_str().into(), store(o)?),
            Item::FormId {
                openid,
                expires_at,
                id,
                pooled,
            } => {
                let mut key = user_prefix(openid);
                key.extend_from_slice(&expires_at.to_be_bytes());
                key.extend_from_slice(&id.to_be_bytes());
                (&i.formids, key, store(pooled)?)
            }
            Item::Grant {
                openid,
                template,
                left,
            } => (
                &i.grants,
                grant_key(openid, template),
                left.to_be_bytes().into(),
            ),
            Item::Token(token) => (&i.meta, TOKEN_KEY.into(), store(token)?),
            Item::ShareCode { scene, page, url } => (
                &i.share_codes,
                [scene.as_bytes(), b"\0", page.as_bytes()].concat(),
                url.as_str().into(),
            ),
            Item::Courier(c) => (&i.couriers, c.openid.as_str().into(), encode_courier(c)?),
            Item::CourierReleases { openid, day, n } => (
                &i.courier_releases,
                format!("{}\0{day}", openid.as_str()).into_bytes(),
                n.to_be_bytes().into(),
            ),
            Item::Upload(u) => (&i.uploads, u.id.as_str().into(), store(u)?),
            Item::UploadDay { openid, day, n } => (
                &i.upload_days,
                format!("{}\0{day}", openid.as_str()).into_bytes(),
                n.to_be_bytes().into(),
            ),
            Item::Outbox(entry) => (&i.outbox, entry.id.to_be_bytes().into(), store(entry)?),
            Item::LedgerInbox { seq, event } => {
                (&i.ledger_inbox, seq.to_be_bytes().into(), store(event)?)
            }
            Item::Posting(p) => (&i.ledger_postings, p.posting.key.as_str().into(), store(p)?),
            Item::Statement { account, entry } => (
                &i.ledger_entries,
                entry_key(&account.key(), entry.seq),
                store(entry)?,
            ),
            Item::DayLine(line) => (&i.ledger_days, day_key(line), line.fen.to_be_bytes().into()),
            Item::Rate { order, percent } => {
                (&i.ledger_rates, order.as_str().into(), vec![*percent])
            }
            Item::Withdrawal(w) => (&i.withdrawals, w.id.as_str().into(), store(w)?),
            Item::WithdrawalKey {
                courier,
                key,
                withdrawal,
            } => (
                &i.withdrawal_keys,
                courier_key(courier, key.as_bytes()),
                withdrawal.as_str().into(),
            ),
            Item::Reconciliation(r) => (&i.reconciliations, r.date.to_string().into(), store(r)?),
            Item::Object(_) => return Err(corrupt("objects are files")),
        })
    }

    /// Writes one item if missing; true when written.
    fn import_one(&self, item: &Item) -> Result<bool, StorageError> {
        if let Item::Object(object) = item {
            if self
                .objects
                .get_object(object.visibility, &object.key)?
                .is_some()
            {
                return Ok(false);
            }
            self.objects.put_object(object)?;
            return Ok(true);
        }
        let (tree, key, value) = self.place(item)?;
        if tree.contains_key(&key)? {
            return Ok(false);
        }
        match item {
            Item::Posting(posted) => self.post(posted, &key, &value)?,
            Item::Withdrawal(w) => {
                let i = &self.store.inner;
                let id = w.id.as_str().as_bytes();
                i.withdrawals_by_courier
                    .insert(courier_key(&w.courier, id), &[])?;
                i.withdrawals_by_status
                    .insert(status_key(w.status, id), &[])?;
                tree.insert(key, value)?;
            }
            _ => {
                tree.insert(key, value)?;
            }
        }
        Ok(true)
    }

    /// A posting and its balance moves, together.
    fn post(&self, posted: &Posted, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let i = &self.store.inner;
        (&i.ledger_postings, &i.ledger_balances)
            .transaction(|(postings, balances)| {
                postings.insert(key, value)?;
                for leg in &posted.posting.legs {
                    move_balance(balances, &leg.account, leg.amount)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }
}

/// The `meta` key of the access token (the tree's other keys are the
/// store's own marks).
const TOKEN_KEY: &str = "access_token";

fn corrupt(key: &str) -> StorageError {
    StorageError::Corrupt { key: key.into() }
}

fn text(bytes: &[u8], tree: &str) -> Result<String, StorageError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(tree))
}

fn openid_of(bytes: &[u8], tree: &str) -> Result<OpenId, StorageError> {
    OpenId::parse(&text(bytes, tree)?).map_err(|_| corrupt(tree))
}

fn be_u32(bytes: &[u8], tree: &str) -> Result<u32, StorageError> {
    <[u8; 4]>::try_from(bytes)
        .map(u32::from_be_bytes)
        .map_err(|_| corrupt(tree))
}

fn be_u64(bytes: &[u8], tree: &str) -> Result<u64, StorageError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(tree))
}

/// `a \0 b` split at its first 0 byte.
fn split(key: &[u8], tree: &str) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
    let at = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt(tree))?;
    Ok((key[..at].to_vec(), key[at + 1..].to_vec()))
}

/// `openid \0 day`.
fn user_day(key: &[u8], tree: &str) -> Result<(OpenId, ChinaDay), StorageError> {
    let (openid, day) = split(key, tree)?;
    let day = ChinaDay::parse(&text(&day, tree)?).map_err(|_| corrupt(tree))?;
    Ok((openid_of(&openid, tree)?, day))
}

/// The item a tree's entry holds (None: a key that is not one, such as
/// the marks in `meta`).
fn item_of(kind: Kind, key: &[u8], value: &[u8]) -> Result<Option<Item>, StorageError> {
    let name = kind.name();
    Ok(Some(match kind {
        Kind::Orders => Item::Order(Box::new(decode_order(value, &text(key, name)?)?)),
        Kind::IdempotencyKeys => {
            let (customer, idem) = split(key, name)?;
            Item::IdempotencyKey {
                customer: openid_of(&customer, name)?,
                key: IdempotencyKey::parse(&text(&idem, name)?).map_err(|_| corrupt(name))?,
                order: OrderId::parse(&text(value, name)?).map_err(|_| corrupt(name))?,
            }
        }
        Kind::Payments => Item::Payment(load(value, name)?),
        Kind::Sessions => Item::Session {
            token_hash: <[u8; 32]>::try_from(key).map_err(|_| corrupt(name))?,
            session: load(value, name)?,
        },
        Kind::Blocks => Item::Block {
            openid: openid_of(key, name)?,
            block: load(value, name)?,
        },
        Kind::Operators => Item::Operator(load(value, name)?),
        Kind::FormIds => {
            let (openid, rest) = split(key, name)?;
            if rest.len() != 16 {
                return Err(corrupt(name));
            }
            Item::FormId {
                openid: openid_of(&openid, name)?,
                expires_at: be_u64(&rest[..8], name)?,
                id: be_u64(&rest[8..], name)?,
                pooled: load(value, name)?,
            }
        }
        Kind::Grants => {
            let (openid, template) = split(key, name)?;
            Item::Grant {
                openid: openid_of(&openid, name)?,
                template: text(&template, name)?,
                left: be_u32(value, name)?,
            }
        }
        Kind::Tokens if key == TOKEN_KEY.as_bytes() => Item::Token(load(value, name)?),
        Kind::Tokens => return Ok(None),
        Kind::ShareCodes => {
            let (scene, page) = split(key, name)?;
            Item::ShareCode {
                scene: text(&scene, name)?,
                page: text(&page, name)?,
                url: text(value, name)?,
            }
        }
        Kind::Couriers => Item::Courier(courier_of(value, &text(key, name)?)?),
        Kind::CourierReleases => {
            let (openid, day) = user_day(key, name)?;
            Item::CourierReleases {
                openid,
                day,
                n: be_u32(value, name)?,
            }
        }
        Kind::Uploads => Item::Upload(load(value, name)?),
        Kind::UploadDays => {
            let (openid, day) = user_day(key, name)?;
            Item::UploadDay {
                openid,
                day,
                n: be_u32(value, name)?,
            }
        }
        Kind::Objects => return Ok(None),
        Kind::Outbox => Item::Outbox(load(value, name)?),
        Kind::LedgerInbox => Item::LedgerInbox {
            seq: be_u64(key, name)?,
            event: load::<MoneyEvent>(value, name)?,
        },
        Kind::Postings => {
            let mut posted: Posted = load(value, name)?;
            posted.posting.key = text(key, name)?;
            Item::Posting(posted)
        }
        Kind::Statements => {
            let at = key.len().checked_sub(9).ok_or_else(|| corrupt(name))?;
            let account = Account::parse(&text(&key[..at], name)?).ok_or_else(|| corrupt(name))?;
            let mut entry: Entry = load(value, name)?;
            entry.seq = be_u64(&key[at + 1..], name)?;
            Item::Statement { account, entry }
        }
        Kind::DayLines => {
            let key = text(key, name)?;
            let mut parts = key.split('\0');
            let (Some(day), Some(what), Some(order)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt(name));
            };
            Item::DayLine(DayLine {
                day: ChinaDay::parse(day).map_err(|_| corrupt(name))?,
                what: LineKind::parse(what).ok_or_else(|| corrupt(name))?,
                order: OrderId::parse(order).map_err(|_| corrupt(name))?,
                fen: be_u64(value, name)?,
            })
        }
        Kind::Rates => Item::Rate {
            order: OrderId::parse(&text(key, name)?).map_err(|_| corrupt(name))?,
            percent: *value.first().ok_or_else(|| corrupt(name))?,
        },
        Kind::Withdrawals => Item::Withdrawal(load::<Withdrawal>(value, name)?),
        Kind::WithdrawalKeys => {
            let (courier, idem) = split(key, name)?;
            Item::WithdrawalKey {
                courier: openid_of(&courier, name)?,
                key: text(&idem, name)?,
                withdrawal: WithdrawalId::parse(&text(value, name)?).map_err(|_| corrupt(name))?,
            }
        }
        Kind::Reconciliations => Item::Reconciliation(load::<Reconciliation>(value, name)?),
    }))
}

/// Where a reader is: the kind, which of its trees, the last key read.
struct SledReader<'a> {
    dump: &'a SledDump,
    kind: Option<Kind>,
    tree: usize,
    after: Option<Vec<u8>>,
    /// The objects not read yet (listed once).
    objects: Option<Vec<(Visibility, ObjectKey)>>,
}

impl SledReader<'_> {
    fn objects(&mut self, max: usize) -> Result<Vec<Item>, StorageError> {
        let keys = match &mut self.objects {
            Some(keys) => keys,
            None => self.objects.insert(self.dump.objects.object_keys()?),
        };
        let take: Vec<_> = keys.drain(..max.min(keys.len())).collect();
        let mut out = Vec::with_capacity(take.len());
        for (visibility, key) in take {
            if let Some(object) = self.dump.objects.get_object(visibility, &key)? {
                out.push(Item::Object(object));
            }
        }
        Ok(out)
    }
}

impl Reader for SledReader<'_> {
    fn next_batch(&mut self, kind: Kind, max: usize) -> Result<Vec<Item>, StorageError> {
        if self.kind != Some(kind) {
            *self = SledReader {
                dump: self.dump,
                kind: Some(kind),
                tree: 0,
                after: None,
                objects: None,
            };
        }
        if kind == Kind::Objects {
            return self.objects(max);
        }
        let trees = self.dump.trees(kind);
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            let Some(tree) = trees.get(self.tree) else {
                break;
            };
            let from = match &self.after {
                Some(key) => Bound::Excluded(key.clone()),
                None => Bound::Unbounded,
            };
            let mut read_any = false;
            for entry in tree.range::<Vec<u8>, _>((from, Bound::Unbounded)) {
                let (key, value) = entry?;
                self.after = Some(key.to_vec());
                read_any = true;
                if let Some(item) = item_of(kind, &key, &value)? {
                    out.push(item);
                }
                if out.len() == max {
                    break;
                }
            }
            if out.len() < max || !read_any {
                self.tree += 1;
                self.after = None;
            }
        }
        Ok(out)
    }
}

impl Dump for SledDump {
    fn reader(&self) -> Result<Box<dyn Reader + '_>, StorageError> {
        Ok(Box::new(SledReader {
            dump: self,
            kind: None,
            tree: 0,
            after: None,
            objects: None,
        }))
    }

    fn import(&self, items: &[Item]) -> Result<usize, StorageError> {
        let mut written = 0;
        for item in items {
            written += usize::from(self.import_one(item)?);
        }
        Ok(written)
    }

    fn finish(&self) -> Result<(), StorageError> {
        self.store.flush_blocking()
    }

    fn count(&self, kind: Kind) -> Result<u64, StorageError> {
        Ok(match kind {
            Kind::Objects => self.objects.object_keys()?.len() as u64,
            Kind::Tokens => u64::from(self.store.inner.meta.contains_key(TOKEN_KEY)?),
            _ => self.trees(kind).iter().map(|t| t.len() as u64).sum(),
        })
    }
}
