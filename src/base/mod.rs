//! The bottom layer: what every other layer speaks and nothing here knows of
//! them. Units and durations, file:line:col diagnostics, exit codes, the
//! command error, the run's clock, TLS client settings, how an error chain is
//! printed, and proving a folder writable. Imports nothing from the crate
//! outside this folder.

pub(crate) mod chain;
pub mod clock;
pub mod diag;
pub(crate) mod error;
pub(crate) mod exit;
pub(crate) mod fs;
pub(crate) mod http;
pub(crate) mod tls;
pub mod units;
