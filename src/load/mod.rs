//! Load that drill generates: open-loop HTTP against the target's entry point.

pub mod http;
pub mod reader;
mod timer;
pub mod writer;
