//! The optional reader probe beside the writer: reads at a set rate through
//! the same host list as the writer but to any node
//! (`target_session_attrs=any`), so a failover's effect on reads is measured
//! beside its effect on writes. Counts are kept per 100 ms bucket: memory
//! follows the drill's length, never the number of reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::writer::WriterControl;
use crate::base::clock::Clock;
use crate::measure::Micros;
use crate::results::ReadProbe;

const BUCKET_US: Micros = 100_000;
const READ: &str = "SELECT coalesce(max(seq), 0) FROM drill_writes";

/// Reads that ended in each 100 ms bucket: (ok, failed).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ReadLog {
    pub buckets: BTreeMap<u64, (u64, u64)>,
}

impl ReadLog {
    fn note(&mut self, at: Micros, ok: bool) {
        let b = self.buckets.entry(at / BUCKET_US).or_default();
        if ok { b.0 += 1 } else { b.1 += 1 }
    }

    /// Totals, and the read RTO of a fault injected at `inject`: from the
    /// inject to the first good read after the first failed one (0 when no
    /// read failed after it; None when reads never came back). Rounded up to
    /// the end of its 100 ms bucket, so it never understates.
    pub(crate) fn summary(&self, inject: Micros) -> ReadProbe {
        let (ok, failed) = self
            .buckets
            .values()
            .fold((0, 0), |(o, f), b| (o + b.0, f + b.1));
        let first_bucket = inject / BUCKET_US;
        let first_fail = self
            .buckets
            .range(first_bucket..)
            .find(|(_, b)| b.1 > 0)
            .map(|(k, _)| *k);
        let read_rto_s = match first_fail {
            None => Some(0.0),
            Some(fb) => self
                .buckets
                .range(fb..)
                .find(|(_, b)| b.0 > 0)
                .map(|(k, _)| (((k + 1) * BUCKET_US).saturating_sub(inject)) as f64 / 1e6),
        };
        ProbeSummary {
            reads: ok + failed,
            ok,
            failed,
            read_rto_s,
        }
        .into()
    }
}

struct ProbeSummary {
    reads: u64,
    ok: u64,
    failed: u64,
    read_rto_s: Option<f64>,
}

impl From<ProbeSummary> for ReadProbe {
    fn from(s: ProbeSummary) -> ReadProbe {
        ReadProbe {
            reads: s.reads,
            ok: s.ok,
            failed: s.failed,
            read_rto_s: s.read_rto_s,
        }
    }
}

/// The writer's DSN, rewritten to accept any node.
pub(crate) fn any_node(dsn: &str) -> String {
    if dsn.contains("target_session_attrs=") {
        dsn.replace(
            "target_session_attrs=read-write",
            "target_session_attrs=any",
        )
    } else {
        format!("{dsn} target_session_attrs=any")
    }
}

/// Reads on the open-loop schedule from `start` until `control` stops.
pub(crate) async fn run(
    dsn: String,
    rate: f64,
    clock: Clock,
    start: Micros,
    control: Arc<WriterControl>,
) -> ReadLog {
    let log = Arc::new(Mutex::new(ReadLog::default()));
    if !(rate.is_finite() && rate > 0.0) {
        return ReadLog::default();
    }
    let timeout = control.write_timeout;
    let client: Arc<tokio::sync::Mutex<Option<Arc<Client>>>> = Arc::default();
    let mut i = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while !control.stopped() {
        let due = start + (i as f64 * 1e6 / rate) as Micros;
        i += 1;
        let now = clock.now();
        if due > now {
            tokio::time::sleep(Duration::from_micros(due - now)).await;
        }
        let (client, log) = (client.clone(), log.clone());
        let dsn = dsn.clone();
        tasks.spawn(async move {
            let ok = tokio::time::timeout(timeout, read(&client, &dsn))
                .await
                .is_ok_and(|r| r);
            log.lock().expect("read log").note(clock.now(), ok);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    log.lock().expect("read log").clone()
}

/// One read on the shared connection, (re)connecting when there is none.
async fn read(client: &tokio::sync::Mutex<Option<Arc<Client>>>, dsn: &str) -> bool {
    let c = {
        let mut guard = client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            match tokio_postgres::connect(dsn, NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    *guard = Some(Arc::new(c));
                }
                Err(_) => return false,
            }
        }
        Arc::clone(guard.as_ref().expect("connected"))
    };
    c.query_one(READ, &[]).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_rto_runs_from_the_inject_to_the_first_good_read_after_a_failure() {
        let mut log = ReadLog::default();
        for t in (0..100).map(|i| i * 50_000u64) {
            // Reads fail from 2.0 s to 2.75 s.
            log.note(t, !(2_000_000..2_750_000).contains(&t));
        }
        let s = log.summary(1_900_000);
        assert_eq!((s.reads, s.failed), (100, 15));
        assert_eq!(
            s.read_rto_s,
            Some(0.9),
            "first good read in the 2.8 s bucket"
        );
        assert_eq!(
            log.summary(3_000_000).read_rto_s,
            Some(0.0),
            "no failure after 3 s"
        );
    }

    #[test]
    fn the_dsn_accepts_any_node() {
        assert_eq!(
            any_node("host=a,b target_session_attrs=read-write"),
            "host=a,b target_session_attrs=any"
        );
        assert_eq!(any_node("host=a"), "host=a target_session_attrs=any");
    }
}
