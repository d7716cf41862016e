//! The runner's side of the agents: align each agent's clock with the
//! run's (min-RTT hello), give each its share of the one-generator schedule,
//! poll every 100 ms and apply each delta to the run's recorder (so checks,
//! abort rules, recovery and the status line work unchanged) and to its
//! vantage point's recorder, stop them, and record an agent that fails as
//! missing from its last frontier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::local::LocalAgents;
use super::protocol::{self, Hello, Poll, PollReply, Share, Template};
use super::{AgentLink, Transport, Vantage};
use crate::base::clock::Clock;
use crate::load::http::HttpLoad;
use crate::measure::recorder::GeneratorInfo;
use crate::measure::{Micros, Recorder};

/// Hellos per agent; the one with the shortest round trip aligns the clock.
const HELLOS: usize = 5;
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);
/// Results due this long before a poll are attributed to their phase: the
/// runner marks a phase at most this long after the instant it names.
const SETTLE_MARGIN_US: Micros = 100_000;
/// An agent whose polls fail this long is missing.
pub(crate) const MISSING_AFTER_US: Micros = 2_000_000;

/// What the report says about one agent.
#[derive(Clone, Debug)]
pub(crate) struct AgentFacts {
    pub name: String,
    /// Agent clock minus run clock, and the bound on its error (half the
    /// shortest hello round trip), µs.
    pub offset_us: i64,
    pub clock_bound_us: Micros,
    /// Its share of the schedule is missing from this instant (run clock):
    /// its last frontier before it failed.
    pub missing_from: Option<Micros>,
    /// Why it was marked missing.
    pub why: Option<String>,
    /// When the runner noticed (run clock).
    pub noticed_at: Option<Micros>,
}

/// One vantage point during and after the run.
pub(crate) struct VantageRun {
    pub name: String,
    /// Where this vantage point's requests go, when not the load's URL
    /// (a lab region's ingress gateway).
    pub url: Option<hyper::Uri>,
    pub rec: Arc<Mutex<Recorder>>,
    /// Indices into the fleet's agents.
    pub agents: Vec<usize>,
}

/// Agents aligned and (once started) polled.
pub(crate) struct Fleet {
    links: Vec<(AgentLink, usize)>,
    pub facts: Arc<Mutex<Vec<AgentFacts>>>,
    pub vantages: Vec<VantageRun>,
    local: Option<LocalAgents>,
    /// Agents whose going missing was already told (see `news`).
    told: Vec<bool>,
    /// The run-clock instant every agent stops sending at (0: running).
    stop_at: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    /// Aligns every agent's clock with `clock`. `local`: the processes
    /// behind local vantage points, killed with the fleet.
    pub(crate) async fn align(
        vantages: Vec<Vantage>,
        local: Option<LocalAgents>,
        clock: Clock,
    ) -> Result<Fleet, String> {
        let mut links = Vec::new();
        let mut facts = Vec::new();
        let mut runs = Vec::new();
        for (v, vantage) in vantages.into_iter().enumerate() {
            let mut idx = Vec::new();
            for a in vantage.agents {
                let (offset_us, clock_bound_us) = align(&a.transport, clock)
                    .await
                    .map_err(|e| format!("agent {}: {e}", a.name))?;
                idx.push(links.len());
                facts.push(AgentFacts {
                    name: a.name.clone(),
                    offset_us,
                    clock_bound_us,
                    missing_from: None,
                    why: None,
                    noticed_at: None,
                });
                links.push((a, v));
            }
            runs.push(VantageRun {
                name: vantage.name,
                url: None,
                rec: Arc::new(Mutex::new(Recorder::new(1, 1))),
                agents: idx,
            });
        }
        if links.is_empty() {
            return Err("no agents".into());
        }
        let n = links.len();
        Ok(Fleet {
            links,
            facts: Arc::new(Mutex::new(facts)),
            vantages: runs,
            local,
            told: vec![false; n],
            stop_at: Arc::new(AtomicU64::new(0)),
            tasks: Vec::new(),
        })
    }

    /// Agents that went missing since the last call: when it was noticed,
    /// and what to tell (an event of the run).
    pub(crate) fn news(&mut self) -> Vec<(Micros, String)> {
        let facts = self.facts.lock().expect("facts");
        let mut out = Vec::new();
        for (f, told) in facts.iter().zip(self.told.iter_mut()) {
            if let (false, Some(from), Some(at)) = (*told, f.missing_from, f.noticed_at) {
                *told = true;
                out.push((
                    at,
                    format!(
                        "agent {} missing: its share is missing from t+{:.3}s ({})",
                        f.name,
                        from as f64 / 1e6,
                        f.why.as_deref().unwrap_or("no reason")
                    ),
                ));
            }
        }
        out
    }

    /// How far ahead to put the schedule's start so that every agent's
    /// `start` arrives before it: 300 ms, plus two round trips per agent
    /// (the calls go one after another).
    pub(crate) fn start_lead_us(&self) -> Micros {
        let facts = self.facts.lock().expect("facts");
        300_000 + facts.iter().map(|f| 4 * f.clock_bound_us).sum::<Micros>()
    }

