//! Open-loop HTTP load. Request *i* is due at `start + i/rate` whatever
//! happened to earlier requests; latency is measured from that due time, so a
//! stalled target (or a generator that fell behind) shows in the numbers.
//!
//! The schedule runs on `workers` threads of their own, request *i* on worker
//! *i mod workers*, so the merged stream is exactly the schedule. Each worker
//! is a single-threaded runtime that sleeps on a high-resolution timer
//! (timerfd) until the next due time and then releases, in one batch,
//! every request due up to now: its cost follows the requests, not the clock.
//! Released requests queue for the worker's pool of connection loops (one
//! request at a time per kept-alive connection, on drill's one HTTP/1.1
//! engine `h1`, for http and https alike); the pool grows only when every connection stayed busy while a
//! request waited, so memory follows the requests in flight. At most
//! `max_in_flight` are in flight (queued or sent); a request due while the
//! limit is reached is counted as not sent (`Cause::Saturated`). One task
//! per worker drives the timer and every connection. Results are kept per
//! worker and folded into the shared recorder every few milliseconds: no
//! lock per request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::h1;
pub(crate) use super::spec::HttpLoad;
use super::timer::Timer;
use crate::base::clock::Clock;
use crate::measure::recorder::GeneratorInfo;
use crate::measure::{Cause, Micros, Outcome, Recorder, Sample};

/// Shared between the generator and whoever stops it.
#[derive(Default)]
pub(crate) struct Control {
    stop: AtomicBool,
}

