//! PostgreSQL's client, with the `tokio-postgres` crate: each transaction of micro-ops
//! is one SQL transaction at the run's [`Isolation`] level, on one table,
//! `faultline_kv (k text PRIMARY KEY, v jsonb NOT NULL)`, a row per key holding the
//! key's JSON value (created by the first client that connects).
//!
//! | micro-op | statement (prepared once per connection) |
//! |---|---|
//! | read | `SELECT v … WHERE k = $1` (no row: `null`) |
//! | write | `INSERT … ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v` |
//! | append | `INSERT … VALUES ($1, [x]) ON CONFLICT (k) DO UPDATE SET v = t.v \|\| EXCLUDED.v` (only onto a list: else `not-a-list`) |
//! | cas from `null` | `INSERT … ON CONFLICT (k) DO UPDATE … WHERE t.v = 'null'` |
//! | cas | `UPDATE … SET v = $3 WHERE k = $1 AND v = $2` |
//! | add | `INSERT … ON CONFLICT (k) DO UPDATE SET v = to_jsonb(t.v::int8 + $2)` |
//!
//! A cas that changes no row aborts the transaction (`Fail` `cas-mismatch`). Outcomes,
//! by how far the transaction got ([`Stage`]) and what stopped it ([`Cause`]; see
//! [`outcome`]):
//!
//! | what happened | outcome |
//! |---|---|
//! | connecting failed or timed out (nothing sent) | `Fail` `unavailable` (after 100 ms at least) |
//! | anything before `COMMIT` was sent: an SQL error, a lost connection, the time-out | `Fail` (no `COMMIT`, no effect; the connection is dropped unless the server answered) |
//! | `COMMIT` answered SQLSTATE 40001 / 40P01 | `Fail` `serialization-failure` / `deadlock` |
//! | `COMMIT` answered another error of classes 22, 23, 25, 40, 42 | `Fail` `sql-CODE` |
//! | `COMMIT` lost its connection, timed out, or answered anything else | `Info` |

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls, Statement};

use super::{Micro, Store, StoreError, TxnFuture, TxnOk};

/// The isolation level of every transaction (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// `SERIALIZABLE` (serializable snapshot isolation).
    #[default]
    Serializable,
    /// `REPEATABLE READ` (snapshot isolation in PostgreSQL).
    RepeatableRead,
    /// `READ COMMITTED` (a new snapshot for every statement).
    ReadCommitted,
}

impl Isolation {
    /// The statement that starts a transaction at this level.
    pub fn begin(self) -> &'static str {
        match self {
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }
}

/// How long a failed connection attempt takes at least: a killed server refuses at
/// once, and clients at `--rate 0` would otherwise fill the history with hundreds of
/// thousands of `unavailable` failures while it is down.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// The table, created by the first client.
const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS faultline_kv (k text PRIMARY KEY, v jsonb NOT NULL)";

/// The statements of the micro-ops, in the order of [`Statements`]' fields.
const SQL: [&str; 6] = [
    "SELECT v FROM faultline_kv WHERE k = $1",
    "INSERT INTO faultline_kv AS t (k, v) VALUES ($1, $2) \
     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
    "INSERT INTO faultline_kv AS t (k, v) VALUES ($1, $2) \
     ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v WHERE jsonb_typeof(t.v) = 'array'",
    "INSERT INTO faultline_kv AS t (k, v) VALUES ($1, $3) \
     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE t.v = $2",
    "UPDATE faultline_kv SET v = $3 WHERE k = $1 AND v = $2",
    "INSERT INTO faultline_kv AS t (k, v) VALUES ($1, to_jsonb($2::int8)) \
     ON CONFLICT (k) DO UPDATE SET v = to_jsonb(t.v::int8 + $2::int8)",
];

/// The prepared statements of one connection.
struct Statements {
    read: Statement,
    write: Statement,
    append: Statement,
    cas_null: Statement,
    cas: Statement,
    add: Statement,
}

/// A live connection: the client and the task driving its socket.
struct Conn {
    client: Client,
    statements: Statements,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How far a transaction got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting: nothing of the transaction was sent.
    Connect,
    /// `BEGIN` and the micro-ops' statements: without `COMMIT`, nothing takes effect.
    Statements,
    /// `COMMIT` was sent.
    Commit,
}

/// What stopped a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The server answered with an error of this SQLSTATE.
    Sql(String),
    /// The micro-ops aborted it themselves (e.g. `cas-mismatch`).
    Abort(&'static str),
    /// The connection was lost (or could not be made).
    Lost,
    /// The operation's time ran out.
    Timeout,
}

