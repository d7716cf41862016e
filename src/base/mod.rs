//! The bottom layer: what every other layer speaks and nothing here knows of
//! them. Units and durations, file:line:col diagnostics, exit codes, the
//! command error, the run's clock, TLS client settings, and how an error
//! chain is printed. Imports nothing from the crate outside this folder.

pub mod chain;
pub mod clock;
pub mod diag;
pub mod error;
pub mod exit;
pub mod http;
pub mod tls;
pub mod units;