impl Control {
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Shortest and longest automatic tick.
const MIN_TICK_US: Micros = 250;
const MAX_TICK_US: Micros = 1_000;
/// Requests a worker's automatic tick aims to send per wake.
const BATCH: f64 = 40.0;
/// New connections a worker opens per tick at most: the pool grows to the
/// requests in flight within milliseconds, but a slow start or a hiccup
/// cannot turn into a storm of connects that slows the target further.
const GROW_PER_TICK: usize = 8;
/// A connection idle this long closes (one per wake), so the pool shrinks
/// back after a burst.
const IDLE_CLOSE_US: Micros = 2_000_000;

/// The tick when the scenario sets none: long enough that a wake's cost is
/// shared by about 40 requests (1 ms up to 40k req/s a worker, 500 µs at
/// 80k, 250 µs from 160k), never above a quarter of the send-lag bound,
/// since every request may wait up to one tick. (Measured on 2 cores
/// against nginx: at 40k req/s a 1 ms tick costs 0.87–0.97 CPU-s per 100k
/// requests, a 500 µs one 1.07–1.20, with the same send lag.)
pub(crate) fn auto_tick(rate: f64, workers: usize, max_send_lag_us: u64) -> Duration {
    let per_worker = rate / workers.max(1) as f64;
    let us = (BATCH * 1e6 / per_worker.max(1.0)) as Micros;
    let us = us
        .clamp(MIN_TICK_US, MAX_TICK_US)
        .min(max_send_lag_us / 4)
        .max(50);
    Duration::from_micros(us)
}
/// Longest time a worker keeps results before folding them into the
/// recorder (the runner reads it every 50–100 ms).
const FLUSH_US: Micros = 10_000;

/// Sends requests on the open-loop schedule from `start` until stopped,
/// then waits for the ones in flight (each ends by its timeout).
pub(crate) async fn run(
    load: HttpLoad,
    clock: Clock,
    start: Micros,
    recorder: Arc<Mutex<Recorder>>,
    control: Arc<Control>,
) {
    let workers = load.workers.max(1);
    let limit = fd_capped(load.max_in_flight.max(workers));
    recorder.lock().expect("recorder lock").expect_senders(
        GeneratorInfo {
            workers,
            max_in_flight: limit,
            tick_us: load.tick.as_micros() as Micros,
        },
        start,
    );
    let load = Arc::new(load);
    let mut done = Vec::new();
    for w in 0..workers {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let plan = Plan {
            load: load.clone(),
            clock,
            start,
            w,
            n: workers,
            tick: (load.tick.as_micros() as Micros).max(1),
            // Each worker's share of the limit (the first ones take the rest).
            limit: limit / workers + usize::from(w < limit % workers),
        };
        let (rec, ctl) = (recorder.clone(), control.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("drill-load-{w}"))
            .spawn(move || {
                worker_thread(plan, rec, ctl);
                let _ = tx.send(());
            });
        match spawned {
            Ok(_) => done.push(rx),
            Err(e) => {
                tracing::error!("cannot start load worker {w}: {e}");
                recorder
                    .lock()
                    .expect("recorder lock")
                    .note_frontier(w, Micros::MAX);
            }
        }
    }
    for rx in done {
        let _ = rx.await;
    }
}

/// One worker's share of the schedule.
struct Plan {
    load: Arc<HttpLoad>,
    clock: Clock,
    start: Micros,
    w: usize,
    n: usize,
    limit: usize,
    /// Longest a released request may have waited for its wake, µs.
    tick: Micros,
}

impl Plan {
    /// Due time of request `i` (run clock): exactly `start + i/rate`.
    fn due(&self, i: u64) -> Micros {
        self.start + (i as f64 * 1e6 / self.load.rate) as Micros
    }
}

fn worker_thread(plan: Plan, rec: Arc<Mutex<Recorder>>, control: Arc<Control>) {
    let w = plan.w;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt {
        Ok(rt) => {
            let local = tokio::task::LocalSet::new();
            // Unconstrained: one task drives every connection, so tokio's
            // per-task budget (128 operations a poll) would otherwise starve
            // the timer polled after them, and with it the schedule.
            let worker = tokio::task::unconstrained(schedule(plan, rec.clone(), control));
            local.block_on(&rt, worker);
        }
        Err(e) => tracing::error!("load worker {w}: cannot start its runtime: {e}"),
    }
    rec.lock()
        .expect("recorder lock")
        .note_frontier(w, Micros::MAX);
}

/// A worker's state, shared by its scheduler and its connection loops (all
/// on one thread).
struct Worker {
    plan: Plan,
    control: Arc<Control>,
    /// Every request's bytes and how to reach the target (http or https).
    wire: h1::Template,
    /// Due times released and not yet taken by a connection, oldest first.
    queue: RefCell<VecDeque<Micros>>,
    /// Connection loops alive (connecting, busy or idle).
    conns: Cell<usize>,
    /// Connection loops opened that have not yet looked at the queue.
    starting: Cell<usize>,
    /// Connection loops waiting for a request (idle, or woken for one and
    /// not yet run).
    waiting: Cell<usize>,
    /// Requests taken by a connection and not yet recorded.
    busy: Cell<usize>,
    /// Connects (with their TLS handshakes) in progress.
    connecting: Cell<usize>,
    /// Idle connection loops; the most recently idle is woken first, so
    /// the pool stays as small as the requests in flight allow.
    /// Oldest idle at the front (closed first when idle too long).
    idle: RefCell<VecDeque<Rc<Parking>>>,
    /// Set when the schedule stopped: idle loops end.
    closing: Cell<bool>,
    /// Deadlines (due + timeout) of the requests sent, in send order,
    /// which is due order (connections take the queue's oldest first), so
    /// deadline order: the scheduler's timer watches the
    /// first, instead of a tokio timer per request (whose registration on
    /// an otherwise empty timer wheel writes to the runtime's eventfd).
    deadlines: RefCell<VecDeque<(Micros, u64, Rc<Deadline>)>>,
    pending: RefCell<Pending>,
}

/// Results not yet folded into the shared recorder.
#[derive(Default)]
struct Pending {
    sent: Vec<(Micros, Micros)>,
    done: Vec<Sample>,
}

/// A connection loop, driven by its worker's scheduler.
type Loop = Pin<Box<dyn Future<Output = ()>>>;

async fn schedule(plan: Plan, rec: Arc<Mutex<Recorder>>, control: Arc<Control>) {
    let mut timer = Timer::new();
    let clock = plan.clock;
    let me = Rc::new(Worker::new(plan, control));
    let mut loops: FuturesUnordered<Loop> = FuturesUnordered::new();
    let (w, n) = (me.plan.w as u64, me.plan.n as u64);
    let mut i = w;
    let mut last_flush = clock.now();
    let tick = me.plan.tick;
    // When requests were last released: the next release waits for the
    // later of its due time and one tick after it.
    let mut last_release = 0;
    // When the pool last grew: it grows at most once a tick.
    let mut last_grow = 0;
    timer.arm(clock.at(me.plan.due(i)));
    // One task drives the schedule and every connection: connections whose
    // answer came run first (they record it and take the next queued
    // request), so when the timer fires the pool's state is current.
    std::future::poll_fn(|cx| {
        loop {
            while let Poll::Ready(Some(())) = loops.poll_next_unpin(cx) {}
            if timer.poll_fired(cx).is_pending() {
                return Poll::Pending;
            }
            if me.control.stopped() {
                return Poll::Ready(());
            }
            let now = clock.now();
            expire(&me, now);
            // What no connection took since the last wake opens
            // connections of its own (at most once a tick, whatever else
            // woke the worker: deadlines, flushes).
            if now >= last_grow + tick {
                grow(&me, &mut loops);
                last_grow = now;
            }
            let mut due = me.plan.due(i);
            if due <= now {
                last_release = now;
            }
            while due <= now {
                release(&me, due, now);
                i += n;
                due = me.plan.due(i);
            }
            if now >= last_flush + FLUSH_US {
                // A recorder busy with its reader: try again a gap later.
                last_flush = if flush(&me, &rec, due, false) {
                    now
                } else {
                    (now + tick).saturating_sub(FLUSH_US)
                };
            }
            // Idle connections woken for what was released take it now.
            while let Poll::Ready(Some(())) = loops.poll_next_unpin(cx) {}
            retire_idle(&me, now);
            timer.arm(clock.at(next_wake(&me, now, due, last_release, last_flush)));
        }
    })
    .await;
    wind_down(&me, &mut loops, &mut timer, &rec, last_flush, i).await;
}

impl Worker {
    /// A worker with no connections yet and nothing released, sending the
    /// requests `plan` gives it.
    fn new(plan: Plan, control: Arc<Control>) -> Worker {
        Worker {
            wire: h1::Template::new(&plan.load),
            queue: RefCell::new(VecDeque::new()),
            conns: Cell::new(0),
            starting: Cell::new(0),
            busy: Cell::new(0),
            connecting: Cell::new(0),
            waiting: Cell::new(0),
            idle: RefCell::new(VecDeque::new()),
            closing: Cell::new(false),
            deadlines: RefCell::new(VecDeque::new()),
            pending: RefCell::new(Pending::default()),
            control,
            plan,
        }
    }
}

/// When the scheduler next wakes: the next due request (at most one
/// release a tick), sooner if released requests still wait for a
/// connection, results wait to be flushed, or a request's deadline comes.
fn next_wake(
    me: &Worker,
    now: Micros,
    due: Micros,
    last_release: Micros,
    last_flush: Micros,
) -> Micros {
    let tick = me.plan.tick;
    // At most one release a tick; a wake that released nothing (a
    // flush) does not delay the next due request.
    let mut wake = due.max(last_release + tick);
    if !me.queue.borrow().is_empty() {
        // Requests no connection was free for: the busy ones get
        // one tick to finish, then more open.
        wake = wake.min(now + tick);
    }
    let p = me.pending.borrow();
    if !p.done.is_empty() || !p.sent.is_empty() {
        wake = wake.min(last_flush + FLUSH_US);
    }
    if let Some(at) = first_deadline(me) {
        wake = wake.min(at);
    }
    wake
}

/// After the schedule stopped: closes the idle connections, lets every
/// request in flight end (answered or timed out, at most the request
/// timeout plus 2 s), and flushes the last results to the recorder.
/// `i` is the worker's next request, never released.
async fn wind_down(
    me: &Worker,
    loops: &mut FuturesUnordered<Loop>,
    timer: &mut Timer,
    rec: &Mutex<Recorder>,
    mut last_flush: Micros,
    i: u64,
) {
    let clock = me.plan.clock;
    let timeout = me.plan.load.timeout;
    // Idle connections end; every request in flight ends by its timeout.
    me.closing.set(true);
    for park in me.idle.borrow_mut().drain(..) {
        park.wake();
    }
    let end = clock.now() + timeout.as_micros() as Micros + 2_000_000;
    timer.arm(clock.at(clock.now()));
    std::future::poll_fn(|cx| {
        loop {
            while let Poll::Ready(Some(())) = loops.poll_next_unpin(cx) {}
            let now = clock.now();
            // Requests still queued end by their timeout in `expire`.
            if (loops.is_empty() && me.queue.borrow().is_empty()) || now >= end {
                return Poll::Ready(());
            }
            if timer.poll_fired(cx).is_pending() {
                return Poll::Pending;
            }
            expire(me, now);
            if now >= last_flush + 5_000 && flush(me, rec, me.plan.due(i), false) {
                last_flush = now;
            }
            let mut wake = (now + 5_000).min(end);
            if let Some(at) = first_deadline(me) {
                wake = wake.min(at);
            }
            timer.arm(clock.at(wake));
        }
    })
    .await;
    expire(me, clock.now());
    flush(me, rec, Micros::MAX, true);
}

/// The waker of a connection loop, for its worker to wake it with (all on
/// one thread).
#[derive(Default)]
struct WakerSlot(RefCell<Option<Waker>>);

impl WakerSlot {
    /// Keeps the waker of the task polling now (unless it is the same).
    fn register(&self, cx: &std::task::Context<'_>) {
        let mut w = self.0.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }

