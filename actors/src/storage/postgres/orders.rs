//! The orders shards' tables: `orders` (every order, `active` until it is
//! terminal), `idempotency`, and the outbox and ledger inbox rows written
//! in the same transaction as the order change that causes them.

use super::conn::{params, Conn, Statements};
use super::people::{column, corrupt};
use super::statement::{RowsInto, Statement};
use crate::domain::{
    IdempotencyKey, MoneyEvent, OpenId, Order, OrderId, OutboxEntry, Sequence, Shard, Status,
};
use crate::storage::records::{decode_order, encode_order, store};
use crate::storage::{Committing, OrderRepo, StorageError};

/// The head of an order's insert (see [`order_params`]).
macro_rules! order_head {
    () => {
        "INSERT INTO orders (id, customer, created_ms, status, active, body) VALUES"
    };
}

/// Orders written, new or changed: a batch's go as one statement.
static ORDER_ROWS: RowsInto = RowsInto {
    head: order_head!(),
    tail: "ON CONFLICT (id) DO UPDATE SET \
           status = EXCLUDED.status, active = EXCLUDED.active, body = EXCLUDED.body",
    width: 6,
};
/// An order written only where it is missing (a copy).
pub(super) const INSERT_ORDER: &str = concat!(
    order_head!(),
    " ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
);

static IDEMPOTENCY_ROWS: RowsInto = RowsInto {
    head: "INSERT INTO idempotency (customer, key, order_id, at_ms) VALUES",
    tail: "ON CONFLICT (customer, key) DO UPDATE SET \
           order_id = EXCLUDED.order_id, at_ms = EXCLUDED.at_ms",
    width: 4,
};

static OUTBOX_ROWS: RowsInto = RowsInto {
    head: "INSERT INTO outbox (id, body) VALUES",
    tail: "ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
    width: 2,
};

static LEDGER_INBOX_ROWS: RowsInto = RowsInto {
    head: "INSERT INTO ledger_inbox (seq, body) VALUES",
    tail: "ON CONFLICT (seq) DO NOTHING",
    width: 2,
};

/// The orders shards' tables.
#[derive(Clone)]
pub struct PgOrders {
    pub(super) conn: Conn,
    pub(super) ids: Sequence,
    pub(super) store: super::PgStore,
}

/// An order's row, as [`ORDER_ROWS`] and [`INSERT_ORDER`] take it.
pub(super) fn order_params(order: &Order) -> Result<Vec<super::conn::Param>, StorageError> {
    let status = order.status();
    Ok(params![
        order.id.to_string(),
        order.customer.to_string(),
        order.id.created_ms().map_or(0, |ms| ms as i64),
        status.as_str(),
        !status.is_terminal(),
        encode_order(order)?
    ])
}

/// An order's row.
fn order_row(order: &Order) -> Result<Statement, StorageError> {
    Ok(Statement::Row {
        into: &ORDER_ROWS,
        key: order.id.to_string(),
        params: order_params(order)?,
    })
}

/// Orders from rows of (id, body).
fn orders_of(rows: &[tokio_postgres::Row]) -> Result<Vec<Order>, StorageError> {
    rows.iter()
        .map(|row| {
            let id: String = column(row, 0, "orders")?;
            decode_order(column(row, 1, &id)?, &id)
        })
        .collect()
}

fn order_id(s: &str) -> Result<OrderId, StorageError> {
    OrderId::parse(s).map_err(|_| corrupt(s))
}

impl OrderRepo for PgOrders {
    fn get_active_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError> {
        let rows = self.conn.read(
            "SELECT id, body FROM orders WHERE id = $1 AND active",
            params![id.to_string()],
        )?;
        Ok(orders_of(&rows)?.pop())
    }

