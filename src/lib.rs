//! drill: disaster-recovery drills and chaos tests with measured RTO, RPO,
//! availability, latency and error budget against SLOs.

pub(crate) mod agent;
pub mod cli;
pub mod clock;
pub mod db;
mod error;
pub mod fault;
mod history;
pub mod load;
pub mod measure;
pub mod observe;
mod report;
mod run;
pub mod scenario;
pub mod targets;
mod tls;
