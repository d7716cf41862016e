//! Databases drill can fail over: the lab's real PostgreSQL primary and hot
//! standby (`cluster`), its role changes (`roles`), the servers it is made
//! of (`node`) and the binaries and OS user they need (`bin`), and
//! connecting to any PostgreSQL DSN with errors a person can act on. The
//! writer that measures data loss lives in `load::writer`, the math in
//! `measure::rpo`.

pub(crate) mod bin;
pub mod claim;
pub mod cluster;
pub(crate) mod node;
pub(crate) mod roles;

use std::time::Duration;

use serde::Deserialize;

use crate::base::exit::{ABORTED, INVALID, REVERT_FAILED};
use crate::base::units::Dur;

pub use cluster::{LabDatabase, start};
pub use roles::{FailoverReport, SwitchoverReport};

/// How the lab database is set up and how long a promotion may take.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbSettings {
    /// Synchronous replication: a commit is acknowledged only once the
    /// standby has it (`synchronous_standby_names`). Asynchronous by default.
    pub synchronous: bool,
    /// How long a promoted standby may take to accept writes.
    pub promote_timeout: Dur,
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            synchronous: false,
            promote_timeout: Dur::secs(30),
        }
    }
}

/// What can go wrong with a database, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("PostgreSQL server binaries not found: {hint}")]
    BinariesMissing { hint: String },
    #[error("invalid database DSN `{dsn}`: {reason}")]
    BadDsn { dsn: String, reason: String },
    #[error("authentication failed for `{dsn}`: {detail}; check the user and password")]
    Auth { dsn: String, detail: String },
    #[error("cannot connect to `{dsn}`: {detail}")]
    Connect { dsn: String, detail: String },
    #[error("standby not streaming: {detail}")]
    NotStreaming { detail: String },
    #[error("setting up the lab database failed at `{step}`: {detail}")]
    Setup { step: String, detail: String },
    #[error("{what} failed: {detail}")]
    Query { what: String, detail: String },
    #[error("fencing the primary failed: {what_to_do}")]
    FenceFailed { what_to_do: String },
    #[error("the standby did not catch up with the fenced primary: {what_to_do}")]
    CatchUpTimeout { what_to_do: String },
    #[error("promotion timed out after {waited:?}: {what_to_do}")]
    PromoteTimeout {
        waited: Duration,
        what_to_do: String,
    },
    #[error("the old primary still accepts writes after the switchover: {what_to_do}")]
    OldPrimaryWritable { what_to_do: String },
    /// Another drill run holds the database (its advisory lock).
    #[error(
        "the database is held by {holder} since {since}; nothing was injected: wait for that run to end (its lock goes with its session, also if it is killed)"
    )]
    Held { holder: String, since: String },
    #[error("{0}")]
    Invalid(String),
}

impl DbError {
    /// Exit code per docs/contract.md: 2 for input that can never work (no binaries,
    /// bad DSN, wrong credentials), 3 when preflight fails with nothing
    /// touched, 4 when a role change left the system possibly without a
    /// primary or with two.
    pub fn exit_code(&self) -> i32 {
        match self {
            DbError::BinariesMissing { .. }
            | DbError::BadDsn { .. }
            | DbError::Auth { .. }
            | DbError::Invalid(_) => INVALID,
            DbError::Connect { .. }
            | DbError::Held { .. }
            | DbError::NotStreaming { .. }
            | DbError::Setup { .. }
            | DbError::Query { .. } => ABORTED,
            DbError::FenceFailed { .. }
            | DbError::CatchUpTimeout { .. }
            | DbError::PromoteTimeout { .. }
            | DbError::OldPrimaryWritable { .. } => REVERT_FAILED,
        }
    }

    pub(crate) fn query(what: impl Into<String>, e: &tokio_postgres::Error) -> DbError {
        DbError::Query {
            what: what.into(),
            detail: pg_detail(e),
        }
    }
}

/// A tokio-postgres error as a person needs it: the server's message (its
/// `Display` says only "db error"), or the whole chain of causes.
pub fn pg_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(hint) = db.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            text
        }
        None => crate::base::chain::chain(e),
    }
}

/// A DSN with any password replaced by `***`, for messages and reports.
pub fn redact(dsn: &str) -> String {
    // URL form: postgresql://user:secret@host/...
    if let Some(scheme_end) = dsn.find("://") {
        let rest = &dsn[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &dsn[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
        // Passwords may also ride in the query string.
        return redact_kv(dsn, '&');
    }
    redact_kv(dsn, ' ')
}

fn redact_kv(dsn: &str, sep: char) -> String {
    dsn.split(sep)
        .map(|part| {
            let key = part.rsplit(['?', '&', ' ']).next().unwrap_or(part);
            match key.split_once('=') {
                Some((k, _)) if k.trim() == "password" => {
                    let prefix_len = part.len() - key.len();
                    format!("{}password=***", &part[..prefix_len])
                }
                _ => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// Connects to `dsn` and spawns its connection task, turning failures into
/// `BadDsn`, `Auth` or `Connect` with the password redacted.
pub async fn connect(dsn: &str) -> Result<tokio_postgres::Client, DbError> {
    let config: tokio_postgres::Config =
        dsn.parse()
            .map_err(|e: tokio_postgres::Error| DbError::BadDsn {
                dsn: redact(dsn),
                reason: e.to_string(),
            })?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| classify_connect_error(dsn, &e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Checks that `dsn` reaches a server that answers a query: for preflight
/// against a database drill does not run itself.
pub async fn check_dsn(dsn: &str) -> Result<(), DbError> {
    let client = connect(dsn).await?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| DbError::query(format!("a first query on `{}`", redact(dsn)), &e))?;
    Ok(())
}

fn classify_connect_error(dsn: &str, e: &tokio_postgres::Error) -> DbError {
    use tokio_postgres::error::SqlState;
    let detail = pg_detail(e);
    let auth = matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    ) || detail.contains("password missing");
    if auth {
        DbError::Auth {
            dsn: redact(dsn),
            detail,
        }
    } else {
        DbError::Connect {
            dsn: redact(dsn),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("host=db user=app password=s3cret dbname=x"),
            "host=db user=app password=*** dbname=x"
        );
        assert_eq!(
            redact("postgresql://app:s3cret@db:5432/x"),
            "postgresql://app:***@db:5432/x"
        );
        assert_eq!(
            redact("postgresql://app@db/x?password=s3cret&sslmode=disable"),
            "postgresql://app@db/x?password=***&sslmode=disable"
        );
        assert_eq!(redact("host=db user=app"), "host=db user=app");
    }

    #[test]
    fn exit_codes_follow_design() {
        let e = DbError::NotStreaming { detail: "x".into() };
        assert_eq!(e.exit_code(), 3);
        let e = DbError::PromoteTimeout {
            waited: Duration::from_secs(1),
            what_to_do: "x".into(),
        };
        assert_eq!(e.exit_code(), 4);
        let e = DbError::Auth {
            dsn: "x".into(),
            detail: "y".into(),
        };
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn settings_default_async_and_reject_unknown_fields() {
        let s: DbSettings = toml::from_str("promote_timeout = \"5s\"").unwrap();
        assert!(!s.synchronous);
        assert_eq!(s.promote_timeout, Dur::secs(5));
        assert!(toml::from_str::<DbSettings>("sync = true").is_err());
    }
}
