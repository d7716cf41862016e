//! Input that parses but cannot work, through the real binary: `drill
//! validate` and `drill run` exit 2, point at `FILE:LINE:COL` of the value,
//! give a hint, and touch nothing. Unreadable files say why.

mod common;

use std::time::{Duration, Instant};

use common::{Outcome, Sandbox};

const SCENARIO: &str = "description = \"t\"\n\n[load]\npath = \"/productpage\"\nrate = 10\n\n[[faults]]\ncomponent = \"reviews\"\nregion = \"primary\"\naction = \"delete\"\n";

/// Line and column (1-based) of the first `at` after `after` in `src`.
fn position(src: &str, after: &str, at: &str) -> (usize, usize) {
    let from = src.find(after).expect("marker");
    let off = from + src[from..].find(at).expect("value");
    let line = src[..off].matches('\n').count() + 1;
    let col = src[..off]
        .rfind('\n')
        .map_or(off + 1, |i| src[i + 1..off].chars().count() + 1);
    (line, col)
}

/// Exit 2, `location` and `says` in stderr, a hint, nothing written.
fn assert_rejected(sb: &Sandbox, out: &Outcome, location: &str, says: &str) {
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(location),
        "stderr does not point at {location}\n{out}"
    );
    assert!(
        out.stderr.contains(says),
        "stderr does not say `{says}`\n{out}"
    );
    assert!(out.stderr.contains("hint:"), "no hint\n{out}");
    assert!(!sb.report_dir().exists(), "a report was written");
    assert!(
        sb.open_journals().is_empty() && sb.done_journals().is_empty(),
        "a journal was written"
    );
}

/// `validate` and `run` of `src` both reject it at the value after `after`.
fn rejects_scenario(src: &str, after: &str, at: &str, says: &str) {
    let sb = Sandbox::new();
    sb.write("s.toml", src);
    let (line, col) = position(src, after, at);
    let location = format!("s.toml:{line}:{col}");
    let report = sb.report_arg();
    for args in [
        vec!["validate", "s.toml"],
        vec!["run", "--quiet", "--report-dir", &report, "s.toml"],
    ] {
        assert_rejected(&sb, &sb.run(&args), &location, says);
    }
}

#[test]
fn values_that_cannot_work_exit_2_at_the_value() {
    let abort = SCENARIO.replace("\"delete\"", "\"abort\"\nduration = \"5s\"\nstatus = 99");
    rejects_scenario(&abort, "status", "99", "status 99 is not");
    rejects_scenario(
        &format!("{SCENARIO}count = 0\n"),
        "count",
        "0",
        "would delete nothing",
    );
    rejects_scenario(
        &format!("{SCENARIO}\n[[checks]]\nkind = \"rto\"\nphase = \"fault\"\nmax = \"30s\"\n"),
        "phase",
        "\"fault\"",
        "`phase` has no meaning for an `rto` check",
    );
    rejects_scenario(
        &SCENARIO.replace("/productpage", "/product page"),
        "path",
        " page",
        "a space",
    );
}

#[test]
fn a_zero_health_interval_exits_2_at_the_targets_file_value() {
    let sb = Sandbox::new();
    let targets = "[targets.l]\nkind = \"lab\"\nlab = { health = { interval = \"0s\" } }\n";
    sb.write("t.toml", targets);
    sb.write("s.toml", SCENARIO);
    let (line, col) = position(targets, "interval", "\"0s\"");
    let report = sb.report_arg();
    for args in [
        vec!["--targets", "t.toml", "validate", "--target", "l", "s.toml"],
        vec![
            "--targets",
            "t.toml",
            "run",
            "--target",
            "l",
            "--quiet",
            "--report-dir",
            &report,
            "s.toml",
        ],
    ] {
        let out = sb.run(&args);
        assert_rejected(
            &sb,
            &out,
            &format!("t.toml:{line}:{col}"),
            "health-check interval 0s is too short",
        );
    }
}

#[test]
fn an_empty_suite_exits_2_instead_of_passing() {
    let sb = Sandbox::new();
    let suite = "description = \"nothing\"\nscenarios = []\n";
    sb.write("empty.toml", suite);
    let (line, col) = position(suite, "scenarios", "[]");
    let out = sb.run(&[
        "run",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
        "--suite",
        "empty.toml",
    ]);
    assert_rejected(
        &sb,
        &out,
        &format!("empty.toml:{line}:{col}"),
        "a suite with no scenarios would pass by testing nothing",
    );
}

