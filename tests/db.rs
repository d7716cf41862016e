//! Database drills against a real PostgreSQL primary and hot standby (no
//! mocks): switchover and failover under an open-loop writer, data loss
//! measured by `measure::rpo` and checked against the old primary's own data
//! directory. Needs the PostgreSQL server binaries; without them every test
//! fails with the install hint.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use drill::base::clock::Clock;
use drill::base::units::Dur;
use drill::db::{self, DbError, DbSettings, LabDatabase};
use drill::load::writer::{self, WriterControl, WriterLog};
use drill::measure::rpo::rpo;

async fn lab(synchronous: bool) -> LabDatabase {
    let settings = DbSettings {
        synchronous,
        promote_timeout: Dur::secs(30),
    };
    match db::cluster::start(&settings).await {
        Ok(db) => db,
        Err(e) => panic!("cannot start the lab database: {e}"),
    }
}

/// A writer at `rate`/s against the lab's multi-host DSN, from now on.
fn writer(
    db: &LabDatabase,
    clock: Clock,
    rate: f64,
) -> (Arc<WriterControl>, tokio::task::JoinHandle<WriterLog>) {
    let control = Arc::new(WriterControl::new(Duration::from_secs(3)));
    let task = tokio::spawn(writer::run(
        db.writer_dsn(),
        rate,
        clock,
        clock.now(),
        control.clone(),
    ));
    (control, task)
}

/// Every scheduled write ends exactly one way: acknowledged, failed or
/// indeterminate; and none failed in steady state, before the fault.
fn assert_accounted(log: &WriterLog, inject: u64) {
    let early: Vec<_> = log.failed.iter().filter(|&&(_, t)| t < inject).collect();
    assert!(
        early.is_empty(),
        "writes failed before the fault: {early:?}"
    );
    let mut seen = BTreeSet::new();
    let all = log
        .acks
        .iter()
        .map(|&(s, _)| s)
        .chain(log.failed.iter().map(|&(s, _)| s))
        .chain(log.indeterminate.iter().copied());
    for seq in all {
        assert!(seen.insert(seq), "write {seq} counted twice");
    }
    assert_eq!(seen.len() as u64, log.scheduled, "writes unaccounted for");
}