    /// Gives agent j of N rate r/N and first due time `start + j/r`, so
    /// request j + kN of the one-generator schedule is its request k; then
    /// polls each. `rec`: the run's recorder.
    pub(crate) async fn start(
        &mut self,
        load: &HttpLoad,
        clock: Clock,
        start: Micros,
        rec: &Arc<Mutex<Recorder>>,
        idle_timeout: Duration,
    ) -> Result<(), String> {
        let n = self.links.len();
        let (bucket_us, horizon_us) = {
            let r = rec.lock().expect("recorder lock");
            (
                r.bucket_us(),
                load.timeout.as_micros() as Micros + 1_000_000,
            )
        };
        let per_agent_limit = load.max_in_flight.div_ceil(n).max(1);
        rec.lock().expect("recorder lock").expect_senders(
            GeneratorInfo {
                workers: n,
                max_in_flight: per_agent_limit * n,
                tick_us: load.tick.as_micros() as Micros,
            },
            start,
        );
        for v in &mut self.vantages {
            let mut r = Recorder::new(bucket_us, horizon_us);
            r.expect_senders(
                GeneratorInfo {
                    workers: v.agents.len(),
                    max_in_flight: per_agent_limit * v.agents.len(),
                    tick_us: load.tick.as_micros() as Micros,
                },
                start,
            );
            v.rec = Arc::new(Mutex::new(r));
        }
        let mut template = Template::of(load);
        template.max_in_flight = per_agent_limit;
        for (j, (link, v)) in self.links.iter().enumerate() {
            let offset_us = self.facts.lock().expect("facts")[j].offset_us;
            let mut template = template.clone();
            if let Some(url) = &self.vantages[*v].url {
                template.url = url.to_string();
            }
            let share = Share {
                template,
                rate: load.rate / n as f64,
                start_us: start + (j as f64 * 1e6 / load.rate) as Micros,
                offset_us,
                bucket_us,
                horizon_us,
                idle_timeout_ms: idle_timeout.as_millis() as u64,
            };
            link.transport
                .call::<_, serde_json::Value>(protocol::START, &share)
                .await
                .map_err(|e| format!("agent {}: start: {e}", link.name))?;
        }
        for (j, (link, v)) in self.links.iter().enumerate() {
            let (vrec, slot) = {
                let vr = &self.vantages[*v];
                let slot = vr
                    .agents
                    .iter()
                    .position(|&a| a == j)
                    .expect("agent in its vantage");
                (vr.rec.clone(), slot)
            };
            let poller = Poller {
                transport: link.transport.clone(),
                j,
                slot,
                main: rec.clone(),
                vantage: vrec,
                clock,
                start,
                stop_grace_us: load.timeout.as_micros() as Micros + 3_000_000,
                stop_at: self.stop_at.clone(),
                facts: self.facts.clone(),
            };
            self.tasks.push(tokio::spawn(poller.run()));
        }
        Ok(())
    }

    /// Stops every agent and waits for its last delta (each in-flight
    /// request ends by its timeout), unless `hurry`. Then kills the local
    /// agents. Marks copied, the vantage recorders are ready for reports.
    pub(crate) async fn stop(&mut self, hurry: bool, clock: Clock, rec: &Arc<Mutex<Recorder>>) {
        // One instant for all, far enough ahead for every stop call to
        // arrive (each poller sees it within a poll period).
        let at = clock.now() + self.start_lead_us() + POLL_EVERY.as_micros() as Micros;
        self.stop_at.store(at, Ordering::Release);
        for t in self.tasks.drain(..) {
            if hurry {
                t.abort();
            } else {
                let _ = t.await;
            }
        }
        if let Some(local) = self.local.as_mut() {
            {
                let facts = &mut *self.facts.lock().expect("facts");
                for (j, f) in facts.iter_mut().enumerate() {
                    if f.why.is_some()
                        && let Some(status) = local.exited(j)
                    {
                        f.why = f
                            .why
                            .take()
                            .map(|w| format!("{w}; its process exited ({status})"));
                    }
                }
            }
            local.kill().await;
        }
        let marks = rec.lock().expect("recorder lock").marks().to_vec();
        for v in &self.vantages {
            let mut r = v.rec.lock().expect("recorder lock");
            for &(p, at) in &marks {
                r.mark(p, at);
            }
        }
    }
}

