//! What a write sends, and how a batch's rows are folded into multi-row
//! inserts. PostgreSQL spends most of a small insert on the statement
//! around it (bind, executor start and end, a network message each way):
//! thirty creates sent as two multi-row inserts cost far less than as
//! thirty statements.

use std::collections::HashSet;

use tokio_postgres::types::ToSql;

/// A query parameter, owned by the queue until the task sends it.
pub(super) type Param = Box<dyn ToSql + Send + Sync>;

/// An insert whose rows, from several writes of one batch, may go as one
/// statement: `{head} ($1, …), (…) {tail}`.
pub(super) struct RowsInto {
    /// `INSERT INTO table (columns) VALUES`.
    pub(super) head: &'static str,
    /// What follows the rows (`ON CONFLICT …`).
    pub(super) tail: &'static str,
    /// Parameters per row.
    pub(super) width: usize,
}

/// One write's statement.
pub(super) enum Statement {
    /// Sent as it is.
    One(&'static str, Vec<Param>),
    /// A row of `into`; `key` is its conflict key (two rows with one key
    /// never share a statement: PostgreSQL refuses to touch a row twice in
    /// one `ON CONFLICT DO UPDATE`).
    Row {
        into: &'static RowsInto,
        key: String,
        params: Vec<Param>,
    },
}

impl From<(&'static str, Vec<Param>)> for Statement {
    fn from((sql, params): (&'static str, Vec<Param>)) -> Self {
        Self::One(sql, params)
    }
}

/// Largest number of rows one statement carries. Statements are made with
/// a power of two rows, so each table has few shapes to prepare.
const MAX_ROWS: usize = 64;

/// A statement to send: its text and parameters.
pub(super) struct Sendable {
    /// The SQL (a multi-row insert's is made here).
    pub(super) sql: String,
    /// Its parameters, in order.
    pub(super) params: Vec<Param>,
}

/// Rows of one table gathered so far.
struct Group {
    into: &'static RowsInto,
    keys: HashSet<String>,
    rows: Vec<Vec<Param>>,
}

/// `statements` as they are sent: rows of one table that follow each other,
/// with only other tables' rows between them, become multi-row inserts.
/// Tables are written in the order their first row came, each table's rows
/// in their own order; a plain statement (or a key seen again) sends what
/// was gathered first. The tables written as rows have no triggers or
/// foreign keys between them, so only each table's own order matters.
pub(super) fn fold(statements: impl IntoIterator<Item = Statement>) -> Vec<Sendable> {
    let mut out = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for statement in statements {
        match statement {
            Statement::One(sql, params) => {
                flush(&mut groups, &mut out);
                out.push(Sendable {
                    sql: sql.to_owned(),
                    params,
                });
            }
            Statement::Row { into, key, params } => {
                let at = groups.iter().position(|g| std::ptr::eq(g.into, into));
                if at.is_some_and(|i| groups[i].keys.contains(&key)) {
                    flush(&mut groups, &mut out);
                }
                let group = match groups.iter().position(|g| std::ptr::eq(g.into, into)) {
                    Some(i) => &mut groups[i],
                    None => {
                        groups.push(Group {
                            into,
                            keys: HashSet::new(),
                            rows: Vec::new(),
                        });
                        let last = groups.len() - 1;
                        &mut groups[last]
                    }
                };
                group.keys.insert(key);
                group.rows.push(params);
            }
        }
    }
    flush(&mut groups, &mut out);
    out
}

/// Sends every gathered group, in the order their first rows came.
fn flush(groups: &mut Vec<Group>, out: &mut Vec<Sendable>) {
    for group in groups.drain(..) {
        let mut rows = group.rows.into_iter();
        let mut left = rows.len();
        while left > 0 {
            let n = chunk(left);
            out.push(Sendable {
                sql: multi_row(group.into, n),
                params: rows.by_ref().take(n).flatten().collect(),
            });
            left -= n;
        }
    }
}

/// The largest power of two not over `left` (nor [`MAX_ROWS`]).
fn chunk(left: usize) -> usize {
    let mut n = 1;
    while n * 2 <= left.min(MAX_ROWS) {
        n *= 2;
    }
    n
}

/// `into`'s insert of `n` rows.
fn multi_row(into: &RowsInto, n: usize) -> String {
    let mut sql = String::with_capacity(into.head.len() + into.tail.len() + n * into.width * 5);
    sql.push_str(into.head);
    for row in 0..n {
        sql.push_str(if row == 0 { " (" } else { ", (" });
        for column in 0..into.width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * into.width + column + 1).to_string());
        }
        sql.push(')');
    }
    if !into.tail.is_empty() {
        sql.push(' ');
        sql.push_str(into.tail);
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: RowsInto = RowsInto {
        head: "INSERT INTO a (k, v) VALUES",
        tail: "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
        width: 2,
    };
    static B: RowsInto = RowsInto {
        head: "INSERT INTO b (k) VALUES",
        tail: "",
        width: 1,
    };

    fn row(into: &'static RowsInto, key: &str) -> Statement {
        let params: Vec<Param> = (0..into.width)
            .map(|_| Box::new(key.to_owned()) as Param)
            .collect();
        Statement::Row {
            into,
            key: key.to_owned(),
            params,
        }
    }

    fn shapes(sent: &[Sendable]) -> Vec<(String, usize)> {
        sent.iter()
            .map(|s| (s.sql.clone(), s.params.len()))
            .collect()
    }

    #[test]
    fn rows_of_two_tables_interleaved_become_one_insert_each() {
        let sent = fold([row(&A, "1"), row(&B, "1"), row(&A, "2"), row(&B, "2")]);
        assert_eq!(
            shapes(&sent),
            vec![
                (
                    "INSERT INTO a (k, v) VALUES ($1, $2), ($3, $4) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                        .to_owned(),
                    4
                ),
                ("INSERT INTO b (k) VALUES ($1), ($2)".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn a_plain_statement_or_a_key_seen_again_sends_what_came_before() {
        let sent = fold([
            row(&A, "1"),
            Statement::One("DELETE FROM a", Vec::new()),
            row(&A, "2"),
            row(&A, "3"),
            row(&A, "2"),
        ]);
        let sql: Vec<String> = sent.into_iter().map(|s| s.sql).collect();
        assert_eq!(sql.len(), 4, "{sql:?}");
        assert!(sql[0].ends_with("VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"));
        assert_eq!(sql[1], "DELETE FROM a");
        assert!(sql[2].contains("($1, $2), ($3, $4) ON"), "{}", sql[2]);
        assert!(sql[3].contains("VALUES ($1, $2) ON"), "{}", sql[3]);
    }

    #[test]
    fn many_rows_go_in_power_of_two_statements_in_order() {
        let keys: Vec<String> = (0..75).map(|i| i.to_string()).collect();
        let sent = fold(keys.iter().map(|k| row(&B, k)));
        let rows: Vec<usize> = sent.iter().map(|s| s.params.len()).collect();
        assert_eq!(rows, vec![64, 8, 2, 1]);
        assert_eq!(rows.iter().sum::<usize>(), 75);
        assert!(sent[3].sql.ends_with("VALUES ($1)"));
    }
}
