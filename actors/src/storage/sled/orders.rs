//! The orders shards' repository: `orders_active`, `orders_archive`,
//! `idempotency`, and the outbox entries written in the same transaction
//! as the order change they announce (the transactional outbox; the
//! notifier reads them through [`super::OutboxRepo`]).

use crate::domain::{MoneyEvent, Sequence, Shard};

use super::*;
use crate::storage::{Committing, OrderRepo};

/// The orders shards' trees.
#[derive(Clone)]
pub struct SledOrders(pub(super) SledStore);

impl OrderRepo for SledOrders {
    fn get_active_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError> {
        match self.0.inner.active.get(id.as_str().as_bytes())? {
            Some(bytes) => decode_order(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    fn insert_new_order(
        &self,
        order: &Order,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError> {
        let id = order.id.as_str().as_bytes();
        let record = encode_order(order)?;
        let Some(key) = key else {
            self.0.inner.active.insert(id, record)?;
            return Ok(());
        };
        let idem_key = idempotency_key(&order.customer, key);
        let inner = &self.0.inner;
        (&inner.active, &inner.idempotency)
            .transaction(|(active, idempotency)| {
                active.insert(id, record.as_slice())?;
                idempotency.insert(idem_key.as_slice(), id)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    fn update_order(&self, order: &Order, was_terminal: bool) -> Result<(), StorageError> {
        self.update_order_with(order, was_terminal, &[], &[])
    }

    /// [`Self::update_order`] plus, in the same transaction, a message for
    /// the notifier's outbox and the money the change moves for the
    /// ledger's inbox: the state change, its message and its money are
    /// durable together or not at all.
    ///
    /// Except for a payment, the one money event of an order that stays
    /// active: a sled transaction waits for any flush in progress and
    /// stalls every other write meanwhile (it costs the paid path a
    /// quarter of its throughput), so the event is written first and the
    /// order after it, each alone. sled recovers its log in order, so the
    /// order's `paid` is never on disk without the event; the event
    /// without the order only follows a payment WeChat Pay made and will
    /// notify again (the notify was not acknowledged), and posting it is
    /// idempotent. The ledger also re-derives the events of active orders
    /// at every start ([`super::LedgerRepo::tell_active`]).
    fn update_order_with(
        &self,
        order: &Order,
        was_terminal: bool,
        messages: &[OutboxEntry],
        money: &[(u64, MoneyEvent)],
    ) -> Result<(), StorageError> {
        let id = order.id.as_str().as_bytes();
        let record = encode_order(order)?;
        let inner = &self.0.inner;
        let terminal = order.status().is_terminal();
        if messages.is_empty() && money.is_empty() && !terminal && !was_terminal {
            inner.active.insert(id, record)?;
            return Ok(());
        }
        let messages = messages
            .iter()
            .map(|m| Ok((m.id.to_be_bytes(), store(m)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        let money = money
            .iter()
            .map(|(seq, m)| Ok((seq.to_be_bytes(), store(m)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        if let ([], [(key, value)], false, false) = (
            messages.as_slice(),
            money.as_slice(),
            terminal,
            was_terminal,
        ) {
            inner.ledger_inbox.insert(key, value.as_slice())?;
            inner.active.insert(id, record)?;
            return Ok(());
        }
        (
            &inner.active,
            &inner.archive,
            &inner.outbox,
            &inner.ledger_inbox,
        )
            .transaction(|(active, archive, outbox, ledger_inbox)| {
                if terminal {
                    active.remove(id)?;
                    archive.insert(id, record.as_slice())?;
                } else {
                    if was_terminal {
                        archive.remove(id)?;
                    }
                    active.insert(id, record.as_slice())?;
                }
                for (key, value) in &messages {
                    outbox.insert(key, value.as_slice())?;
                }
                for (key, value) in &money {
                    ledger_inbox.insert(key, value.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    fn ids(&self) -> Sequence {
        self.0.inner.ids.clone()
    }

    fn idempotent_order(
        &self,
        customer: &OpenId,
        key: &IdempotencyKey,
        since_ms: u64,
    ) -> Result<Option<OrderId>, StorageError> {
        let idem_key = idempotency_key(customer, key);
        let Some(id) = self.0.inner.idempotency.get(&idem_key)? else {
            return Ok(None);
        };
        let id = parse_order_id(&id)?;
        if id.created_ms().unwrap_or(0) < since_ms {
            self.0.inner.idempotency.remove(idem_key)?;
            return Ok(None);
        }
        Ok(Some(id))
    }

    fn prune_idempotency(&self, since_ms: u64, shard: Shard) -> Result<usize, StorageError> {
        let mut removed = 0;
        for item in self.0.inner.idempotency.iter() {
            let (key, value) = item?;
            let owned = key
                .split(|b| *b == 0)
                .next()
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| OpenId::parse(c).ok())
                .is_some_and(|c| shard.owns_customer(&c));
            if !owned {
                continue;
            }
            let old =
                parse_order_id(&value).map_or(true, |id| id.created_ms().unwrap_or(0) < since_ms);
            if old {
                self.0.inner.idempotency.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError> {
        let key = id.as_str().as_bytes();
        let bytes = match self.0.inner.active.get(key)? {
            Some(b) => b,
            None => match self.0.inner.archive.get(key)? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        decode_order(&bytes, id.as_str()).map(Some)
    }

    fn orders_created_since(
        &self,
        since_ms: u64,
        shard: Shard,
    ) -> Result<Vec<Order>, StorageError> {
        let mut out = Vec::new();
        for tree in [&self.0.inner.active, &self.0.inner.archive] {
            for item in tree.iter() {
                let (key, value) = item?;
                let wanted = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|s| OrderId::parse(s).ok())
                    .is_some_and(|id| {
                        id.created_ms().is_some_and(|ms| ms >= since_ms) && shard.owns(&id)
                    });
                if wanted {
                    out.push(decode_order(&value, &String::from_utf8_lossy(&key))?);
                }
            }
        }
        Ok(out)
    }

    fn active_orders(&self, shard: Shard) -> Result<Vec<Order>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.active.iter() {
            let (key, value) = item?;
            let Some(id) = std::str::from_utf8(&key)
                .ok()
                .and_then(|s| OrderId::parse(s).ok())
            else {
                continue;
            };
            if shard.owns(&id) {
                out.push(decode_order(&value, id.as_str())?);
            }
        }
        Ok(out)
    }

    fn list_customer_orders(
        &self,
        customer: &OpenId,
        status: Option<Status>,
        limit: usize,
        before: Option<&OrderId>,
    ) -> Result<(Vec<Order>, Option<OrderId>), StorageError> {
        self.list_scanning(customer, status, limit, before, LIST_SCAN_LIMIT)
    }

    fn is_healthy(&self) -> bool {
        self.0.is_healthy()
    }

    fn is_writable(&self) -> bool {
        self.0.is_writable()
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}

impl SledOrders {
    /// [`Self::list_customer_orders`], reading at most `scan_limit` records:
    /// a filtered page that runs out of scan budget stops early with the
    /// last key it read as the cursor, so paging goes on from there.
    pub(super) fn list_scanning(
        &self,
        customer: &OpenId,
        status: Option<Status>,
        limit: usize,
        before: Option<&OrderId>,
        scan_limit: usize,
    ) -> Result<(Vec<Order>, Option<OrderId>), StorageError> {
        let prefix = OrderId::customer_prefix(customer).into_bytes();
        let end = match before {
            Some(id) => id.as_str().as_bytes().to_vec(),
            None => prefix_end(&prefix),
        };
        let range = prefix.clone()..end;
        let mut active = self.0.inner.active.range(range.clone()).rev().peekable();
        let mut archive = self.0.inner.archive.range(range).rev().peekable();
        let mut orders = Vec::with_capacity(limit.min(100));
        let mut scanned = 0;
        loop {
            // Merge the two trees' ranges, largest (newest) key first.
            let take_active = match (active.peek(), archive.peek()) {
                (None, None) => return Ok((orders, None)),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(Ok((a, _))), Some(Ok((b, _)))) => a >= b,
                (Some(Err(_)), _) => true,
                (_, Some(Err(_))) => false,
            };
            let next = if take_active {
                active.next()
            } else {
                archive.next()
            };
            let Some(item) = next else { continue };
            let (key, value) = item?;
            let order = decode_order(&value, &String::from_utf8_lossy(&key))?;
            scanned += 1;
            // Another customer may share the 40-bit prefix; the record decides.
            if order.customer == *customer && status.is_none_or(|s| s == order.status()) {
                orders.push(order);
                if orders.len() == limit {
                    let cursor = orders.last().map(|o| o.id.clone());
                    return Ok((orders, cursor));
                }
                continue;
            }
            if scanned >= scan_limit {
                return Ok((orders, Some(parse_order_id(&key)?)));
            }
        }
    }
}
