//! drill: disaster-recovery drills and chaos tests with measured RTO, RPO,
//! availability, latency and error budget against SLOs.

pub mod cli;
pub mod clock;
pub mod db;
pub mod error;
pub mod fault;
pub mod load;
pub mod measure;
pub mod observe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod targets;
