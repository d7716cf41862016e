//! What on-call sees: Prometheus's alerts and metrics and Alertmanager's
//! alerts and silences, read during a drill to measure time to detect and
//! time to resolve.

pub mod api;
pub(crate) mod guard;
pub(crate) mod promql;
pub(crate) mod watch;
