//! `lastmile replay mdrp` on the tiny instance shipped in
//! `tests/fixtures/mdrp-tiny` (the tests never need `../shared`): the
//! solution files, our checker, and metrics computed by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use lastmile_actors::research::mdrp::{self, Solution};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mdrp-tiny")
}

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .arg("replay")
        .args(args)
        .output()
        .expect("runs")
}

fn result_field(stdout: &str, key: &str) -> f64 {
    stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .and_then(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn the_tiny_instance_replays_to_feasible_files_with_hand_computed_metrics() {
    let out = tempfile::tempdir().expect("tmp");
    let dir = out.path().join("solution");

    let run = replay(&[
        "mdrp",
        fixture().to_str().expect("path"),
        "--out",
        dir.to_str().expect("path"),
    ]);

    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("written");
    // c1 stands at r1: it is sent when o1 will be ready on arrival (t = 7,
    // a minute's wait at most); c2 likewise for o2 at r2 (t = 17); o3 goes
    // to c1, free again at o1's door. Times from the rules by hand:
    // o1: leave 7, arrive r1 7, pickup max(7+2, 10) = 10, o1 at 12+5+2 = 19.
    // o2: leave 17, arrive r2 17, pickup max(19, 20) = 20, o2 at 22+5+2 = 29.
    // o3: leave 30 from o1, arrive r1 35, pickup 37, o3 at 39+3+2 = 44.
    assert_eq!(
        read("solution_info_assignments.txt"),
        "assignment_time pickup_time courier orders\n7 10 c1 o1\n17 20 c2 o2\n30 37 c1 o3\n"
    );
    assert_eq!(
        read("solution_info_orders.txt"),
        "order placement_time ready_time pickup_time dropoff_time courier\n\
         o1 0 10 10 19 c1\no2 5 20 20 29 c2\no3 30 30 37 44 c1\n"
    );
    assert_eq!(
        read("solution_info_couriers.txt"),
        "courier departure_time origin destination\n\
         c1 7 0 r1\nc1 12 r1 o1\nc1 30 o1 r1\nc1 39 r1 o3\nc2 17 0 r2\nc2 22 r2 o2\n"
    );
    let inst = mdrp::load(&fixture()).expect("instance");
    let solution = Solution::read(&inst, &dir).expect("solution");
    assert_eq!(mdrp::check(&inst, &solution, false), Vec::<String>::new());
    // click-to-door 19, 24, 14; ready-to-pickup 0, 0, 7; pay: both couriers
    // get the 2-hour guarantee (30 $) → 60 / 3; driving 13 + 5 and service
    // 3 × 4 + 3 × 4 over 240 shift minutes.
    let expected = [
        ("delivered_pct", 100.0),
        ("deliverable", 3.0),
        ("past_max", 0.0),
        ("ctd_mean", 19.0),
        ("ctd_p90", 24.0),
        // Each order straight from its restaurant at the earliest pickup:
        // o1 max(10, 2) + 2 + 5 + 2 = 19, o2 20 + 2 + 5 + 2 − 5 = 24,
        // o3 max(30, 32) + 2 + 3 + 2 − 30 = 9.
        ("ctd_bound", 52.0 / 3.0),
        ("r2p_mean", 7.0 / 3.0),
        ("r2p_p90", 7.0),
        ("overage", 0.0),
        ("cost", 20.0),
        ("oph", 0.75),
        ("opb", 1.0),
        ("util", 42.0 / 240.0),
    ];
    let metrics = mdrp::metrics(&inst, &solution);
    for (key, want) in expected {
        assert!(
            (result_field(&stdout, key) - want).abs() < 1e-3,
            "{key}: printed {} want {want}",
            result_field(&stdout, key)
        );
    }
    assert!((metrics.ctd_mean - 19.0).abs() < 1e-9);
    assert!((metrics.utilisation - 42.0 / 240.0).abs() < 1e-9);
}

#[test]
fn the_greedy_baseline_replays_too_and_is_feasible() {
    let out = tempfile::tempdir().expect("tmp");
    let dir = out.path().join("greedy");
    let run = replay(&[
        "mdrp",
        fixture().to_str().expect("path"),
        "--out",
        dir.to_str().expect("path"),
        "--policy",
        "greedy",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains("policy greedy"));
    let inst = mdrp::load(&fixture()).expect("instance");
    let solution = Solution::read(&inst, &dir).expect("solution");
    assert_eq!(mdrp::check(&inst, &solution, false), Vec::<String>::new());
    assert_eq!(solution.orders.len(), 3);
}

#[test]
fn an_order_that_cannot_make_the_maximum_is_given_up_or_with_late_delivered_late() {
    let out = tempfile::tempdir().expect("tmp");
    let inst_dir = out.path().join("instance");
    std::fs::create_dir(&inst_dir).expect("dir");
    for name in [
        "couriers.txt",
        "instance_parameters.txt",
        "restaurants.txt",
        "orders.txt",
    ] {
        std::fs::copy(fixture().join(name), inst_dir.join(name)).expect("copy");
    }
    // Ready 95 minutes after it is placed: 95 + 2 + 5 + 2 = 104 > 90.
    let mut orders = std::fs::read_to_string(inst_dir.join("orders.txt")).expect("orders");
    orders.push_str("o4\t0\t500\t0\tr1\t95\n");
    std::fs::write(inst_dir.join("orders.txt"), orders).expect("write");
    let run_with = |dir: &std::path::Path, late: bool| {
        let mut args = vec![
            "mdrp",
            inst_dir.to_str().expect("path"),
            "--out",
            dir.to_str().expect("path"),
        ];
        if late {
            args.push("--late");
        }
        let run = replay(&args);
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(run.status.success(), "{stdout}");
        stdout
    };

    let hard = run_with(&out.path().join("hard"), false);
    assert_eq!(result_field(&hard, "delivered"), 3.0);
    assert_eq!(result_field(&hard, "deliverable"), 3.0);

    let late_dir = out.path().join("late");
    let late = run_with(&late_dir, true);
    assert_eq!(result_field(&late, "delivered"), 4.0, "{late}");
    assert_eq!(result_field(&late, "past_max"), 1.0);
    assert_eq!(result_field(&late, "feasible"), 1.0);
    let inst = mdrp::load(&inst_dir).expect("instance");
    let solution = Solution::read(&inst, &late_dir).expect("solution");
    assert_eq!(mdrp::check(&inst, &solution, true), Vec::<String>::new());
    let strict = mdrp::check(&inst, &solution, false);
    assert_eq!(strict.len(), 1, "{strict:?}");
    assert!(strict[0].contains("o4"), "{strict:?}");
}

/// Changes a feasible solution so that it breaks one rule.
type Breakage = Box<dyn Fn(&mut Solution)>;

#[test]
fn the_checker_finds_what_breaks_the_rules() {
    let inst = mdrp::load(&fixture()).expect("instance");
    let out = tempfile::tempdir().expect("tmp");
    let dir = out.path().join("s");
    let run = replay(&[
        "mdrp",
        fixture().to_str().expect("path"),
        "--out",
        dir.to_str().expect("path"),
    ]);
    assert!(run.status.success());
    let good = Solution::read(&inst, &dir).expect("solution");
    let broken: Vec<(&str, Breakage)> = vec![
        (
            "pickup before ready",
            Box::new(|s| {
                s.bundles[1].pickup = 15.0;
                s.orders[1].pickup = 15.0;
            }),
        ),
        ("order twice", Box::new(|s| s.bundles[2].orders.push(0))),
        (
            "past the 90-minute maximum",
            Box::new(|s| s.orders[2].dropoff = 200.0),
        ),
        (
            "pickup after the shift",
            Box::new(|s| {
                s.bundles[2].pickup = 130.0;
                s.orders[2].pickup = 130.0;
            }),
        ),
        (
            "broken move chain",
            Box::new(|s| {
                s.moves.remove(4);
            }),
        ),
        (
            "assigned before placement",
            Box::new(|s| s.bundles[2].assigned_at = 10.0),
        ),
    ];
    for (why, breaks) in broken {
        let mut s = good.clone();
        breaks(&mut s);
        assert!(
            !mdrp::check(&inst, &s, false).is_empty(),
            "{why} went unnoticed"
        );
    }
}

#[test]
fn a_missing_or_malformed_instance_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("dir");
    for f in ["restaurants.txt", "couriers.txt", "instance_parameters.txt"] {
        std::fs::copy(fixture().join(f), bad.join(f)).expect("copy");
    }
    std::fs::write(
        bad.join("orders.txt"),
        "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\tzero\t0\tr1\t10\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "mdrp".into(),
                dir.path().join("nope").display().to_string(),
                "--out".into(),
                out.display().to_string(),
            ],
            "missing",
        ),
        (
            vec![
                "mdrp".into(),
                bad.display().to_string(),
                "--out".into(),
                out.display().to_string(),
            ],
            "malformed",
        ),
        (
            vec!["mdrp".into(), fixture().display().to_string()],
            "no --out",
        ),
        (
            vec![
                "mdrp".into(),
                fixture().display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--policy".into(),
                "magic".into(),
            ],
            "bad policy",
        ),
    ];
    for (args, why) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = replay(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{why}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{why}: {stderr}");
    }
}

