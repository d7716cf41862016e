//! The load generator's settings through the binary: bad `[load] workers`,
//! `max_in_flight` and `max_send_lag` are input errors (exit 2) naming the
//! line and column with a hint, and `--workers` is range-checked.

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

#[test]
fn bad_generator_settings_exit_2_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drill.toml"),
        "[targets.t]\nkind = \"http\"\nurl = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
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