#[test]
fn unreadable_scenario_files_say_why() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("dir.toml")).unwrap();
    let out = sb.run(&["validate", "dir.toml"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("dir.toml is a directory"), "{out}");
    assert!(!out.stderr.contains("no scenario"), "{out}");
    assert!(
        !out.stderr.contains("dir.toml:1:1"),
        "a made-up position\n{out}"
    );

    std::fs::write(
        sb.path("latin1.toml"),
        b"description = \"t\"\nname = \"caf\xe9\"\n",
    )
    .unwrap();
    let out = sb.run(&["validate", "latin1.toml"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr
            .contains("is not UTF-8 (byte 0xe9 at line 2, column 12)"),
        "{out}"
    );
    assert!(out.stderr.contains("latin1.toml:2:12"), "{out}");

    // A FIFO nobody writes to: drill must say what it is, not wait on it.
    let fifo = sb.path("pipe.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path in the test's own directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let started = Instant::now();
    let out = sb.run(&["validate", "pipe.toml"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "blocked on the FIFO"
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("pipe.toml is a FIFO, not a file"),
        "{out}"
    );

    // A folder named like a built-in scenario does not hide it.
    std::fs::create_dir(sb.path("pod-failure")).unwrap();
    let out = sb.run(&["validate", "pod-failure"]);
    assert_eq!(out.code, Some(0), "{out}");

    // Nor does a FIFO among ./scenarios hang `drill list`.
    std::fs::create_dir(sb.path("scenarios")).unwrap();
    std::fs::rename(&fifo, sb.path("scenarios/pipe.toml")).unwrap();
    let started = Instant::now();
    let out = sb.run(&["list"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "list blocked on the FIFO"
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("pod-failure"), "{out}");

    // Root reads anything; the permission case only means something otherwise.
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let p = sb.write("secret.toml", SCENARIO);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = sb.run(&["validate", "secret.toml"]);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stderr.contains("permission denied"), "{out}");
    }
}

#[test]
fn diagnostics_escape_terminal_controls_and_cut_long_lines() {
    let sb = Sandbox::new();
    let src = SCENARIO.replace("\"reviews\"", "\"\\u001b[2J\\u001b[31mreviews\"");
    sb.write("ansi.toml", &src);
    let out = sb.run(&["validate", "ansi.toml"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        !out.stderr.contains('\u{1b}'),
        "a raw escape reached the terminal\n{out}"
    );
    assert!(
        out.stderr
            .contains("unknown component `\\u{1b}[2J\\u{1b}[31mreviews`"),
        "{out}"
    );

    let long = format!("/{} x", "a".repeat(1 << 20));
    sb.write("long.toml", &SCENARIO.replace("/productpage", &long));
    let out = sb.run(&["validate", "long.toml"]);
    assert_eq!(out.code, Some(2), "{out}");
    // The space after `path = "/` and 2^20 letters.
    let location = format!("long.toml:4:{}", 8 + 1 + (1 << 20) + 1);
    assert!(out.stderr.contains(&location), "{out}");
    assert!(
        out.stderr.len() < 2_000,
        "{} bytes of diagnostic",
        out.stderr.len()
    );
    assert!(out.stderr.contains("| …aaa"), "{out}");
}

/// `silence = true` against a target that names no Alertmanager would
/// silence nothing while the plan said it would: refused at the key, exit 2,
/// before anything runs; with an Alertmanager named it validates.
#[test]
fn silence_without_an_alertmanager_exits_2_at_the_key() {
    let sb = Sandbox::new();
    let bare = "[targets.prod]\nkind = \"kubernetes\"\nurl = \"https://shop.example.com\"\ncontexts = { primary = \"a\", secondary = \"b\" }\n";
    let targets = sb.write("targets.toml", bare);
    let scenario = format!(
        "{}/scenarios/ingress-failover.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    for cmd in ["validate", "plan"] {
        let out = sb.run(&[
            "--targets",
            targets.to_str().unwrap(),
            cmd,
            "--target",
            "prod",
            &scenario,
        ]);
        assert_eq!(out.code, Some(2), "{cmd}: {out}");
        assert!(out.stderr.contains("names no Alertmanager"), "{out}");
        assert!(out.stderr.contains("ingress-failover.toml:11:1"), "{out}");
        assert!(out.stderr.contains("[targets.prod.alertmanager]"), "{out}");
    }
    let named = format!(
        "{bare}[targets.prod.prometheus]\nurl = \"http://prometheus.monitoring.svc:9090\"\n[targets.prod.alertmanager]\nurl = \"http://alertmanager.monitoring.svc:9093\"\n"
    );
    let targets = sb.write("targets.toml", &named);
    let out = sb.run(&[
        "--targets",
        targets.to_str().unwrap(),
        "validate",
        "--target",
        "prod",
        &scenario,
    ]);
    assert_eq!(out.code, Some(0), "{out}");
}
