//! Ctrl-C and SIGTERM: the first stops the drill early (faults are reverted,
//! the report is written); a second skips the remaining waits but never the
//! revert.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[derive(Clone)]
pub(crate) struct Interrupt {
    count: Arc<AtomicU8>,
    rx: watch::Receiver<u8>,
}

impl Interrupt {
    /// Installs the handlers; call once, inside the runtime.
    pub(crate) fn install() -> Interrupt {
        let (tx, rx) = watch::channel(0u8);
        let count = Arc::new(AtomicU8::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "interrupt",
                    _ = term.recv() => "SIGTERM",
                };
                let n = c.fetch_add(1, Ordering::AcqRel) + 1;
                if n == 1 {
                    eprintln!(
                        "\n{name}: stopping the drill and reverting every fault (again to skip waiting; the revert still runs)"
                    );
                } else {
                    eprintln!("\n{name}: skipping the remaining waits; reverting now");
                }
                tx.send_replace(n);
            }
        });
        Interrupt { count, rx }
    }

    pub(crate) fn requested(&self) -> bool {
        self.count.load(Ordering::Acquire) >= 1
    }

    /// The user asked twice: skip waits that are not reverts.
    pub(crate) fn hurried(&self) -> bool {
        self.count.load(Ordering::Acquire) >= 2
    }

    /// Resolves when an interrupt arrives (at once if one already has).
    pub(crate) async fn wait(&self) {
        let mut rx = self.rx.clone();
        while *rx.borrow_and_update() == 0 {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleeps `d`, or less if interrupted. Returns true when interrupted.
    pub(crate) async fn sleep(&self, d: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.requested(),
            _ = self.wait() => true,
        }
    }
}
