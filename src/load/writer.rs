//! Open-loop database writer: row *i* (sequence number `base + i + 1`) is
//! due at `start + i/rate` and inserted into `drill_writes` whatever happened
//! to earlier rows. Every acknowledgement is logged as (seq, ack time), the
//! evidence `measure::rpo` compares with what the new primary holds.
//!
//! Inserts are pipelined on one connection, opened with the multi-host DSN
//! and `target_session_attrs=read-write`: when it breaks, the writer
//! reconnects with a short backoff and so finds the new primary by itself.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use crate::base::clock::Clock;
use crate::measure::Micros;
pub use crate::measure::rpo::WriterLog;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS drill_writes (
    seq bigint PRIMARY KEY,
    written_at timestamptz DEFAULT now())";
const INSERT: &str = "INSERT INTO drill_writes (seq) VALUES ($1)";

/// Shared between the writer and whoever stops or watches it.
pub struct WriterControl {
    stop: AtomicBool,
    /// A write not acknowledged within this is given up as indeterminate
    /// and its connection dropped (later writes on it would queue behind).
    pub write_timeout: Duration,
    acked: AtomicU64,
    failed: AtomicU64,
    indeterminate: AtomicU64,
    inflight: AtomicU64,
    last_ack: AtomicU64,
}

impl Default for WriterControl {
    fn default() -> Self {
        WriterControl::new(Duration::from_secs(5))
    }
}

impl WriterControl {
    pub fn new(write_timeout: Duration) -> WriterControl {
        WriterControl {
            stop: AtomicBool::new(false),
            write_timeout,
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            indeterminate: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            last_ack: AtomicU64::new(0),
        }
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }
    /// Writes given up as indeterminate so far (not counting those in flight).
    pub fn indeterminate(&self) -> u64 {
        self.indeterminate.load(Ordering::Acquire)
    }
    /// Sent and not yet answered: indeterminate if the run ended now.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Acquire)
    }
    /// Run-clock time of the latest acknowledgement (0 before the first).
    pub fn last_ack(&self) -> Micros {
        self.last_ack.load(Ordering::Acquire)
    }
}

/// One live read-write session.
struct Session {
    client: Client,
    insert: Statement,
    driver: AbortHandle,
}

struct Shared {
    log: Mutex<WriterLog>,
    /// Seqs sent and not yet answered.
    inflight: Mutex<BTreeSet<u64>>,
    control: Arc<WriterControl>,
    clock: Clock,
}

impl Shared {
    fn ack(&self, seq: u64) {
        let now = self.clock.now();
        self.log.lock().expect("log lock").acks.push((seq, now));
        self.control.acked.fetch_add(1, Ordering::AcqRel);
        self.control.last_ack.fetch_max(now, Ordering::AcqRel);
    }
    fn fail(&self, seq: u64) {
        let now = self.clock.now();
        self.log.lock().expect("log lock").failed.push((seq, now));
        self.control.failed.fetch_add(1, Ordering::AcqRel);
    }
    fn unknown(&self, seq: u64) {
        self.log.lock().expect("log lock").indeterminate.push(seq);
        self.control.indeterminate.fetch_add(1, Ordering::AcqRel);
    }
}

const SPIN_BELOW_US: u64 = 1_500;