/// Offset (agent − runner) and its error bound, from the hello with the
/// shortest round trip.
async fn align(t: &Transport, clock: Clock) -> Result<(i64, Micros), String> {
    let mut best: Option<(Micros, i64)> = None;
    for _ in 0..HELLOS {
        let t1 = clock.now();
        let h: Hello = t
            .call(protocol::HELLO, &serde_json::json!({}))
            .await
            .map_err(|e| format!("hello ({}): {e}", t.describe()))?;
        let t3 = clock.now();
        if h.version != protocol::VERSION {
            return Err(format!(
                "speaks protocol version {}, this drill {}: use the same drill release for runner and agents",
                h.version,
                protocol::VERSION
            ));
        }
        let rtt = t3 - t1;
        let offset = h.agent_us as i64 - ((t1 + t3) / 2) as i64;
        if best.is_none_or(|(r, _)| rtt < r) {
            best = Some((rtt, offset));
        }
    }
    let (rtt, offset) = best.expect("at least one hello");
    Ok((offset, rtt.div_ceil(2)))
}

/// Polls one agent until it is done or missing.
struct Poller {
    transport: Transport,
    j: usize,
    /// Its index among its vantage point's agents.
    slot: usize,
    main: Arc<Mutex<Recorder>>,
    vantage: Arc<Mutex<Recorder>>,
    clock: Clock,
    start: Micros,
    stop_grace_us: Micros,
    stop_at: Arc<AtomicU64>,
    facts: Arc<Mutex<Vec<AgentFacts>>>,
}

impl Poller {
    async fn run(self) {
        let mut ack = 0;
        let mut frontier = self.start;
        let mut last_ok = self.clock.now();
        let mut stop_sent: Option<Micros> = None;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.clock.now();
            let stop_at = self.stop_at.load(Ordering::Acquire);
            if stop_sent.is_none() && stop_at > 0 {
                stop_sent = Some(stop_at);
                let stop = protocol::Stop {
                    at_us: Some(stop_at),
                };
                let _ = self
                    .transport
                    .call::<_, serde_json::Value>(protocol::STOP, &stop)
                    .await;
            }
            let (marks, end_us) = {
                let main = self.main.lock().expect("recorder lock");
                (main.marks().to_vec(), main.end())
            };
            let settled_us = match stop_sent {
                Some(_) => Micros::MAX,
                None => now.saturating_sub(SETTLE_MARGIN_US),
            };
            let poll = Poll {
                ack,
                marks,
                settled_us,
                end_us,
            };
            match self
                .transport
                .call::<_, PollReply>(protocol::POLL, &poll)
                .await
            {
                Ok(reply) => {
                    last_ok = self.clock.now();
                    if reply.seq > ack {
                        ack = reply.seq;
                        frontier = frontier.max(reply.delta.frontier);
                        self.main
                            .lock()
                            .expect("recorder lock")
                            .apply(&reply.delta, self.j);
                        self.vantage
                            .lock()
                            .expect("recorder lock")
                            .apply(&reply.delta, self.slot);
                    }
                    if reply.done {
                        // Acknowledge the last delta so the agent exits.
                        let _ = self
                            .transport
                            .call::<_, PollReply>(
                                protocol::POLL,
                                &Poll {
                                    ack,
                                    ..Poll::default()
                                },
                            )
                            .await;
                        return;
                    }
                }
                Err(e) => {
                    let now = self.clock.now();
                    if now.saturating_sub(last_ok) >= MISSING_AFTER_US {
                        let why =
                            format!("no answer for {:.1}s: {e}", (now - last_ok) as f64 / 1e6);
                        return self.missing(frontier, why);
                    }
                }
            }
            if let Some(at) = stop_sent
                && self.clock.now() > at + self.stop_grace_us
            {
                return self.missing(frontier, "its last results never came after stop".into());
            }
        }
    }

    /// Its share is missing from `frontier` on; the phases must not wait
    /// for it.
    fn missing(&self, frontier: Micros, why: String) {
        let now = self.clock.now();
        {
            let mut facts = self.facts.lock().expect("facts");
            let f = &mut facts[self.j];
            f.missing_from = Some(frontier.min(now));
            f.why = Some(why);
            f.noticed_at = Some(now);
        }
        self.main
            .lock()
            .expect("recorder lock")
            .note_frontier(self.j, Micros::MAX);
        self.vantage
            .lock()
            .expect("recorder lock")
            .note_frontier(self.slot, Micros::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    /// A fake agent whose clock runs 3 s ahead of the runner's and whose
    /// answers are delayed unevenly (5 ms before it reads its clock, 15 ms
    /// after): the estimated offset is within the reported bound of 3 s.
    #[tokio::test]
    async fn the_clock_offset_is_within_its_bound() {
        let runner = Clock::start();
        let agent_clock = runner.shifted(-3_000_000);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let svc = hyper::service::service_fn(move |_req| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let h = Hello {
                        version: protocol::VERSION,
                        agent_us: agent_clock.now(),
                    };
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        serde_json::to_vec(&h).unwrap(),
                    ))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc),
                );
            }
        });
        let t = Transport::Direct {
            base: format!("http://{addr}").parse().unwrap(),
        };
        let (offset, bound) = align(&t, runner).await.unwrap();
        assert!(bound >= 10_000, "the bound covers the round trip: {bound}");
        assert!(
            offset.abs_diff(3_000_000) <= bound,
            "offset {offset} µs, bound {bound} µs"
        );
    }
}