/// The outcome of a transaction stopped by `cause` at `stage` (the table in the module's
/// documentation).
pub fn outcome(stage: Stage, cause: &Cause) -> StoreError {
    let fail = |error: String| StoreError::Fail { error, node: None };
    let info = |error: &str| StoreError::Info {
        error: error.to_string(),
        node: None,
    };
    match (stage, cause) {
        (Stage::Connect, _) => fail("unavailable".into()),
        (_, Cause::Abort(error)) => fail(error.to_string()),
        (_, Cause::Sql(code)) if code == "40001" => fail("serialization-failure".into()),
        (_, Cause::Sql(code)) if code == "40P01" => fail("deadlock".into()),
        (Stage::Statements, Cause::Sql(code)) => fail(format!("sql-{code}")),
        (Stage::Statements, Cause::Lost) => fail("connection-lost".into()),
        (Stage::Statements, Cause::Timeout) => fail("timeout".into()),
        (Stage::Commit, Cause::Sql(code))
            if ["22", "23", "25", "40", "42"].contains(&code.get(..2).unwrap_or("")) =>
        {
            fail(format!("sql-{code}"))
        }
        (Stage::Commit, Cause::Sql(code)) => info(&format!("sql-{code}")),
        (Stage::Commit, Cause::Lost) => info("connection-lost"),
        (Stage::Commit, Cause::Timeout) => info("timeout"),
    }
}

/// Why a `tokio-postgres` call failed.
fn cause(e: &tokio_postgres::Error) -> Cause {
    match e.code() {
        Some(code) => Cause::Sql(code.code().to_string()),
        None => Cause::Lost,
    }
}

/// A client of a PostgreSQL server, bound to one client thread: one connection, made
/// lazily, dropped after any failure the server did not answer.
pub struct PostgresStore {
    node: String,
    addr: String,
    timeout: Duration,
    isolation: Isolation,
    conn: Option<Conn>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("node", &self.node)
            .field("addr", &self.addr)
            .field("isolation", &self.isolation)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl PostgresStore {
    /// A client of node `preferred % nodes.len()` of `nodes` (`(name, "host:port")`; a
    /// single primary has one), every call bounded by `timeout`, transactions at
    /// `isolation`. Connects lazily, as `postgres` to the `postgres` database.
    pub fn new(
        nodes: Vec<(String, String)>,
        preferred: usize,
        timeout: Duration,
        isolation: Isolation,
    ) -> PostgresStore {
        let (node, addr) = match nodes.len() {
            0 => Default::default(),
            n => nodes[preferred % n].clone(),
        };
        PostgresStore {
            node,
            addr,
            timeout,
            isolation,
            conn: None,
        }
    }

    /// Connects, creates the table if it is missing, prepares the statements.
    async fn connect(&self) -> Result<Conn, Cause> {
        let (host, port) = self.addr.rsplit_once(':').ok_or(Cause::Lost)?;
        let port: u16 = port.parse().map_err(|_| Cause::Lost)?;
        let (client, connection) = tokio_postgres::Config::new()
            .host(host)
            .port(port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(self.timeout)
            .connect(NoTls)
            .await
            .map_err(|e| cause(&e))?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        if let Err(e) = client.batch_execute(CREATE).await {
            // Another client created it at the same time.
            match cause(&e) {
                Cause::Sql(code) if code == "42P07" || code == "23505" => {}
                other => return Err(other),
            }
        }
        let mut prepared = Vec::with_capacity(SQL.len());
        for sql in SQL {
            prepared.push(client.prepare(sql).await.map_err(|e| cause(&e))?);
        }
        let mut p = prepared.into_iter();
        let mut next = || p.next().ok_or(Cause::Lost);
        let statements = Statements {
            read: next()?,
            write: next()?,
            append: next()?,
            cas_null: next()?,
            cas: next()?,
            add: next()?,
        };
        Ok(Conn {
            client,
            statements,
            task,
        })
    }

    async fn run(&mut self, ops: &[Micro]) -> Result<TxnOk, StoreError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut stage = Stage::Connect;
        let attempt = tokio::time::timeout_at(deadline, self.attempt(ops, &mut stage)).await;
        let cause = match attempt {
            Ok(Ok(values)) => {
                return Ok(TxnOk {
                    values,
                    node: self.node.clone(),
                });
            }
            Ok(Err(cause)) => cause,
            Err(_) => Cause::Timeout,
        };
        // Only a connection whose server answered (and is rolled back) is kept.
        let answered = matches!(cause, Cause::Sql(_) | Cause::Abort(_));
        let rolled_back = match (&self.conn, answered) {
            (Some(conn), true) => {
                let rollback = conn.client.batch_execute("ROLLBACK");
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), rollback).await,
                    Ok(Ok(()))
                )
            }
            _ => false,
        };
        if !rolled_back {
            self.conn = None;
        }
        if stage == Stage::Connect {
            tokio::time::sleep_until(deadline.min(started + CONNECT_BACKOFF)).await;
        }
        Err(match outcome(stage, &cause) {
            StoreError::Fail { error, .. } => StoreError::Fail {
                error,
                node: (stage != Stage::Connect).then(|| self.node.clone()),
            },
            StoreError::Info { error, .. } => StoreError::Info {
                error,
                node: Some(self.node.clone()),
            },
        })
    }

    /// The transaction, `stage` saying how far it got.
    async fn attempt(&mut self, ops: &[Micro], stage: &mut Stage) -> Result<Vec<Value>, Cause> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let conn = self.conn.as_ref().ok_or(Cause::Lost)?;
        let client = &conn.client;
        let st = &conn.statements;
        *stage = Stage::Statements;
        client
            .batch_execute(self.isolation.begin())
            .await
            .map_err(|e| cause(&e))?;
        let mut values = Vec::with_capacity(ops.len());
        for op in ops {
            let sql = |e: tokio_postgres::Error| cause(&e);
            let value = match op {
                Micro::Read(k) => client
                    .query_opt(&st.read, &[k])
                    .await
                    .map_err(sql)?
                    .map(|row| row.try_get::<_, Value>(0))
                    .transpose()
                    .map_err(sql)?
                    .unwrap_or(Value::Null),
                Micro::Write(k, v) => {
                    client.execute(&st.write, &[k, v]).await.map_err(sql)?;
                    Value::Null
                }
                Micro::Append(k, v) => {
                    let list = json!([v]);
                    match client.execute(&st.append, &[k, &list]).await.map_err(sql)? {
                        0 => return Err(Cause::Abort("not-a-list")),
                        _ => Value::Null,
                    }
                }
                Micro::Cas(k, old, new) => {
                    let statement = match old {
                        Value::Null => &st.cas_null,
                        _ => &st.cas,
                    };
                    match client
                        .execute(statement, &[k, old, new])
                        .await
                        .map_err(sql)?
                    {
                        0 => return Err(Cause::Abort("cas-mismatch")),
                        _ => Value::Null,
                    }
                }
                Micro::Add(k, delta) => {
                    client.execute(&st.add, &[k, delta]).await.map_err(sql)?;
                    Value::Null
                }
            };
            values.push(value);
        }
        *stage = Stage::Commit;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| cause(&e))?;
        Ok(values)
    }
}