    fn insert_new_order(
        &self,
        order: &Order,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError> {
        let mut statements: Statements = vec![order_row(order)?];
        if let Some(key) = key {
            statements.push(Statement::Row {
                into: &IDEMPOTENCY_ROWS,
                key: format!("{}\0{}", order.customer, key.as_str()),
                params: params![
                    order.customer.to_string(),
                    key.as_str().to_owned(),
                    order.id.to_string(),
                    order.id.created_ms().map_or(0, |ms| ms as i64)
                ],
            });
        }
        self.conn.write_all(statements)
    }

    fn update_order(&self, order: &Order, was_terminal: bool) -> Result<(), StorageError> {
        self.update_order_with(order, was_terminal, &[], &[])
    }

    fn update_order_with(
        &self,
        order: &Order,
        _was_terminal: bool,
        messages: &[OutboxEntry],
        money: &[(u64, MoneyEvent)],
    ) -> Result<(), StorageError> {
        let mut statements: Statements = vec![order_row(order)?];
        for message in messages {
            statements.push(Statement::Row {
                into: &OUTBOX_ROWS,
                key: message.id.to_string(),
                params: params![message.id as i64, store(message)?],
            });
        }
        for (seq, event) in money {
            statements.push(Statement::Row {
                into: &LEDGER_INBOX_ROWS,
                key: seq.to_string(),
                params: params![*seq as i64, store(event)?],
            });
        }
        self.conn.write_all(statements)
    }

    fn ids(&self) -> Sequence {
        self.ids.clone()
    }

    fn idempotent_order(
        &self,
        customer: &OpenId,
        key: &IdempotencyKey,
        since_ms: u64,
    ) -> Result<Option<OrderId>, StorageError> {
        let rows = self.conn.read(
            "SELECT order_id FROM idempotency WHERE customer = $1 AND key = $2",
            params![customer.to_string(), key.as_str().to_owned()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let id = order_id(&column::<String>(row, 0, "idempotency")?)?;
        if id.created_ms().unwrap_or(0) < since_ms {
            self.conn.write(
                "DELETE FROM idempotency WHERE customer = $1 AND key = $2",
                params![customer.to_string(), key.as_str().to_owned()],
            )?;
            return Ok(None);
        }
        Ok(Some(id))
    }

    fn prune_idempotency(&self, since_ms: u64, shard: Shard) -> Result<usize, StorageError> {
        let rows = self.conn.read(
            "SELECT customer, key FROM idempotency WHERE at_ms < $1",
            params![since_ms as i64],
        )?;
        let mut removed = 0;
        for row in &rows {
            let customer: String = column(row, 0, "idempotency")?;
            let key: String = column(row, 1, "idempotency")?;
            let owned = OpenId::parse(&customer).is_ok_and(|c| shard.owns_customer(&c));
            if owned {
                self.conn.write(
                    "DELETE FROM idempotency WHERE customer = $1 AND key = $2",
                    params![customer, key],
                )?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError> {
        let rows = self.conn.read(
            "SELECT id, body FROM orders WHERE id = $1",
            params![id.to_string()],
        )?;
        Ok(orders_of(&rows)?.pop())
    }

    fn orders_created_since(
        &self,
        since_ms: u64,
        shard: Shard,
    ) -> Result<Vec<Order>, StorageError> {
        let rows = self.conn.read(
            "SELECT id, body FROM orders WHERE created_ms >= $1 ORDER BY id",
            params![since_ms as i64],
        )?;
        Ok(orders_of(&rows)?
            .into_iter()
            .filter(|o| shard.owns(&o.id))
            .collect())
    }

    fn active_orders(&self, shard: Shard) -> Result<Vec<Order>, StorageError> {
        let rows = self.conn.read(
            "SELECT id, body FROM orders WHERE active ORDER BY id",
            params![],
        )?;
        Ok(orders_of(&rows)?
            .into_iter()
            .filter(|o| shard.owns(&o.id))
            .collect())
    }

    fn list_customer_orders(
        &self,
        customer: &OpenId,
        status: Option<Status>,
        limit: usize,
        before: Option<&OrderId>,
    ) -> Result<(Vec<Order>, Option<OrderId>), StorageError> {
        let rows = self.conn.read(
            "SELECT id, body FROM orders WHERE customer = $1 \
             AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4",
            params![
                customer.to_string(),
                status.map(|s| s.as_str().to_owned()),
                before.map(|b| b.to_string()),
                super::limit(limit)
            ],
        )?;
        let orders = orders_of(&rows)?;
        let cursor = (orders.len() == limit)
            .then(|| orders.last().map(|o| o.id.clone()))
            .flatten();
        Ok((orders, cursor))
    }

    fn is_healthy(&self) -> bool {
        self.store.is_healthy()
    }

    fn is_writable(&self) -> bool {
        self.store.is_writable()
    }

    fn commit(&self) -> Committing {
        self.conn.commit()
    }
}
