//! `drill agent`: the open-loop generator as a process of its own. It
//! answers the runner's `hello`, `start`, `poll` and `stop` (src/agent/protocol.rs),
//! runs the same generator as a local drill on its share of the schedule, on
//! the runner's clock, and gives back what it recorded as exact deltas. It
//! stops by itself when the runner goes silent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::protocol::{self, Hello, Poll, PollReply, Share, Stop};
use crate::base::clock::Clock;
use crate::load::http::Control;
use crate::measure::{Micros, Recorder, RecorderDelta};

pub(crate) struct Options {
    pub listen: SocketAddr,
    /// Stop sending and exit when no poll came for this long.
    pub idle_timeout: Duration,
    /// Exit when no `start` came for this long.
    pub start_timeout: Duration,
}

/// Exit code of an agent that stopped by itself (its runner went silent,
/// or never started it).
pub(crate) const SELF_STOPPED: i32 = 3;

struct Agent {
    clock: Clock,
    idle_default: Duration,
    state: Mutex<State>,
}

struct State {
    run: Option<Run>,
    last_poll: Instant,
    /// The runner acknowledged the last delta of a finished run.
    finished: bool,
}

struct Run {
    /// The runner's clock, as this agent keeps it.
    clock: Clock,
    rec: Arc<Mutex<Recorder>>,
    control: Arc<Control>,
    generator: tokio::task::JoinHandle<()>,
    idle: Duration,
    seq: u64,
    /// The last delta sent and not yet acknowledged (re-sent merged).
    unacked: Option<(u64, RecorderDelta)>,
    /// Sequence number of the reply that said `done`.
    done_seq: Option<u64>,
}

/// Serves until the run is over and acknowledged (exit 0) or the runner
/// goes silent (exit [`SELF_STOPPED`]).
pub(crate) async fn serve(opts: Options) -> Result<i32, String> {
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("agent: cannot listen on {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The line the runner (or a readiness check) waits for.
    println!("listening on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let agent = Arc::new(Agent {
        clock: Clock::start(),
        idle_default: opts.idle_timeout,
        state: Mutex::new(State {
            run: None,
            last_poll: Instant::now(),
            finished: false,
        }),
    });
    let acceptor = tokio::spawn(accept(listener, agent.clone()));
    let code = watchdog(&agent, opts.start_timeout).await;
    acceptor.abort();
    Ok(code)
}

async fn accept(listener: TcpListener, agent: Arc<Agent>) {
    while let Ok((s, _)) = listener.accept().await {
        let agent = agent.clone();
        let svc = hyper::service::service_fn(move |req| {
            let agent = agent.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&agent, req).await) }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc),
        );
    }
}

/// Ends the process's service: when the runner acknowledged the end of
/// the run, or went silent for the idle timeout, or never started it.
async fn watchdog(agent: &Agent, start_timeout: Duration) -> i32 {
    let born = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let st = agent.state.lock().expect("agent state");
        if st.finished {
            return 0;
        }
        match &st.run {
            None if born.elapsed() > start_timeout => {
                eprintln!("agent: not started within {start_timeout:?}; exiting");
                return SELF_STOPPED;
            }
            Some(run) if st.last_poll.elapsed() > run.idle => {
                run.control.stop();
                eprintln!(
                    "agent: no poll from the runner for {:?}; stopped sending and exiting",
                    run.idle
                );
                return SELF_STOPPED;
            }
            _ => {}
        }
    }
}

async fn handle(agent: &Agent, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, format!("body: {e}").into()),
    };
    let res = match path.as_str() {
        protocol::HELLO => json(&Hello {
            version: protocol::VERSION,
            agent_us: agent.clock.now(),
        }),
        protocol::START => match serde_json::from_slice::<Share>(&body) {
            Ok(share) => start(agent, share).map(|()| b"{}".to_vec()),
            Err(e) => Err((StatusCode::BAD_REQUEST, format!("start: {e}"))),
        },
        protocol::POLL => match serde_json::from_slice::<Poll>(&body) {
            Ok(p) => poll(agent, p).and_then(|r| json(&r)),
            Err(e) => Err((StatusCode::BAD_REQUEST, format!("poll: {e}"))),
        },
        protocol::STOP => match serde_json::from_slice::<Stop>(&body) {
            Ok(s) => {
                stop(agent, s);
                Ok(b"{}".to_vec())
            }
            Err(e) => Err((StatusCode::BAD_REQUEST, format!("stop: {e}"))),
        },
        _ => Err((StatusCode::NOT_FOUND, format!("no such call: {path}"))),
    };
    match res {
        Ok(b) => reply(StatusCode::OK, b),
        Err((code, msg)) => reply(code, msg.into_bytes()),
    }
}

type Failure = (StatusCode, String);

fn json(v: &impl serde::Serialize) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(v).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn reply(code: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r
}

/// Stops sending at the runner's instant (at once when it has passed).
fn stop(agent: &Agent, s: Stop) {
    let st = agent.state.lock().expect("agent state");
    let Some(run) = &st.run else {
        return;
    };
    let (control, clock) = (run.control.clone(), run.clock);
    match s.at_us {
        Some(at) if at > clock.now() => {
            tokio::spawn(async move {
                tokio::time::sleep_until(clock.at(at).into()).await;
                control.stop();
            });
        }
        _ => control.stop(),
    }
}