impl Store for PostgresStore {
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a> {
        Box::pin(self.run(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_fail(e: &StoreError, want: &str) -> bool {
        matches!(e, StoreError::Fail { error, .. } if error == want)
    }

    fn is_info(e: &StoreError, want: &str) -> bool {
        matches!(e, StoreError::Info { error, .. } if error == want)
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_definite_at_any_stage() {
        for stage in [Stage::Statements, Stage::Commit] {
            let e = outcome(stage, &Cause::Sql("40001".into()));
            assert!(is_fail(&e, "serialization-failure"), "{stage:?}: {e:?}");
            let e = outcome(stage, &Cause::Sql("40P01".into()));
            assert!(is_fail(&e, "deadlock"), "{stage:?}: {e:?}");
        }
    }

    #[test]
    fn nothing_before_commit_takes_effect() {
        for cause in [
            Cause::Lost,
            Cause::Timeout,
            Cause::Sql("57P01".into()),
            Cause::Sql("XX000".into()),
            Cause::Abort("cas-mismatch"),
        ] {
            for stage in [Stage::Connect, Stage::Statements] {
                let e = outcome(stage, &cause);
                assert!(
                    matches!(e, StoreError::Fail { .. }),
                    "{stage:?} {cause:?}: {e:?}"
                );
            }
        }
        assert!(is_fail(
            &outcome(Stage::Connect, &Cause::Timeout),
            "unavailable"
        ));
        assert!(is_fail(
            &outcome(Stage::Statements, &Cause::Abort("cas-mismatch")),
            "cas-mismatch"
        ));
    }

    #[test]
    fn a_commit_without_a_definite_answer_is_indeterminate() {
        assert!(is_info(
            &outcome(Stage::Commit, &Cause::Lost),
            "connection-lost"
        ));
        assert!(is_info(&outcome(Stage::Commit, &Cause::Timeout), "timeout"));
        // The server going away while committing (admin shutdown, crash).
        assert!(is_info(
            &outcome(Stage::Commit, &Cause::Sql("57P01".into())),
            "sql-57P01"
        ));
        assert!(is_info(
            &outcome(Stage::Commit, &Cause::Sql("08006".into())),
            "sql-08006"
        ));
        // A deferred constraint refused at commit: rolled back.
        assert!(is_fail(
            &outcome(Stage::Commit, &Cause::Sql("23505".into())),
            "sql-23505"
        ));
    }

    #[test]
    fn isolation_levels_name_their_begin() {
        assert_eq!(
            Isolation::RepeatableRead.begin(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        );
        assert_eq!(Isolation::default(), Isolation::Serializable);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_definite_failure() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap();
        let mut store = PostgresStore::new(
            vec![("n1".into(), refused)],
            0,
            Duration::from_secs(2),
            Isolation::Serializable,
        );
        let err = store.txn(&[Micro::Read("x".into())]).await.unwrap_err();
        assert!(is_fail(&err, "unavailable"), "{err:?}");
    }
}
