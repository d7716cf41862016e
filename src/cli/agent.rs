//! `drill agent`: a load generator that takes its share of a drill's schedule
//! from a runner (`drill run --agents N`, or a target's vantage points) and
//! streams back exact deltas of what it measured.

use std::net::SocketAddr;

use crate::base::error::CliError;
use crate::base::units::{Dur, parse_duration};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to serve the agent protocol on; port 0 picks a free one. The
    /// agent prints `listening on ADDR` on stdout once it accepts calls.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Stop sending and exit (code 3) when no poll came from the runner for
    /// this long (the runner's `start` may set its own).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Dur,
    /// Exit (code 3) when no runner started this agent within this time.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub start_timeout: Dur,
}

pub(super) fn run(a: Args) -> Result<i32, CliError> {
    let rt = super::runtime()?;
    rt.block_on(crate::agent::server::serve(crate::agent::server::Options {
        listen: a.listen,
        idle_timeout: a.idle_timeout.0,
        start_timeout: a.start_timeout.0,
    }))
    .map_err(CliError::Failed)
}
