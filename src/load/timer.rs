//! A high-resolution sleep inside a single-threaded runtime. tokio's timer
//! has millisecond granularity; the generator needs to wake within tens of
//! microseconds of a due time without spinning, so on Linux it arms a
//! timerfd and waits for it on the runtime's own event loop (one wakeup per
//! batch, shared with the sockets' readiness).

use std::time::Instant;

#[cfg(target_os = "linux")]
pub(crate) struct Timer {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl Timer {
    pub(crate) fn new() -> std::io::Result<Timer> {
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
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        Ok(Timer { fd })
    }

    /// Sleeps until `at`; when `at` has passed, only yields (so the tasks
    /// just released get to run).
    pub(crate) async fn sleep_until(&mut self, at: Instant) {
        use std::os::fd::AsRawFd;
        let wait = at.saturating_duration_since(Instant::now());
        if wait.as_micros() < 2 {
            tokio::task::yield_now().await;
            return;
        }
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
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: a valid timerfd and a valid itimerspec (relative time).
        if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } != 0 {
            tokio::time::sleep(wait).await;
            return;
        }
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                tokio::time::sleep(wait).await;
                return;
            };
            let mut expirations = 0u64;
            // SAFETY: reading 8 bytes into a u64 from a timerfd.
            let n = unsafe { libc::read(fd, (&raw mut expirations).cast(), 8) };
            if n == 8 {
                return;
            }
            ready.clear_ready();
        }
    }
}

/// Elsewhere: tokio's timer (millisecond granularity).
#[cfg(not(target_os = "linux"))]
pub(crate) struct Timer;

#[cfg(not(target_os = "linux"))]
impl Timer {
    pub(crate) fn new() -> std::io::Result<Timer> {
        Ok(Timer)
    }
    pub(crate) async fn sleep_until(&mut self, at: Instant) {
        tokio::time::sleep_until(at.into()).await;
    }
}
