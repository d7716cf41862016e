//! The load generator's settings through the binary: bad `[load] workers`,
//! `max_in_flight`, `max_send_lag` and `tick` are input errors (exit 2)
//! naming the line and column with a hint, and `--workers` is range-checked.

use std::process::Command;

fn drill(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .current_dir(dir)
        .env("DRILL_STATE_DIR", dir.join("state"))
        .env("CI", "1")
        .output()
        .expect("run drill");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder whose targets file names an http target `t`.
fn with_target() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drill.toml"),
        "[targets.t]\nkind = \"http\"\nurl = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn bad_generator_settings_exit_2_at_their_line() {
    let dir = with_target();
    std::fs::write(
        dir.path().join("s.toml"),
        "description = \"d\"\ntarget = \"t\"\n[load]\npath = \"/\"\nrate = 10\n\
         workers = 0\nmax_in_flight = 0\nmax_send_lag = \"0s\"\n",
    )
    .unwrap();
    let (code, err) = drill(&["validate", "s.toml"], dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("workers = 0 is out of range"), "{err}");
    assert!(err.contains("s.toml:6:11"), "{err}");
    assert!(err.contains("4 per core on this machine"), "{err}");
    assert!(err.contains("max_in_flight = 0 is out of range"), "{err}");
    assert!(err.contains("s.toml:7:17"), "{err}");
    assert!(err.contains("max_send_lag must be above zero"), "{err}");

    let (code, err) = drill(&["run", "s.toml", "--workers", "0"], dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--workers"), "{err}");
}

/// A tick outside 50 µs–100 ms, or one the send-lag bound cannot absorb
/// (a request may wait a whole tick), is refused before anything runs:
/// here the p99 check of 10 ms sets the bound to 1 ms, so a 2 ms tick
/// would make the drill inconclusive by construction.
#[test]
fn a_tick_that_cannot_work_exits_2_at_its_line() {
    let dir = with_target();
    let scenario = |tick: &str| {
        format!(
            "description = \"d\"\ntarget = \"t\"\n[load]\npath = \"/\"\nrate = 10\n\
             tick = \"{tick}\"\n[[checks]]\nkind = \"latency\"\nphase = \"baseline\"\n\
             percentile = \"p99\"\nmax = \"10ms\"\n"
        )
    };
    std::fs::write(dir.path().join("s.toml"), scenario("2ms")).unwrap();
    let (code, err) = drill(&["validate", "s.toml"], dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s.toml:6:8"), "{err}");
    assert!(
        err.contains("tick = 2000µs is more than half the send-lag bound (1000µs)"),
        "{err}"
    );
    assert!(err.contains("raise `max_send_lag`"), "{err}");

    std::fs::write(dir.path().join("s.toml"), scenario("1s")).unwrap();
    let (code, err) = drill(&["validate", "s.toml"], dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tick = 1000000µs is out of range"), "{err}");

    std::fs::write(dir.path().join("s.toml"), scenario("400us")).unwrap();
    let (code, err) = drill(&["validate", "s.toml"], dir.path());
    assert_eq!(code, Some(0), "{err}");
}
