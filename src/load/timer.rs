//! A high-resolution timer for a single-threaded runtime. tokio's timer
//! has millisecond granularity; the generator needs to wake within tens of
//! microseconds of a due time without spinning, so on Linux it arms a
//! timerfd and polls it on the runtime's own event loop (one wakeup per
//! batch, shared with the sockets' readiness). Elsewhere, or if the timerfd
//! cannot be used, tokio's timer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

pub(crate) struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    fallback: Pin<Box<tokio::time::Sleep>>,
    /// The timer is set and has not fired yet.
    armed: bool,
}

impl Timer {
    pub(crate) fn new() -> Timer {
        Timer {
            #[cfg(target_os = "linux")]
            fd: timerfd().ok(),
            fallback: Box::pin(tokio::time::sleep_until(Instant::now().into())),
            armed: false,
        }
    }

    /// Sets the timer to fire at `at` (at once if `at` has passed),
    /// replacing any earlier setting.
    pub(crate) fn arm(&mut self, at: Instant) {
        self.armed = true;
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use std::os::fd::AsRawFd;
            // A zero it_value would disarm: an instant past fires in 1 ns.
            let wait = at
                .saturating_duration_since(Instant::now())
                .max(std::time::Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: wait.as_secs() as libc::time_t,
                    tv_nsec: wait.subsec_nanos() as libc::c_long,
                },
            };
            let raw = fd.get_ref().as_raw_fd();
            // SAFETY: a valid timerfd and a valid itimerspec (relative time).
            if unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) } == 0 {
                return;
            }
            self.fd = None;
        }
        self.fallback.as_mut().reset(at.into());
    }

    /// Ready once the armed time has come; pending while unarmed.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.armed {
            return Poll::Pending;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use std::os::fd::AsRawFd;
            loop {
                let Poll::Ready(ready) = fd.poll_read_ready(cx) else {
                    return Poll::Pending;
                };
                let Ok(mut ready) = ready else {
                    self.armed = false;
                    return Poll::Ready(());
                };
                let mut expirations = 0u64;
                let raw = fd.get_ref().as_raw_fd();
                // SAFETY: reading 8 bytes into a u64 from a timerfd.
                let n = unsafe { libc::read(raw, (&raw mut expirations).cast(), 8) };
                if n == 8 {
                    self.armed = false;
                    return Poll::Ready(());
                }
                ready.clear_ready();
            }
        }
        let fired = self.fallback.as_mut().poll(cx);
        if fired.is_ready() {
            self.armed = false;
        }
        fired
    }
}

#[cfg(target_os = "linux")]
fn timerfd() -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: timerfd_create returns a new descriptor we own, or -1.
    let raw = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid descriptor nobody else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    // SAFETY: `fd` is open and owned by the AsyncFd for its whole life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}