    fn wake(&self) {
        if let Some(w) = self.0.borrow().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// A connection loop's request deadline, reused from request to request
/// (`generation` tells which one an entry of the worker's list is for).
#[derive(Default)]
struct Deadline {
    generation: Cell<u64>,
    waker: WakerSlot,
    /// The current request's deadline passed.
    passed: Cell<bool>,
}

/// Marks every request whose deadline has come as timed out and wakes its
/// loop; drops the entries of requests that ended. A released request
/// still waiting for a connection a whole timeout after its due time can
/// no longer be answered in time: it ends as timed out there and then
/// (recorded as if sent when due, so its latency and service time read
/// the timeout as a request sent into a stalled target does), so nothing
/// waits in the queue forever and none is dropped.
fn expire(me: &Worker, now: Micros) {
    let timeout = me.plan.load.timeout.as_micros() as Micros;
    {
        let mut queue = me.queue.borrow_mut();
        while let Some(&due) = queue.front() {
            if due + timeout > now {
                break;
            }
            queue.pop_front();
            me.pending.borrow_mut().done.push(Sample {
                due,
                sent: due,
                done: now,
                outcome: Outcome::Bad(Cause::Timeout),
                has_latency: true,
            });
        }
    }
    let mut list = me.deadlines.borrow_mut();
    while let Some((at, generation, d)) = list.front() {
        if d.generation.get() == *generation {
            if *at > now {
                return;
            }
            d.passed.set(true);
            d.waker.wake();
        }
        list.pop_front();
    }
}

/// The earliest deadline watched (perhaps of a request that has ended
/// since: one early wake).
fn first_deadline(me: &Worker) -> Option<Micros> {
    me.deadlines.borrow().front().map(|&(at, _, _)| at)
}

/// Starts watching the deadline of the request a loop is about to send:
/// its timeout counts from its due time, as its latency does, so a request
/// that waited for a connection has only the rest of it. Returns the
/// watch's generation (`disarm` ends it).
fn arm(me: &Worker, d: &Rc<Deadline>, due: Micros) -> u64 {
    let generation = d.generation.get() + 1;
    d.generation.set(generation);
    d.passed.set(false);
    let at = due + me.plan.load.timeout.as_micros() as Micros;
    me.deadlines
        .borrow_mut()
        .push_back((at, generation, d.clone()));
    generation
}

/// The request ended: its entry is dead, dropped when it reaches the front.
fn disarm(d: &Deadline, generation: u64) {
    d.generation.set(generation + 1);
}

/// Ready once the scheduler found the request's deadline passed.
async fn passed(d: &Deadline) {
    std::future::poll_fn(|cx| {
        if d.passed.get() {
            return Poll::Ready(());
        }
        d.waker.register(cx);
        Poll::Pending
    })
    .await
}

/// Folds the worker's results into the shared recorder (one lock).
/// `next`: due time of the first request not yet released.
/// Unless `wait`, a recorder held by its reader is left for the next wake
/// (false) rather than holding up the schedule.
fn flush(me: &Worker, rec: &Mutex<Recorder>, next: Micros, wait: bool) -> bool {
    // Released requests no connection has sent yet hold the frontier back.
    let frontier = me.queue.borrow().front().copied().unwrap_or(next);
    let mut p = me.pending.borrow_mut();
    let mut r = match rec.try_lock() {
        Ok(r) => r,
        Err(std::sync::TryLockError::WouldBlock) if !wait => return false,
        Err(_) => rec.lock().expect("recorder lock"),
    };
    for (due, sent) in p.sent.drain(..) {
        r.note_sent(due, sent);
    }
    for s in p.done.drain(..) {
        r.record(&s);
    }
    r.note_frontier(me.plan.w, frontier);
    true
}

/// Queues the request due at `due` and wakes an idle connection for it;
/// counts it as not sent when the worker's share of the in-flight limit is
/// reached.
fn release(me: &Rc<Worker>, due: Micros, now: Micros) {
    let queued = me.queue.borrow().len();
    if me.busy.get() + queued >= me.plan.limit {
        me.pending.borrow_mut().done.push(Sample {
            due,
            sent: now,
            done: now,
            outcome: Outcome::Bad(Cause::Saturated),
            has_latency: false,
        });
        return;
    }
    me.queue.borrow_mut().push_back(due);
    // The first listed loop still waiting (one that took a request
    // without being woken may still be listed).
    while let Some(park) = me.idle.borrow_mut().pop_back() {
        if park.wake() {
            break;
        }
    }
}

/// Opens a connection loop for each request still queued that no
/// connection (waiting, or opened and not yet started) is going to take:
/// called a tick after the release, so the pool grows only when every
/// connection stayed busy, by at most `GROW_PER_TICK` a tick, up to the
/// worker's share of the in-flight limit, and never with more than
/// `GROW_PER_TICK` connects in progress: a TLS handshake costs the
/// generator a millisecond of CPU, so a burst of them on a busy machine
/// would otherwise make every request late, the queue longer and the pool
/// grow further (seen at 2k req/s over https on a loaded machine: 13,441
/// of 20,000 requests timed out).
fn grow(me: &Rc<Worker>, loops: &mut FuturesUnordered<Loop>) {
    let claimed = me.starting.get() + me.waiting.get();
    let room = me.plan.limit.saturating_sub(me.conns.get());
    let more = me
        .queue
        .borrow()
        .len()
        .saturating_sub(claimed)
        .min(room)
        .min(GROW_PER_TICK.saturating_sub(me.connecting.get()));
    for _ in 0..more {
        me.conns.set(me.conns.get() + 1);
        me.starting.set(me.starting.get() + 1);
        loops.push(Box::pin(connection(me.clone())));
    }
}

/// Closes the connection idle longest when it has been idle
/// `IDLE_CLOSE_US`: one a wake, so a pool grown for a burst shrinks back
/// within seconds.
fn retire_idle(me: &Worker, now: Micros) {
    let mut idle = me.idle.borrow_mut();
    while let Some(park) = idle.pop_front() {
        if !(park.listed.get() && park.waiting.get()) {
            // Woken for a request meanwhile: no longer idle.
            continue;
        }
        if now.saturating_sub(park.since.get()) < IDLE_CLOSE_US {
            idle.push_front(park);
        } else {
            park.retire.set(true);
            park.wake();
        }
        return;
    }
}

/// Where an idle connection loop waits to be woken for a request.
#[derive(Default)]
struct Parking {
    waker: WakerSlot,
    /// In the worker's idle list.
    listed: Cell<bool>,
    /// Inside `next_due`, without a request yet.
    waiting: Cell<bool>,
    /// When it was last listed idle (run clock).
    since: Cell<Micros>,
    /// Idle too long: the loop ends and its connection closes.
    retire: Cell<bool>,
}

impl Parking {
    /// Takes the loop off the idle list and wakes it; false when it was no
    /// longer waiting.
    fn wake(&self) -> bool {
        self.listed.set(false);
        self.waker.wake();
        self.waiting.get()
    }
}

/// The next request for a connection loop, oldest due first; `None` once
/// the schedule stopped and nothing is left.
async fn next_due(me: &Worker, park: &Rc<Parking>) -> Option<Micros> {
    me.waiting.set(me.waiting.get() + 1);
    park.waiting.set(true);
    let next = std::future::poll_fn(|cx| {
        if let Some(due) = me.queue.borrow_mut().pop_front() {
            me.busy.set(me.busy.get() + 1);
            return Poll::Ready(Some(due));
        }
        if me.closing.get() || park.retire.get() {
            return Poll::Ready(None);
        }
        park.waker.register(cx);
        if !park.listed.replace(true) {
            park.since.set(me.plan.clock.now());
            me.idle.borrow_mut().push_back(park.clone());
        }
        Poll::Pending
    })
    .await;
    park.waiting.set(false);
    me.waiting.set(me.waiting.get() - 1);
    next
}

/// One connection loop: takes the next due request, sends it, reads the
/// whole answer, records, and loops; the connection is kept alive between
/// requests. Latency counts from the due time, so a request that waited for
/// a connection shows that wait.
async fn connection(me: Rc<Worker>) {
    let mut link = None;
    let clock = me.plan.clock;
    me.starting.set(me.starting.get() - 1);
    let park = Rc::new(Parking::default());
    let deadline = Rc::new(Deadline::default());
    while let Some(due) = next_due(&me, &park).await {
        let sent = clock.now();
        me.pending.borrow_mut().sent.push((due, sent));
        let (outcome, has_latency) = exchange(&me, &mut link, due, &deadline).await;
        let done = clock.now();
        me.pending.borrow_mut().done.push(Sample {
            due,
            sent,
            done,
            outcome,
            has_latency,
        });
        me.busy.set(me.busy.get() - 1);
    }
    me.conns.set(me.conns.get() - 1);
}

/// One request and its whole answer, within the timeout. A connection in
/// an unknown state (timed out, failed) is closed.
async fn exchange(
    me: &Worker,
    link: &mut Option<h1::Conn>,
    due: Micros,
    deadline: &Rc<Deadline>,
) -> (Outcome, bool) {
    let load = &me.plan.load;
    let generation = arm(me, deadline, due);
    // The exchange is built in place in select!'s own frame (not passed to
    // a wrapper), so a connection loop holds one copy of it: 10,000 loops
    // against a stalled target are that many copies.
    let sent = tokio::select! {
        biased;
        r = send(me, link) => Some(r),
        () = passed(deadline) => None,
    };
    disarm(deadline, generation);
    match sent {
        None => {
            *link = None;
            (Outcome::Bad(Cause::Timeout), true)
        }
        Some(Ok(status)) => {
            let good = load.success.iter().any(|m| m.matches(status));
            (
                if good {
                    Outcome::Good
                } else {
                    Outcome::Bad(Cause::of_status(status))
                },
                true,
            )
        }
        Some(Err(f)) => (Outcome::Bad(f.cause), false),
    }
}

/// The request on the loop's kept-alive connection, or on a new one whose
/// connect (and TLS handshake) counts as connecting until it is done.
async fn send(me: &Worker, link: &mut Option<h1::Conn>) -> Result<u16, h1::Failure> {
    h1::keep_if_open(link);
    if link.is_none() {
        let _connecting = Connecting::new(&me.connecting);
        *link = Some(h1::connect(&me.wire).await?);
    }
    h1::send(&me.wire, link).await
}

/// Counts a connect in progress while it lives (a timeout drops it).
struct Connecting<'a>(&'a Cell<usize>);

impl<'a> Connecting<'a> {
    fn new(n: &'a Cell<usize>) -> Self {
        n.set(n.get() + 1);
        Connecting(n)
    }
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// One request of `load` (its method, headers and body) on a connection of
/// its own, as the preflight sends it: the final status, or why there was
/// none.
pub(crate) async fn probe(load: &HttpLoad) -> Result<u16, String> {
    let t = h1::Template::new(load);
    match tokio::time::timeout(load.timeout, h1::exchange(&t, &mut None)).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(f)) => Err(format!("{} ({})", f.detail, f.cause.name())),
        Err(_) => Err(format!("no answer within {:?}", load.timeout)),
    }
}

/// The in-flight limit, kept below the open-file limit (raised to its hard
/// maximum when needed): every request in flight holds a socket.
fn fd_capped(want: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return want.min(768);
        }
        let need = (want as libc::rlim_t).saturating_add(1024);
        if lim.rlim_cur < need && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: need.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
    }
    let soft = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
    // Keep room for the runner's own files, the lab's pipes and the database.
    let room = soft - (soft / 4).min(1024);
    want.min(room).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Phase, RecoveryCriteria, Rto, fault_impact};
    use crate::scenario::model::StatusMatch;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Method, Uri};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    const S: Micros = 1_000_000;
    const MS: Micros = 1_000;

    /// A local HTTP server answering 200 at once, except that requests
    /// arriving in `[freeze.0, freeze.1)` (run clock) wait until `freeze.1`.
    async fn server(clock: Clock, freeze: (Micros, Micros)) -> Uri {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let svc = hyper::service::service_fn(move |_req| async move {
                    let now = clock.now();
                    if (freeze.0..freeze.1).contains(&now) {
                        tokio::time::sleep_until(clock.at(freeze.1).into()).await;
                    }
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc),
                );
            }
        });
        format!("http://{addr}/x").parse().unwrap()
    }

    fn load(url: Uri, rate: f64, timeout: Duration, workers: usize) -> HttpLoad {
        HttpLoad {
            url,
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            rate,
            timeout,
            success: vec![StatusMatch::Class(2)],
            keep_alive: true,
            workers,
            max_in_flight: crate::scenario::plan::DEFAULT_MAX_IN_FLIGHT,
            tick: auto_tick(
                rate,
                workers,
                crate::scenario::plan::DEFAULT_MAX_SEND_LAG_US,
            ),
            ca_file: None,
        }
    }

    /// A target that accepts and never answers, and a recorder whose
    /// baseline starts 20 ms from now (`start`) and lasts `baseline`.
    async fn stalled(baseline: Micros) -> (Uri, Clock, Arc<Mutex<Recorder>>, Micros) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let clock = Clock::start();
        let rec = Arc::new(Mutex::new(Recorder::new(100 * MS, 3 * S)));
        let start = clock.now() + 20 * MS;
        {
            let mut r = rec.lock().unwrap();
            r.mark(Phase::Baseline, start);
            r.mark(Phase::Fault, start + baseline);
        }
        let url = format!("http://{addr}/").parse().unwrap();
        (url, clock, rec, start)
    }

    /// Runs the generator from `start` and stops it at `stop` (run clock).
    async fn drive(
        l: HttpLoad,
        clock: Clock,
        rec: &Arc<Mutex<Recorder>>,
        start: Micros,
        stop: Micros,
    ) {
        let control = Arc::new(Control::default());
        let generator = tokio::spawn(run(l, clock, start, rec.clone(), control.clone()));
        tokio::time::sleep_until(clock.at(stop).into()).await;
        control.stop();
        generator.await.unwrap();
    }

    /// The automatic tick shares a wake among about 40 requests, between
    /// 250 µs and 1 ms, per worker, and leaves three quarters of the
    /// send-lag bound to the rest of the generator.
    #[test]
    fn the_automatic_tick_follows_the_rate_per_worker_and_the_lag_bound() {
        let us = |rate, workers, bound| auto_tick(rate, workers, bound).as_micros();
        assert_eq!(us(200.0, 1, 50_000), 1_000);
        assert_eq!(us(20_000.0, 1, 50_000), 1_000);
        assert_eq!(us(40_000.0, 1, 50_000), 1_000);
        assert_eq!(us(80_000.0, 1, 50_000), 500);
        assert_eq!(us(80_000.0, 2, 50_000), 1_000);
        assert_eq!(us(320_000.0, 1, 50_000), 250);
        assert_eq!(us(5_000.0, 1, 1_000), 250);
        assert_eq!(us(5_000.0, 1, 100), 50);
    }

    #[test]
    fn due_times_are_exactly_i_over_rate() {
        let plan = Plan {
            load: Arc::new(load(
                Uri::from_static("http://127.0.0.1/"),
                3.0,
                Duration::from_secs(1),
                1,
            )),
            clock: Clock::start(),
            start: 10,
            w: 0,
            n: 1,
            limit: 1,
            tick: 1_000,
        };
        assert_eq!(plan.due(0), 10);
        assert_eq!(plan.due(1), 10 + 333_333);
        assert_eq!(plan.due(3), 10 + S);
        assert_eq!(plan.due(300), 10 + 100 * S);
    }

    /// At 1000 req/s for exactly one second of baseline, exactly 1000
    /// requests are due there, all sent and all answered, on one worker or
    /// split over two (request i on worker i mod 2).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_exactly_rate_times_time_on_one_or_two_workers() {
        for workers in [1, 2] {
            let clock = Clock::start();
            let url = server(clock, (0, 0)).await;
            let rec = Arc::new(Mutex::new(Recorder::new(100 * MS, 3 * S)));
            let start = clock.now() + 20 * MS;
            {
                let mut r = rec.lock().unwrap();
                r.mark(Phase::Baseline, start + 200 * MS);
                r.mark(Phase::Fault, start + 1_200 * MS);
            }
            let l = load(url, 1000.0, Duration::from_secs(2), workers);
            drive(l, clock, &rec, start, start + 1_400 * MS).await;
            let r = rec.lock().unwrap();
            let b = r.phase(Phase::Baseline);
            assert_eq!((b.total(), b.good), (1000, 1000), "workers {workers}");
            let (sent, span) = r.sent_in(&[Phase::Baseline]);
            assert_eq!(sent, 1000);
            let (first, last) = span.unwrap();
            assert!(first >= start + 200 * MS && last >= start + 1_199 * MS);
            assert_eq!(r.unfinished(Phase::Baseline), 0);
            assert_eq!(r.generator().workers, workers);
        }
    }

    /// A target that accepts and never answers: with an in-flight limit of
    /// 10, ten requests wait (and time out at their deadline); every other
    /// one due meanwhile is counted as not sent, none is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_flight_limit_counts_unsent_requests_with_their_cause() {
        let (url, clock, rec, start) = stalled(500 * MS).await;
        let mut l = load(url, 200.0, Duration::from_secs(1), 1);
        l.max_in_flight = 10;
        drive(l, clock, &rec, start, start + 600 * MS).await;
        let r = rec.lock().unwrap();
        let b = r.phase(Phase::Baseline);
        assert_eq!(b.total(), 100, "all 100 due requests are counted");
        assert_eq!(b.bad[Cause::Timeout as usize], 10);
        assert_eq!(b.bad[Cause::Saturated as usize], 90);
        // The ten sent on time end at their 1 s deadline, not before, and
        // not much after (the worker's timer watches the deadlines); the
        // histogram keeps 3 significant digits, so 1 s reads ≥ 0.999 s.
        let (lo, hi) = (b.latency.min(), b.latency.max());
        assert!(
            lo >= S - MS && hi < S + 100 * MS,
            "timeouts at {lo}..{hi} µs"
        );
        assert_eq!(r.sent_in(&[Phase::Baseline]).0, 10);
        assert_eq!(r.generator().max_in_flight, 10);
        assert_eq!(r.unfinished(Phase::Baseline), 0);
    }

    /// A stalled target at 4k req/s with a 5 ms tick: the pool grows by
    /// at most 8 connections a tick (1,600 a second), so requests wait in
    /// the queue; each one still ends, as timed out once its 200 ms timeout
    /// has passed since its due time (within a tick and a margin for a
    /// loaded machine), and none is left unrecorded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_queued_behind_a_stalled_target_end_at_their_timeout() {
        let (url, clock, rec, start) = stalled(300 * MS).await;
        let mut l = load(url, 4_000.0, Duration::from_millis(200), 1);
        l.tick = Duration::from_millis(5);
        drive(l, clock, &rec, start, start + 400 * MS).await;
        let r = rec.lock().unwrap();
        let b = r.phase(Phase::Baseline);
        assert_eq!(b.total(), 1_200, "every due request is counted");
        assert_eq!(b.bad[Cause::Timeout as usize], 1_200);
        let (lo, hi) = (b.latency.min(), b.latency.max());
        assert!(lo >= 199 * MS && hi < 250 * MS, "timeouts at {lo}..{hi} µs");
        assert_eq!(r.unfinished(Phase::Baseline), 0);
    }

    /// The stall truth. A target frozen N = 1 s with a 3 s timeout: every
    /// request due during the freeze completes when it ends, so fault-phase
    /// latency is uniform on (0, N]: p50 ≈ N/2, p99 ≈ 0.99·N (±60 ms: the
    /// freeze starts when the server sees a request, a few ms after its due
    /// time). With a 0.5 s timeout and N = 1.5 s, requests time out and the
    /// RTO reads N (±0.1 s).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_target_reads_back_its_freeze() {
        let clock = Clock::start();
        let start = clock.now() + 20 * MS;
        let (t0, n) = (start + 500 * MS, S);
        let url = server(clock, (t0, t0 + n)).await;
        let rec = Arc::new(Mutex::new(Recorder::new(100 * MS, 5 * S)));
        {
            let mut r = rec.lock().unwrap();
            r.mark(Phase::Baseline, start);
            r.mark(Phase::Fault, t0);
            r.mark(Phase::Recovery, t0 + n);
        }
        let l = load(url, 200.0, Duration::from_secs(3), 1);
        drive(l, clock, &rec, start, t0 + n + 500 * MS).await;
        {
            let r = rec.lock().unwrap();
            let f = &r.phase(Phase::Fault).latency;
            let (p50, p99) = (f.value_at_quantile(0.5), f.value_at_quantile(0.99));
            assert!(p50.abs_diff(n / 2) < 60 * MS, "p50 {p50}");
            assert!(p99.abs_diff(n * 99 / 100) < 60 * MS, "p99 {p99}");
            assert_eq!(r.phase(Phase::Fault).good, 200);
        }
        second_freeze_reads_back_as_rto().await;
    }

    async fn second_freeze_reads_back_as_rto() {
        let clock = Clock::start();
        let start = clock.now() + 20 * MS;
        let (t0, n) = (start + 500 * MS, 1_500 * MS);
        let url = server(clock, (t0, t0 + n)).await;
        let rec = Arc::new(Mutex::new(Recorder::new(100 * MS, 5 * S)));
        let l = load(url, 200.0, Duration::from_millis(500), 1);
        let end = t0 + n + 1_500 * MS;
        drive(l, clock, &rec, start, end).await;
        let r = rec.lock().unwrap();
        let crit = RecoveryCriteria {
            window_us: 200 * MS,
            ratio: 0.99,
            hold_us: 500 * MS,
        };
        let imp = fault_impact(r.buckets(), r.bucket_us(), t0, end, end, &crit);
        let Rto::Recovered(rto) = imp.rto else {
            panic!("{imp:?}")
        };
        assert!(rto.abs_diff(n) < 100 * MS, "rto {rto} for a {n} µs freeze");
    }
}