#[test]
fn huge_numbers_are_refused_in_one_line_instead_of_running_forever() {
    let cases = [
        (
            "couriers.txt",
            "courier\tx\ty\ton_time\toff_time\nc1\t0\t0\t0\t1e17\n",
            "off time 1e17",
        ),
        (
            "instance_parameters.txt",
            "meters_per_minute\tp\td\tt\tm\tppo\tpph\n100\t4\t4\t40\t1e300\t10\t15\n",
            "maximum 1e300",
        ),
        (
            "restaurants.txt",
            "restaurant\tx\ty\nr1\t9e15\t0\n",
            "coordinate 9e15",
        ),
    ];
    for (file, text, why) in cases {
        let dir = tempfile::tempdir().expect("tmp");
        let bad = dir.path().join("bad");
        std::fs::create_dir_all(&bad).expect("dir");
        for f in [
            "restaurants.txt",
            "couriers.txt",
            "instance_parameters.txt",
            "orders.txt",
        ] {
            std::fs::copy(fixture().join(f), bad.join(f)).expect("copy");
        }
        std::fs::write(bad.join(file), text).expect("write");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lastmile"))
            .args(["replay", "mdrp"])
            .arg(&bad)
            .arg("--out")
            .arg(dir.path().join("out"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut stderr);
        }
        let status = status.unwrap_or_else(|| panic!("{why}: still running after 20 s"));
        assert_eq!(status.code(), Some(2), "{why}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{why}: {stderr}");
        assert!(stderr.contains("outside"), "{why}: {stderr}");
    }
}
