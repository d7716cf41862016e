//! drill: disaster-recovery drills and chaos tests with measured RTO, RPO,
//! availability, latency and error budget against SLOs.

// Private by default: an item is `pub` only when it is reachable from
// outside the crate (the binary and tests/ use it); else `pub(crate)`.
#![warn(unreachable_pub)]

pub(crate) mod agent;
pub mod base;
pub mod cli;
pub mod db;
pub mod fault;
mod history;
pub mod load;
pub mod measure;
pub mod observe;
mod report;
pub(crate) mod results;
mod run;
pub mod scenario;
pub mod targets;
mod verdict;
