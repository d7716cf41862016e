//! Role changes a database drill injects on the lab: a planned switchover
//! (fence, catch up, promote, old primary back as a standby that refuses
//! writes) and an unplanned failover (SIGKILL, promote). Each reports when
//! its steps ended, and each failure says what state things are in.

use std::time::{Duration, Instant};

use super::DbError;
use super::cluster::{LabDatabase, State};
use super::node::{self, SUPERUSER, Toolbox};

/// When each step of a planned switchover ended (run-clock free: convert
/// with `Clock::since`).
#[derive(Clone, Debug)]
pub struct SwitchoverReport {
    pub started: Instant,
    /// The old primary has shut down cleanly: it accepts nothing.
    pub fenced: Instant,
    /// The standby has replayed the old primary's last record.
    pub caught_up: Instant,
    /// The standby left recovery (`pg_is_in_recovery()` false).
    pub promoted: Instant,
    /// The new primary accepted a read-write session.
    pub writable: Instant,
    /// The old primary runs again as a standby and refused a write.
    pub old_primary_fenced: Instant,
    pub old_primary_port: u16,
    pub new_primary_port: u16,
    /// The error the old primary gave for a write (proof it refuses them).
    pub old_primary_refusal: String,
    /// Whether the old primary streams from the new one (ready for a
    /// switchover back).
    pub old_primary_streaming: bool,
}

impl SwitchoverReport {
    /// The steps, in order, for the run's event timeline.
    pub fn steps(&self) -> Vec<(Instant, String)> {
        vec![
            (self.fenced, "old primary fenced (clean shutdown)".into()),
            (
                self.caught_up,
                "standby caught up with the old primary".into(),
            ),
            (self.promoted, "standby promoted".into()),
            (self.writable, "new primary accepts writes".into()),
            (
                self.old_primary_fenced,
                "old primary restarted as standby, refuses writes".into(),
            ),
        ]
    }
}

/// When each step of an unplanned failover ended.
#[derive(Clone, Debug)]
pub struct FailoverReport {
    pub started: Instant,
    /// The primary and all its processes are dead (SIGKILL).
    pub killed: Instant,
    /// The standby left recovery (`pg_is_in_recovery()` false).
    pub promoted: Instant,
    pub writable: Instant,
    pub old_primary_port: u16,
    pub new_primary_port: u16,
}

impl FailoverReport {
    pub fn steps(&self) -> Vec<(Instant, String)> {
        vec![
            (self.killed, "primary killed (SIGKILL)".into()),
            (self.promoted, "standby promoted".into()),
            (self.writable, "new primary accepts writes".into()),
        ]
    }
}

impl LabDatabase {
    /// Planned switchover: fence the primary with a clean shutdown (its
    /// walsender ships everything first), wait until the standby has
    /// replayed the old primary's last record, promote it, then restart the
    /// old primary as a standby of the new one and check it refuses a write.
    pub async fn switchover(&self) -> Result<SwitchoverReport, DbError> {
        let started = Instant::now();
        if self.state.lock().await.paused {
            // A planned switchover first lets the standby catch up.
            self.resume_replication().await?;
            self.wait_streaming(Duration::from_secs(10)).await?;
        }
        self.preflight().await?;
        let tools = &self.tools;
        let mut st = self.state.lock().await;
        let (p, s) = (st.primary, st.standby());
        self.fence_primary(&mut st, p).await?;
        let fenced = Instant::now();
        let last = checkpoint_lsn(tools, &st.nodes[p].data).await?;

        self.wait_caught_up(&st, p, s, &last).await?;
        let caught_up = Instant::now();

        let (promoted, writable) = self.promote(&st, s, "was shut down cleanly").await?;
        st.primary = s;
        st.old_primary = Some(p);
        drop(st);
        self.after_promotion(s).await?;

        // The old primary comes back as a standby of the new one.
        let mut st = self.state.lock().await;
        let new_port = st.nodes[s].port;
        self.follow(&st.nodes[p], new_port)?;
        let old_port = st.nodes[p].port;
        st.nodes[p].start(tools, old_port, &[]).await?;
        drop(st);
        let refusal = self.check_refuses_writes(old_port).await?;
        let old_primary_fenced = Instant::now();
        let old_primary_streaming = self.wait_streaming(Duration::from_secs(20)).await.is_ok();
        if self.settings.synchronous && old_primary_streaming {
            self.set_sync_names(s, "*").await?;
        }
        Ok(SwitchoverReport {
            started,
            fenced,
            caught_up,
            promoted,
            writable,
            old_primary_fenced,
            old_primary_port: old_port,
            new_primary_port: new_port,
            old_primary_refusal: refusal,
            old_primary_streaming,
        })
    }