fn expand(ranges: &[(u64, u64)]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|&(a, b)| a..=b).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_load_loses_nothing_and_fences_the_old_primary() {
    let db = lab(false).await;
    db.preflight().await.expect("standby streaming");
    let clock = Clock::start();
    let (control, task) = writer(&db, clock, 100.0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(control.acked() > 50, "writer acked {}", control.acked());
    // A lagging standby: preflight refuses it, and a planned switchover
    // lets it catch up before promoting, so even then nothing is lost.
    db.pause_replication().await.expect("pause");
    let err = db
        .preflight()
        .await
        .expect_err("preflight passed while paused");
    assert!(matches!(err, DbError::NotStreaming { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let inject = clock.now();
    let report = db.switchover().await.expect("switchover");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    control.stop();
    let log = task.await.unwrap();

    assert_accounted(&log, inject);
    let survivors = db.rows_on_primary().await.unwrap();
    let r = rpo(&log, &survivors, inject);
    eprintln!(
        "switchover: fence {:?}, caught up {:?}, promoted {:?}, writable {:?}; {} failed; {r:?}",
        report.fenced - report.started,
        report.caught_up - report.started,
        report.promoted - report.started,
        report.writable - report.started,
        log.failed.len(),
    );
    assert_eq!(r.lost_writes, 0, "lost {:?}", r.lost_ranges);
    assert_eq!(r.rpo_s, 0.0);
    assert!(r.acknowledged > 200, "{r:?}");
    // Writes resumed on the new primary, found through the multi-host DSN.
    let writable = clock.since(report.writable);
    assert!(
        log.first_ack_after(writable).is_some(),
        "no write after promotion"
    );
    let rto = r.write_rto_s.expect("writes recovered");
    assert!(rto > 0.0 && rto < 10.0, "write rto {rto}");
    assert!(r.write_rto_sustained_s.unwrap() >= rto);

    // The old primary refuses writes, seen from an ordinary client.
    assert!(
        report.old_primary_refusal.contains("read-only"),
        "{report:?}"
    );
    let old = db
        .old_primary_dsn()
        .await
        .expect("old primary runs as standby");
    let client = db::connect(&old).await.unwrap();
    let err = client
        .execute("INSERT INTO drill_writes (seq) VALUES (-1)", &[])
        .await
        .expect_err("old primary accepted a write");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err}"
    );
    assert!(report.old_primary_streaming, "old primary does not follow");
    db.preflight()
        .await
        .expect("the swapped pair streams again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_failover_loses_nothing() {
    let db = lab(true).await;
    db.preflight().await.expect("standby streaming in sync");
    let clock = Clock::start();
    let (control, task) = writer(&db, clock, 100.0);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let inject = clock.now();
    let report = db.failover().await.expect("failover");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    control.stop();
    let log = task.await.unwrap();

    assert_accounted(&log, inject);
    let survivors = db.rows_on_primary().await.unwrap();
    let r = rpo(&log, &survivors, inject);
    eprintln!(
        "sync failover: killed {:?}, promoted {:?}, writable {:?}; {r:?}",
        report.killed - report.started,
        report.promoted - report.started,
        report.writable - report.started,
    );
    assert!(r.acknowledged > 200, "{r:?}");
    assert_eq!(r.lost_writes, 0, "lost {:?}", r.lost_ranges);
    assert_eq!(r.rpo_s, 0.0);
    assert!(r.write_rto_s.is_some(), "writes never resumed: {r:?}");

    // The old primary's own data agrees: nothing acknowledged exists only there.
    let old: BTreeSet<u64> = db.old_primary_rows().await.unwrap().into_iter().collect();
    let new: BTreeSet<u64> = survivors.into_iter().collect();
    let only_on_old: Vec<u64> = log
        .acks
        .iter()
        .map(|&(s, _)| s)
        .filter(|s| old.contains(s) && !new.contains(s))
        .collect();
    assert!(only_on_old.is_empty(), "{only_on_old:?}");
}

/// The truth test: the standby falls behind by a known amount, the primary
/// is killed, and the writes `rpo` calls lost are exactly those the old
/// primary's data directory holds, acknowledged, that the new primary lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_writes_are_exactly_what_only_the_old_primary_holds() {
    let db = lab(false).await;
    let clock = Clock::start();
    let (control, task) = writer(&db, clock, 100.0);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    db.pause_replication().await.expect("pause");
    let paused_at = clock.now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let inject = clock.now();
    db.failover().await.expect("failover");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    control.stop();
    let log = task.await.unwrap();

    assert_accounted(&log, inject);
    let survivors = db.rows_on_primary().await.unwrap();
    let r = rpo(&log, &survivors, inject);
    let old: BTreeSet<u64> = db.old_primary_rows().await.unwrap().into_iter().collect();
    let new: BTreeSet<u64> = survivors.iter().copied().collect();
    let acked: BTreeSet<u64> = log.acks.iter().map(|&(s, _)| s).collect();

    // Every acknowledged write is on one of the two servers.
    let nowhere: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|s| !old.contains(s) && !new.contains(s))
        .collect();
    assert!(
        nowhere.is_empty(),
        "acked but on neither server: {nowhere:?}"
    );

    let truth: BTreeSet<u64> = acked
        .iter()
        .copied()
        .filter(|s| old.contains(s) && !new.contains(s))
        .collect();
    let lost = expand(&r.lost_ranges);
    assert_eq!(lost, truth, "rpo disagrees with the old primary's data");
    assert_eq!(r.lost_writes, truth.len() as u64);

    // About one second of writes at 100/s was held back by the pause.
    let acked_while_paused = log
        .acks
        .iter()
        .filter(|&&(_, a)| a >= paused_at && a <= inject)
        .count() as u64;
    eprintln!(
        "truth: lost {} writes in {:?}, rpo {:.3}s, acked while paused {acked_while_paused}, \
         indeterminate {}, write rto {:?}",
        r.lost_writes, r.lost_ranges, r.rpo_s, r.indeterminate, r.write_rto_s
    );
    assert!(
        (60..=150).contains(&r.lost_writes),
        "lost {} for a 1 s pause at 100/s",
        r.lost_writes
    );
    assert!(r.lost_writes + 5 >= acked_while_paused, "{r:?}");
    assert!(r.rpo_s > 0.6 && r.rpo_s < 1.6, "rpo {}", r.rpo_s);
    assert!(r.write_rto_s.is_some(), "writes never resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_standby_that_is_not_streaming() {
    let db = lab(false).await;
    db.preflight().await.expect("streaming at first");
    db.stop_standby().await;
    let err = db
        .preflight()
        .await
        .expect_err("preflight passed without a standby");
    assert!(matches!(err, DbError::NotStreaming { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("standby"), "{err}");
    // Failing over now would leave no primary: refused, nothing touched.
    let err = db.failover().await.expect_err("failover without standby");
    assert!(matches!(err, DbError::NotStreaming { .. }), "{err}");
    assert_eq!(db.rows_on_primary().await.unwrap(), Vec::<u64>::new());

    // Dropping the lab kills every server and removes its directory.
    let dir = db.dir().to_path_buf();
    let dsn = db.writer_dsn();
    drop(db);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        db::connect(&dsn).await.is_err(),
        "a server outlived the lab"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dsns_and_wrong_passwords_read_clearly() {
    let err = db::check_dsn("host=127.0.0.1 port=notaport")
        .await
        .expect_err("bad port");
    assert!(matches!(err, DbError::BadDsn { .. }), "{err}");
    assert_eq!(err.exit_code(), 2);

    let db = lab(false).await;
    db::check_dsn(&db.password_dsn(db.lab_password()).await)
        .await
        .expect("right password");
    let err = db::check_dsn(&db.password_dsn("hunter2").await)
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    assert!(matches!(err, DbError::Auth { .. }), "{text}");
    assert_eq!(err.exit_code(), 2);
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("hunter2"), "password leaked: {text}");

    // Nothing listening: a connection error, preflight-style exit 3.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = db::check_dsn(&format!(
        "host=127.0.0.1 port={port} user=x connect_timeout=2"
    ))
    .await
    .expect_err("nothing listens");
    assert!(matches!(err, DbError::Connect { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_that_times_out_says_what_to_do() {
    let settings = DbSettings {
        synchronous: false,
        promote_timeout: Dur::millis(1),
    };
    let db = db::cluster::start(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot start the lab database: {e}"));
    let err = db.failover().await.expect_err("promoted within 1 ms");
    let text = err.to_string();
    assert!(matches!(err, DbError::PromoteTimeout { .. }), "{text}");
    assert_eq!(err.exit_code(), 4);
    assert!(text.contains("NO primary"), "{text}");
    assert!(text.contains("promote"), "{text}");
    assert!(text.contains(&db.dir().display().to_string()), "{text}");
}

/// The concurrency column on the database, 20 repetitions: two runs take
/// the drill lock on the same primary at the same instant; exactly one
/// gets it, the other is told which run holds it and since when. A run
/// started while the winner holds it (mid-fault) is refused too. When the
/// winner's session ends (its run ended, or was killed with -9) the lock is
/// free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_on_one_database_one_holds_the_lock_and_the_other_is_refused() {
    use drill::db::claim::DbClaim;
    let mut db = lab(false).await;
    let dsn = db.writer_dsn();
    for rep in 0..20 {
        let (a_id, b_id) = (format!("db{rep}-a"), format!("db{rep}-b"));
        let (a, b) = tokio::join!(
            DbClaim::take(&dsn, &a_id, "tester"),
            DbClaim::take(&dsn, &b_id, "tester")
        );
        let (winner, w_id, err) = match (a, b) {
            (Ok(w), Err(e)) => (w, &a_id, e),
            (Err(e), Ok(w)) => (w, &b_id, e),
            (a, b) => panic!(
                "rep {rep}: exactly one run holds the lock: a {:?}, b {:?}",
                a.err(),
                b.err()
            ),
        };
        let msg = err.to_string();
        assert_eq!(err.exit_code(), 3, "{msg}");
        assert!(
            msg.contains(&format!("held by drill run {w_id} by tester since 20"))
                && msg.contains("nothing was injected"),
            "rep {rep}: {msg}"
        );
        let mid = DbClaim::take(&dsn, &format!("db{rep}-mid"), "tester").await;
        assert!(
            mid.is_err(),
            "rep {rep}: a run started mid-fault is refused"
        );
        if rep % 2 == 0 {
            winner.release().await;
        } else {
            drop(winner); // as if killed: the session ends, the lock with it
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let next = loop {
            match DbClaim::take(&dsn, &format!("db{rep}-next"), "tester").await {
                Ok(c) => break c,
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "never freed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        next.release().await;
    }
    db.stop().await;
}