/// Writes on the open-loop schedule from `start` (run clock) until
/// stopped, then waits for the writes in flight (each ends by the write
/// timeout) and returns the log. Never fails: connection problems become
/// failed or indeterminate writes. A rate that is not a positive number
/// writes nothing (validation belongs to the scenario).
pub async fn run(
    dsn: String,
    rate: f64,
    clock: Clock,
    start: Micros,
    control: Arc<WriterControl>,
) -> WriterLog {
    if !(rate.is_finite() && rate > 0.0) {
        return WriterLog::default();
    }
    let shared = Arc::new(Shared {
        log: Mutex::new(WriterLog::default()),
        inflight: Mutex::new(BTreeSet::new()),
        control: control.clone(),
        clock,
    });
    let (session_tx, session_rx) = watch::channel::<Option<Arc<Session>>>(None);
    // Sequence numbers continue after whatever the table already holds, so
    // a reused table never turns writes into duplicate-key failures.
    let (base, first) = first_session(&dsn, &clock, start, &control).await;
    // Published before the first write is due, so it does not fail for
    // want of a session the connector has not yet handed over.
    let first = first.map(|opened| publish(opened, &session_tx, &shared));
    let connector = tokio::spawn(keep_connected(dsn, session_tx, shared.clone(), first));

    let period_us = 1e6 / rate;
    let mut i: u64 = 0;
    loop {
        if control.stopped() {
            break;
        }
        let due = start + (i as f64 * period_us) as Micros;
        let now = clock.now();
        if due > now {
            if due - now > SPIN_BELOW_US {
                tokio::time::sleep_until(clock.at(due - 1_000).into()).await;
            } else {
                tokio::task::yield_now().await;
            }
            continue;
        }
        let seq = base + i + 1;
        i += 1;
        shared.log.lock().expect("log lock").scheduled += 1;
        let session = session_rx.borrow().clone();
        let Some(session) = session.filter(|s| !s.client.is_closed()) else {
            // No read-write server to send to: definitely not written.
            shared.fail(seq);
            continue;
        };
        shared.inflight.lock().expect("inflight lock").insert(seq);
        control.inflight.fetch_add(1, Ordering::AcqRel);
        let shared = shared.clone();
        tokio::spawn(async move {
            let timeout = shared.control.write_timeout;
            let value = seq as i64;
            let result =
                tokio::time::timeout(timeout, session.client.execute(&session.insert, &[&value]))
                    .await;
            let was_inflight = shared.inflight.lock().expect("inflight lock").remove(&seq);
            if was_inflight {
                match result {
                    Ok(Ok(_)) => shared.ack(seq),
                    Ok(Err(e)) if refused_cleanly(&e) => shared.fail(seq),
                    Ok(Err(_)) => shared.unknown(seq),
                    Err(_) => {
                        shared.unknown(seq);
                        session.driver.abort();
                    }
                }
            }
            shared.control.inflight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    // Each write in flight ends by the write timeout; whatever is still
    // unanswered after that is indeterminate.
    let deadline = clock.now() + control.write_timeout.as_micros() as Micros + 1_000_000;
    while control.inflight() > 0 && clock.now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    connector.abort();
    let leftover: Vec<u64> = std::mem::take(&mut *shared.inflight.lock().expect("inflight lock"))
        .into_iter()
        .collect();
    for seq in leftover {
        shared.unknown(seq);
    }
    if let Some(s) = session_rx.borrow().as_ref() {
        s.driver.abort();
    }
    std::mem::take(&mut *shared.log.lock().expect("log lock"))
}

/// A server error that proves the row was not written: the statement was
/// refused (read-only, constraint, permission…). Connection-level errors
/// (class 08), shutdowns and cancellations (class 57), resource and system
/// errors leave the outcome unknown: a commit may have happened first.
fn refused_cleanly(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| proves_not_written(db.code()))
}

fn proves_not_written(code: &SqlState) -> bool {
    let class = code.code().get(..2).unwrap_or("");
    !matches!(class, "08" | "57" | "53" | "58" | "XX")
        && *code != SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN
}

type Opened = (Client, Statement, JoinHandle<()>);

/// The highest seq already in the table (0 when empty), and the session it
/// was read on, which becomes the writer's first. Tries until `start`, so
/// the first writes do not fail for want of a connection opened too late.
async fn first_session(
    dsn: &str,
    clock: &Clock,
    start: Micros,
    control: &WriterControl,
) -> (u64, Option<Opened>) {
    loop {
        if let Ok(Ok((client, insert, driver))) =
            tokio::time::timeout(control.write_timeout, open(dsn)).await
        {
            let base = client
                .query_one("SELECT coalesce(max(seq), 0) FROM drill_writes", &[])
                .await
                .map(|r| r.get::<_, i64>(0).max(0) as u64);
            match base {
                Ok(base) => return (base, Some((client, insert, driver))),
                Err(_) => driver.abort(),
            }
        }
        if clock.now() >= start || control.stopped() {
            return (0, None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open(dsn: &str) -> Result<Opened, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let prepared = async {
        client.batch_execute(CREATE).await?;
        client.prepare(INSERT).await
    }
    .await;
    match prepared {
        Ok(insert) => Ok((client, insert, driver)),
        Err(e) => {
            driver.abort();
            Err(e)
        }
    }
}

/// Publishes a fresh session for the writes to use; returns its
/// connection task.
fn publish(
    (client, insert, driver): Opened,
    tx: &watch::Sender<Option<Arc<Session>>>,
    shared: &Shared,
) -> JoinHandle<()> {
    shared
        .log
        .lock()
        .expect("log lock")
        .connected
        .push(shared.clock.now());
    tx.send_replace(Some(Arc::new(Session {
        client,
        insert,
        driver: driver.abort_handle(),
    })));
    driver
}

/// Waits until the connection ends (server gone, or aborted after a write
/// timeout); false when the writer was stopped first.
async fn until_closed(mut driver: JoinHandle<()>, shared: &Shared) -> bool {
    loop {
        tokio::select! {
            _ = &mut driver => return true,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if shared.control.stopped() {
                    return false;
                }
            }
        }
    }
}

/// Keeps one read-write session published; reconnects when it breaks, with
/// a backoff from 20 ms doubling to 320 ms.
async fn keep_connected(
    dsn: String,
    tx: watch::Sender<Option<Arc<Session>>>,
    shared: Arc<Shared>,
    first: Option<JoinHandle<()>>,
) {
    if let Some(driver) = first {
        if !until_closed(driver, &shared).await {
            return;
        }
        tx.send_replace(None);
    }
    let mut backoff = Duration::from_millis(20);
    loop {
        if shared.control.stopped() {
            return;
        }
        // A blackholed host may never answer a SYN: bound each attempt.
        match tokio::time::timeout(shared.control.write_timeout, open(&dsn)).await {
            Ok(Ok(opened)) => {
                backoff = Duration::from_millis(20);
                let driver = publish(opened, &tx, &shared);
                if !until_closed(driver, &shared).await {
                    return;
                }
                tx.send_replace(None);
            }
            Ok(Err(_)) | Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(320));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_statement_refusals_prove_nothing_was_written() {
        assert!(proves_not_written(&SqlState::READ_ONLY_SQL_TRANSACTION));
        assert!(proves_not_written(&SqlState::UNIQUE_VIOLATION));
        assert!(proves_not_written(&SqlState::INSUFFICIENT_PRIVILEGE));
        // Terminated or cut off mid-commit: the row may be there.
        assert!(!proves_not_written(&SqlState::ADMIN_SHUTDOWN));
        assert!(!proves_not_written(&SqlState::CONNECTION_FAILURE));
        assert!(!proves_not_written(&SqlState::QUERY_CANCELED));
        assert!(!proves_not_written(
            &SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN
        ));
        // Rolled back: certainly not written.
        assert!(proves_not_written(&SqlState::T_R_SERIALIZATION_FAILURE));
    }
}
