//! The database a drill writes to and switches over: the lab's own
//! PostgreSQL pair, or the user's database reached through a DSN from the
//! environment, switched by the user's commands.

use std::time::{Duration, Instant};

use super::TargetDef;
use super::config::ExternalDb;
use crate::db::{self, DbError, LabDatabase};
use crate::scenario::model::Action;
use crate::targets::command;

pub enum Database {
    Lab(Box<LabDatabase>),
    External {
        dsn: String,
        spec: ExternalDb,
        /// The run's lock on the database, from preflight to the end.
        claim: Option<Box<db::claim::DbClaim>>,
    },
}

impl Database {
    /// Starts (lab) or resolves (external) the target's database.
    pub async fn open(def: &TargetDef) -> Result<Database, DbError> {
        match def {
            TargetDef::Lab { settings, .. } => Ok(Database::Lab(Box::new(
                db::start(&settings.database).await?,
            ))),
            TargetDef::Http {
                database: Some(spec),
                ..
            }
            | TargetDef::Kubernetes {
                database: Some(spec),
                ..
            } => {
                let dsn = std::env::var(&spec.dsn_env).map_err(|_| {
                    DbError::Invalid(format!(
                        "environment variable {} (the database's dsn_env) is not set; export the writer DSN there, e.g. \"host=db1,db2 dbname=app user=drill target_session_attrs=read-write\"",
                        spec.dsn_env
                    ))
                })?;
                Ok(Database::External {
                    dsn,
                    spec: spec.clone(),
                    claim: None,
                })
            }
            _ => Err(DbError::Invalid(format!(
                "target `{}` has no database",
                def.name()
            ))),
        }
    }

    pub fn writer_dsn(&self) -> String {
        match self {
            Database::Lab(l) => l.writer_dsn(),
            Database::External { dsn, .. } => dsn.clone(),
        }
    }

    /// Lab: the standby is streaming. External: the DSN connects and writes
    /// can be made.
    pub async fn preflight(&self) -> Result<(), DbError> {
        match self {
            Database::Lab(l) => l.preflight().await,
            Database::External { dsn, .. } => db::check_dsn(dsn).await,
        }
    }

    /// Runs a switchover or failover; returns its steps for the timeline.
    pub async fn fault(&self, action: Action) -> Result<Vec<(Instant, String)>, DbError> {
        match (self, action) {
            (Database::Lab(l), Action::Switchover) => Ok(l.switchover().await?.steps()),
            (Database::Lab(l), Action::Failover) => Ok(l.failover().await?.steps()),
            (Database::External { spec, .. }, a @ (Action::Switchover | Action::Failover)) => {
                let cmd = if a == Action::Switchover {
                    &spec.switchover
                } else {
                    &spec.failover
                };
                let cmd = cmd.as_ref().ok_or_else(|| {
                    DbError::Invalid(format!("no `{}` command for the database", a.name()))
                })?;
                let started = Instant::now();
                let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
                let timeout = Duration::from_secs_f64(spec.command_timeout.as_secs_f64());
                command::run(cmd, &cwd, timeout, &[]).await.map_err(|e| DbError::PromoteTimeout {
                    waited: started.elapsed(),
                    what_to_do: format!("the {} command failed ({e}); check which node is primary and promote one by hand if none is", a.name()),
                })?;
                Ok(vec![(
                    Instant::now(),
                    format!("{} command finished", a.name()),
                )])
            }
            (_, a) => Err(DbError::Invalid(format!(
                "`{}` is not a database fault",
                a.name()
            ))),
        }
    }

    /// Sequence numbers the current primary holds.
    pub async fn survivors(&self) -> Result<Vec<u64>, DbError> {
        match self {
            Database::Lab(l) => l.rows_on_primary().await,
            Database::External { dsn, .. } => {
                let client = db::connect(dsn).await?;
                let rows = client
                    .query("SELECT seq FROM drill_writes ORDER BY seq", &[])
                    .await
                    .map_err(|e| {
                        DbError::Invalid(format!(
                            "reading drill_writes on the new primary: {}",
                            db::pg_detail(&e)
                        ))
                    })?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<_, i64>(0).max(0) as u64)
                    .collect())
            }
        }
    }

    /// Claims the database for this run: a user's database may be drilled
    /// by another run at the same time; the lab's is the run's own.
    pub async fn claim(&mut self, run_id: &str) -> Result<(), DbError> {
        if let Database::External { dsn, claim, .. } = self
            && claim.is_none()
        {
            let by = crate::targets::k8s::claim::started_by();
            *claim = Some(Box::new(db::claim::DbClaim::take(dsn, run_id, &by).await?));
        }
        Ok(())
    }

    pub async fn stop(&mut self) {
        match self {
            Database::Lab(l) => l.stop().await,
            Database::External { claim, .. } => {
                if let Some(c) = claim.take() {
                    c.release().await;
                }
            }
        }
    }
}