    /// Fences the primary `p` with a clean (fast) shutdown, so its
    /// walsender ships everything first. If it does not stop within 30s it
    /// is killed and the error says how to bring it back: nothing was
    /// promoted and nothing accepts writes.
    async fn fence_primary(&self, st: &mut State, p: usize) -> Result<(), DbError> {
        if !st.nodes[p].stop_fast(Duration::from_secs(30)).await {
            let pn = &st.nodes[p];
            return Err(DbError::FenceFailed {
                what_to_do: format!(
                    "the old primary {} did not shut down cleanly within 30s and was killed; \
                     the standby may lack its last writes and nothing was promoted: nothing \
                     accepts writes. Restart the old primary (`pg_ctl -D {} -o '-p {}' start` \
                     as user {}) or fail over to the standby accepting the loss; see {}",
                    pn.name,
                    pn.data.display(),
                    pn.port,
                    self.tools.user.name,
                    pn.log.display()
                ),
            });
        }
        Ok(())
    }

    /// Waits (up to the promote timeout) until standby `s` has replayed past
    /// `last`, the old primary `p`'s shutdown checkpoint. On timeout the
    /// error gives how far it got, and says restarting the old primary is
    /// safe since nothing was promoted.
    async fn wait_caught_up(
        &self,
        st: &State,
        p: usize,
        s: usize,
        last: &str,
    ) -> Result<(), DbError> {
        let limit = self.settings.promote_timeout.0;
        let deadline = Instant::now() + limit;
        let s_dsn = node::dsn(st.nodes[s].port);
        let mut replayed = String::from("unknown");
        loop {
            if let Ok(c) = super::connect(&s_dsn).await
                && let Ok(row) = c
                    .query_one(
                        &format!(
                            "SELECT pg_last_wal_replay_lsn()::text, pg_last_wal_replay_lsn() > '{last}'::pg_lsn"
                        ),
                        &[],
                    )
                    .await
            {
                replayed = row.get::<_, Option<String>>(0).unwrap_or_default();
                if row.get::<_, Option<bool>>(1).unwrap_or(false) {
                    break;
                }
            }
            if Instant::now() > deadline {
                let (pn, sn) = (&st.nodes[p], &st.nodes[s]);
                return Err(DbError::CatchUpTimeout {
                    what_to_do: format!(
                        "the old primary {} (data dir {}) was shut down cleanly at LSN {last}; \
                         standby {} (port {}) replayed only up to {replayed} within {limit:?}; \
                         nothing accepts writes now. Nothing was promoted, so it is safe to \
                         restart the old primary: `pg_ctl -D {} -o '-p {}' start` as user {}",
                        pn.name,
                        pn.data.display(),
                        sn.name,
                        sn.port,
                        pn.data.display(),
                        pn.port,
                        self.tools.user.name
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Unplanned failover: SIGKILL the primary and all its processes, then
    /// promote the standby and wait until it accepts writes.
    pub async fn failover(&self) -> Result<FailoverReport, DbError> {
        let started = Instant::now();
        let mut st = self.state.lock().await;
        let (p, s) = (st.primary, st.standby());
        if !st.nodes[s].running() {
            return Err(DbError::NotStreaming {
                detail: format!(
                    "no standby is running to fail over to (node {}); nothing was touched",
                    st.nodes[s].name
                ),
            });
        }
        st.nodes[p].kill().await;
        st.paused = false;
        let killed = Instant::now();
        let (promoted, writable) = self.promote(&st, s, "was killed").await?;
        st.primary = s;
        st.old_primary = Some(p);
        let old_primary_port = st.nodes[p].port;
        let new_primary_port = st.nodes[s].port;
        drop(st);
        self.after_promotion(s).await?;
        Ok(FailoverReport {
            started,
            killed,
            promoted,
            writable,
            old_primary_port,
            new_primary_port,
        })
    }

    /// Promotes node `s` and waits (bounded by `promote_timeout`) until it
    /// accepts a read-write session. Returns (promoted, writable).
    async fn promote(
        &self,
        st: &State,
        s: usize,
        old_fate: &str,
    ) -> Result<(Instant, Instant), DbError> {
        let limit = self.settings.promote_timeout.0;
        let begin = Instant::now();
        let deadline = begin + limit;
        let n = &st.nodes[s];
        let old = &st.nodes[1 - s];
        let what_to_do = |why: &str| DbError::PromoteTimeout {
            waited: begin.elapsed(),
            what_to_do: format!(
                "{why}. The old primary {} (port {}, data dir {}) {old_fate}; standby {} \
                 (port {}, data dir {}) was asked to promote and does not accept writes: \
                 there may be NO primary. By hand, as user {}: read {}; if \
                 `psql -h 127.0.0.1 -p {} -U {SUPERUSER} -c 'SELECT pg_is_in_recovery()'` \
                 says `f`, it has promoted since and is the primary; otherwise promote it \
                 with `pg_ctl -D {} promote`. Do not restart the old primary while the \
                 standby may promote: two primaries would split the data.",
                old.name,
                old.port,
                old.data.display(),
                n.name,
                n.port,
                n.data.display(),
                self.tools.user.name,
                n.log.display(),
                n.port,
                n.data.display(),
            ),
        };
        let dsn = node::dsn(n.port);
        let client = super::connect(&dsn)
            .await
            .map_err(|e| what_to_do(&format!("cannot reach the standby: {e}")))?;
        // Ask without waiting: pg_promote(true) polls only every 100 ms,
        // which would blur the timings; poll recovery state ourselves.
        let asked =
            tokio::time::timeout(limit, client.query_one("SELECT pg_promote(false)", &[])).await;
        match asked {
            Ok(Ok(row)) if row.get::<_, bool>(0) => {}
            Ok(Ok(_)) => return Err(what_to_do("pg_promote returned false")),
            Ok(Err(e)) => {
                return Err(what_to_do(&format!(
                    "pg_promote failed: {}",
                    super::pg_detail(&e)
                )));
            }
            Err(_) => return Err(what_to_do("pg_promote did not return")),
        }
        let mut promoted = None;
        loop {
            // The bound holds however fast the standby is: a promotion
            // seen only after the deadline is a timeout, not a success.
            if Instant::now() > deadline {
                return Err(what_to_do(if promoted.is_some() {
                    "out of recovery but still refusing read-write sessions"
                } else {
                    "still in recovery"
                }));
            }
            if promoted.is_none()
                && let Ok(row) = client.query_one("SELECT pg_is_in_recovery()", &[]).await
                && !row.get::<_, bool>(0)
            {
                promoted = Some(Instant::now());
            }
            // Writable as a new client sees it: a fresh read-write session.
            if let Some(promoted) = promoted
                && let Ok(c) = super::connect(&dsn).await
                && let Ok(row) = c
                    .query_one(
                        "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
                        &[],
                    )
                    .await
                && row.get::<_, bool>(0)
            {
                return Ok((promoted, Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A new primary has no standby yet: synchronous replication would make
    /// every commit wait forever, so it is switched off (as Patroni does)
    /// until a standby streams again.
    async fn after_promotion(&self, s: usize) -> Result<(), DbError> {
        if self.settings.synchronous {
            self.set_sync_names(s, "").await?;
        }
        Ok(())
    }

    /// Tries a write on `port`; Ok(the refusal) when refused as read-only.
    async fn check_refuses_writes(&self, port: u16) -> Result<String, DbError> {
        let client = super::connect(&node::dsn(port)).await?;
        match client
            .batch_execute("CREATE TABLE drill_fence_probe (x int)")
            .await
        {
            Err(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) =>
            {
                Ok(e.as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string()))
            }
            Err(e) => Err(DbError::query(
                "checking that the old primary refuses writes",
                &e,
            )),
            Ok(()) => {
                let _ = client.batch_execute("DROP TABLE drill_fence_probe").await;
                Err(DbError::OldPrimaryWritable {
                    what_to_do: format!(
                        "the server on 127.0.0.1:{port} accepted a write: stop it now \
                         (`pg_ctl -D <data dir> stop -m fast` as user {}) before clients write to both",
                        self.tools.user.name
                    ),
                })
            }
        }
    }
}

/// `Latest checkpoint location` of a stopped data directory.
async fn checkpoint_lsn(tools: &Toolbox, data: &std::path::Path) -> Result<String, DbError> {
    let out = tools
        .command("pg_controldata")
        .arg(data)
        .output()
        .await
        .map_err(|e| DbError::Query {
            what: "pg_controldata".into(),
            detail: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Latest checkpoint location:"))
        .map(|v| v.trim().to_string())
        .filter(|v| is_lsn(v))
        .ok_or_else(|| DbError::Query {
            what: "pg_controldata".into(),
            detail: format!(
                "no checkpoint location in its output: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        })
}

fn is_lsn(v: &str) -> bool {
    matches!(v.split_once('/'), Some((a, b))
        if !a.is_empty() && !b.is_empty()
            && a.chars().chain(b.chars()).all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_shape() {
        assert!(is_lsn("0/3000028"));
        assert!(is_lsn("1A/FF"));
        assert!(!is_lsn("0/30'; DROP"));
        assert!(!is_lsn("/1"));
    }
}
