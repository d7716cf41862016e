//! One drill at a time on a database: a run holds a session-level
//! PostgreSQL advisory lock on the primary from preflight to its end. A
//! second drill's `pg_try_advisory_lock` fails at once, and it is told which
//! run holds the lock (the holder's `application_name`) and since when; it
//! injects nothing. The lock lives with its session, so a killed run's lock
//! goes when its connection does: nothing to expire or clean up.

use super::{DbError, pg_detail, redact};

/// The advisory lock's key pair: "dril" and 1.
const KEY: (i32, i32) = (0x6472_696c, 1);

/// A held claim; dropping it (or the process dying) releases the lock.
pub struct DbClaim {
    client: tokio_postgres::Client,
}

impl DbClaim {
    /// Takes the drill lock on the database `dsn` reaches (its writer DSN,
    /// so the primary), or says who holds it.
    pub async fn take(dsn: &str, run_id: &str, started_by: &str) -> Result<DbClaim, DbError> {
        let mut config: tokio_postgres::Config =
            dsn.parse()
                .map_err(|e: tokio_postgres::Error| DbError::BadDsn {
                    dsn: redact(dsn),
                    reason: e.to_string(),
                })?;
        // The holder's name is what a refused run reads back (the server
        // keeps its first 63 bytes).
        config.application_name(format!("drill run {run_id} by {started_by}"));
        let (client, connection) =
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| DbError::Connect {
                    dsn: redact(dsn),
                    detail: pg_detail(&e),
                })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let sql = format!("SELECT pg_try_advisory_lock({}, {})", KEY.0, KEY.1);
        let got: bool = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| DbError::query("taking the drill lock", &e))?
            .get(0);
        if got {
            return Ok(DbClaim { client });
        }
        let holder = client
            .query_opt(
                &format!(
                    "SELECT a.application_name, \
                     to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted \
                     AND l.classid::bigint = {} AND l.objid::bigint = {} AND l.objsubid = 2",
                    KEY.0, KEY.1
                ),
                &[],
            )
            .await
            .ok()
            .flatten();
        let (who, since) = match holder {
            Some(r) => (r.get::<_, String>(0), r.get::<_, String>(1)),
            None => ("another drill run".into(), "an unknown time".into()),
        };
        Err(DbError::Held { holder: who, since })
    }

    /// Releases the lock now (dropping the claim does too, when the
    /// connection closes).
    pub async fn release(self) {
        let sql = format!("SELECT pg_advisory_unlock({}, {})", KEY.0, KEY.1);
        let _ = self.client.query_one(&sql, &[]).await;
    }
}
