//! The `lastmile` binary: load config, start telemetry, build, run.

use std::path::PathBuf;
use std::process::ExitCode;

use lastmile::config::Settings;
use lastmile::replay::{ReplayArgs, ReplayError};
use lastmile::startup::Application;
use lastmile::telemetry;
use lastmile_actors::domain::ChinaDay;

/// Exit code for a configuration the service cannot start with.
const EXIT_BAD_CONFIG: u8 = 2;

fn config_arg() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => path = Some(PathBuf::from(args.next().ok_or("--config needs a FILE")?)),
            other => match other.strip_prefix("--config=") {
                Some(p) => path = Some(PathBuf::from(p)),
                None => {
                    return Err(format!(
                        "unknown argument {other} (usage: lastmile [--config FILE])"
                    ))
                }
            },
        }
    }
    Ok(path)
}

/// `lastmile replay mdrp …`: exit 0 with the report, 2 on bad input.
fn replay(args: &[String]) -> ExitCode {
    match ReplayArgs::parse(args).and_then(|a| lastmile::replay::run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ReplayError::Infeasible(_)) => {
            eprintln!("lastmile replay: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("lastmile replay: {}", one_line(&e.to_string()));
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

/// `lastmile reconcile --date YYYY-MM-DD [--config FILE]`: prints the
/// day's reconciliation as JSON; exit 0 when the bill agrees, 1 when it
/// does not, 2 when it could not run.
fn reconcile(args: &[String]) -> ExitCode {
    let usage = "usage: lastmile reconcile --date YYYY-MM-DD [--config FILE]";
    let (mut date, mut config) = (None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--date" => date = rest.next().cloned(),
            "--config" => config = rest.next().map(PathBuf::from),
            other => {
                eprintln!("lastmile reconcile: unknown argument {other} ({usage})");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        }
    }
    let Some(day) = date.and_then(|d| ChinaDay::parse(&d).ok()) else {
        eprintln!("lastmile reconcile: --date must be a day such as 2026-12-02 ({usage})");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "lastmile reconcile: bad configuration: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    actix_web::rt::System::new().block_on(async move {
        match lastmile::startup::reconcile_day(&settings, day).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                if report.mismatches.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("lastmile reconcile: {}", one_line(&e));
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        }
    })
}

/// `lastmile operator …`: exit 0 with what was done, 2 when it could not run.
fn operator(args: &[String]) -> ExitCode {
    let (command, config) = match lastmile::operator_cli::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("lastmile operator: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "lastmile operator: bad configuration: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match lastmile::operator_cli::run(command, &settings) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lastmile operator: {}", one_line(&e));
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

/// `lastmile store copy …`: exit 0 when the target holds everything, 1
/// with the differences, 2 when it could not run (a store in use included).
fn store(args: &[String]) -> ExitCode {
    let copy = match lastmile::store_cli::parse(args) {
        Ok(copy) => copy,
        Err(e) => {
            eprintln!("lastmile store: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let settings = match Settings::load(copy.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "lastmile store: bad configuration: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match lastmile::store_cli::run(&copy, &settings) {
        Ok(copied) => {
            println!("{}", lastmile::store_cli::report(&copy, &copied));
            if copied.differences().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lastmile store: {}", one_line(&e.to_string()));
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

/// Operators read the first line of a failed start; parser errors span several.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") => return replay(&args[1..]),
        Some("reconcile") => return reconcile(&args[1..]),
        Some("operator") => return operator(&args[1..]),
        Some("store") => return store(&args[1..]),
        _ => {}
    }
    let settings =
        match config_arg().and_then(|p| Settings::load(p.as_deref()).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("lastmile: bad configuration: {}", one_line(&e));
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
    telemetry::init_tracing(settings.log.format);
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(&settings) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("lastmile: cannot start: {}", one_line(&e.to_string()));
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        tracing::info!(port = app.port(), mode = ?settings.wechat.mode, "lastmile listening");
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lastmile: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
