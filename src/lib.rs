//! drill: disaster-recovery drills and chaos tests with measured RTO, RPO,
//! availability, latency and error budget against SLOs.

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
pub mod results;
mod run;
pub mod scenario;
pub mod targets;
mod verdict;