/// Starts the generator on this agent's share, on the runner's clock.
fn start(agent: &Agent, share: Share) -> Result<(), Failure> {
    let mut st = agent.state.lock().expect("agent state");
    if st.run.is_some() {
        return Err((StatusCode::CONFLICT, "already started".into()));
    }
    let load = share
        .template
        .load(share.rate)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("start: {e}")))?;
    if share.bucket_us == 0 {
        return Err((StatusCode::BAD_REQUEST, "start: bucket_us is 0".into()));
    }
    let clock = agent.clock.shifted(share.offset_us);
    let rec = Arc::new(Mutex::new(Recorder::for_agent(
        share.bucket_us,
        share.horizon_us,
    )));
    let control = Arc::new(Control::default());
    let generator = tokio::spawn(crate::load::http::run(
        load,
        clock,
        share.start_us,
        rec.clone(),
        control.clone(),
    ));
    st.last_poll = Instant::now();
    st.run = Some(Run {
        clock,
        rec,
        control,
        generator,
        idle: if share.idle_timeout_ms > 0 {
            Duration::from_millis(share.idle_timeout_ms)
        } else {
            agent.idle_default
        },
        seq: 0,
        unacked: None,
        done_seq: None,
    });
    Ok(())
}

/// Applies the runner's marks and settle instant, and answers with
/// everything recorded since its last acknowledged delta.
fn poll(agent: &Agent, p: Poll) -> Result<PollReply, Failure> {
    let mut st = agent.state.lock().expect("agent state");
    st.last_poll = Instant::now();
    let Some(run) = st.run.as_mut() else {
        return Err((StatusCode::CONFLICT, "not started".into()));
    };
    if run.done_seq.is_some_and(|s| p.ack >= s) {
        st.finished = true;
        return Ok(PollReply {
            seq: p.ack,
            delta: RecorderDelta {
                frontier: Micros::MAX,
                ..Default::default()
            },
            done: true,
        });
    }
    // Checked before the drain: a generator that ended has flushed all.
    let ended = run.generator.is_finished();
    let (fresh, held) = {
        let mut rec = run.rec.lock().expect("recorder lock");
        for &(phase, at) in &p.marks {
            rec.mark(phase, at);
        }
        if let Some(end) = p.end_us {
            rec.close_at(end);
        }
        rec.settle(p.settled_us);
        (rec.take_delta(), rec.held())
    };
    let delta = match run.unacked.take() {
        Some((seq, mut old)) if seq > p.ack => {
            old.merge(fresh);
            old
        }
        _ => fresh,
    };
    run.seq += 1;
    let done = ended && held == 0;
    if done {
        run.done_seq = Some(run.seq);
    }
    run.unacked = Some((run.seq, delta.clone()));
    Ok(PollReply {
        seq: run.seq,
        delta,
        done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Outcome, Phase, Sample};

    /// An agent whose generator already ended, holding `n` good results.
    async fn agent_with(n: u64) -> Agent {
        let mut rec = Recorder::for_agent(100_000, 2_000_000);
        for i in 0..n {
            let s = Sample {
                due: i * 10_000,
                sent: i * 10_000,
                done: i * 10_000 + 500,
                outcome: Outcome::Good,
                has_latency: true,
            };
            rec.note_sent(s.due, s.sent);
            rec.record(&s);
        }
        let generator = tokio::spawn(async {});
        while !generator.is_finished() {
            tokio::task::yield_now().await;
        }
        Agent {
            clock: Clock::start(),
            idle_default: Duration::from_secs(10),
            state: Mutex::new(State {
                run: Some(Run {
                    clock: Clock::start(),
                    rec: Arc::new(Mutex::new(rec)),
                    control: Arc::new(Control::default()),
                    generator,
                    idle: Duration::from_secs(10),
                    seq: 0,
                    unacked: None,
                    done_seq: None,
                }),
                last_poll: Instant::now(),
                finished: false,
            }),
        }
    }

    fn poll_at(ack: u64, settled_us: Micros) -> Poll {
        Poll {
            ack,
            marks: vec![(Phase::Baseline, 0)],
            settled_us,
            end_us: None,
        }
    }

    /// A poll whose answer was lost is asked again with the same ack: the
    /// new answer carries everything since that ack (nothing lost, nothing
    /// twice); the acknowledged end of the run lets the agent exit.
    #[tokio::test]
    async fn a_lost_answer_is_sent_again_merged_and_the_end_is_acknowledged() {
        let agent = agent_with(50).await;
        let first = poll(&agent, poll_at(0, 250_000)).unwrap();
        assert_eq!((first.seq, first.delta.completed()), (1, 25));
        assert!(!first.done, "25 results still wait for their phase");
        // The runner never got seq 1: it asks again from ack 0.
        let again = poll(&agent, poll_at(0, Micros::MAX)).unwrap();
        assert_eq!((again.seq, again.delta.completed()), (2, 50));
        assert_eq!(again.delta.phases[Phase::Baseline as usize].good, 50);
        assert_eq!(again.delta.sent, 50);
        assert!(again.done);
        let after = poll(&agent, poll_at(2, Micros::MAX)).unwrap();
        assert_eq!(after.delta.completed(), 0);
        assert!(after.done);
        assert!(agent.state.lock().unwrap().finished, "acknowledged: exit");
    }
}
