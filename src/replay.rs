//! `lastmile replay mdrp <instance_dir> --out <dir> [--policy greedy]
//! [--max-bundle N] [--late]`: the dispatcher's planner on a simulated clock over a
//! Meal Delivery Routing Problem instance; writes the evaluator's three
//! solution files, checks them with our own checker, prints the metrics.

use std::path::PathBuf;
use std::time::Instant;

use lastmile_actors::research::mdrp::{self, percentile, Solution};
use lastmile_actors::research::replay::{replay, Policy};

/// Bundle size of a replay unless `--max-bundle` says otherwise (the live
/// service's `dispatch.max_tasks` default).
pub const DEFAULT_MAX_BUNDLE: usize = 3;

/// What `lastmile replay` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayArgs {
    /// The instance directory.
    pub instance: PathBuf,
    /// Where the solution files go.
    pub out: PathBuf,
    /// Planner or greedy baseline.
    pub policy: Policy,
    /// Most orders per bundle.
    pub max_bundle: usize,
    /// Deliver orders that cannot make `max` late instead of never.
    pub late: bool,
}

/// A replay that could not run or produced an infeasible solution.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Bad command line.
    #[error("{0} (usage: lastmile replay mdrp <instance_dir> --out <dir> [--policy planner|greedy] [--max-bundle N] [--late])")]
    Usage(String),
    /// The instance or the output could not be read or written.
    #[error(transparent)]
    Files(#[from] mdrp::MdrpError),
    /// Our checker found the solution infeasible.
    #[error("infeasible solution: {0}")]
    Infeasible(String),
}

impl ReplayArgs {
    /// Parses the arguments after `replay`.
    pub fn parse(args: &[String]) -> Result<Self, ReplayError> {
        let usage = |m: &str| ReplayError::Usage(m.to_owned());
        let mut it = args.iter();
        if it.next().map(String::as_str) != Some("mdrp") {
            return Err(usage("only `replay mdrp` exists"));
        }
        let instance = it.next().ok_or_else(|| usage("missing <instance_dir>"))?;
        let mut out = None;
        let mut policy = Policy::Planner;
        let mut max_bundle = DEFAULT_MAX_BUNDLE;
        let mut late = false;
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| usage(&format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--out" => out = Some(PathBuf::from(value()?)),
                "--late" => late = true,
                "--policy" => {
                    policy = match value()?.as_str() {
                        "planner" => Policy::Planner,
                        "greedy" => Policy::Greedy,
                        other => return Err(usage(&format!("unknown policy {other}"))),
                    }
                }
                "--max-bundle" => {
                    max_bundle = value()?
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| usage("--max-bundle takes a whole number ≥ 1"))?
                }
                other => return Err(usage(&format!("unknown argument {other}"))),
            }
        }
        Ok(Self {
            instance: PathBuf::from(instance),
            out: out.ok_or_else(|| usage("missing --out <dir>"))?,
            policy,
            max_bundle,
            late,
        })
    }
}

/// Runs a replay and prints its report; Err for a bad instance or an
/// infeasible result.
pub fn run(args: &ReplayArgs) -> Result<(), ReplayError> {
    let inst = mdrp::load(&args.instance)?;
    let started = Instant::now();
    let result = replay(&inst, args.policy, args.max_bundle, args.late);
    let wall = started.elapsed().as_secs_f64();
    result.solution.write(&inst, &args.out)?;
    let written = Solution::read(&inst, &args.out)?;
    let problems = mdrp::check(&inst, &written, args.late);
    let m = mdrp::metrics(&inst, &written);
    let mut rounds = result.round_ms.clone();
    let (p50, p99) = (percentile(&mut rounds, 0.5), percentile(&mut rounds, 0.99));
    let name = args
        .instance
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let policy = match args.policy {
        Policy::Planner => "planner",
        Policy::Greedy => "greedy",
    };
    println!(
        "{name}: {} orders, {} couriers, policy {policy}, bundles ≤ {}",
        inst.orders.len(),
        inst.couriers.len(),
        args.max_bundle
    );
    println!(
        "delivered            {:.2} % ({}/{}; {} could be delivered within {} min at all; {} past it)",
        m.delivered_pct(),
        m.delivered,
        m.orders,
        m.deliverable,
        inst.params.max,
        m.past_max
    );
    println!(
        "click-to-door        mean {:.2} min, 90th {:.1} (bound on these orders: mean {:.2})",
        m.ctd_mean, m.ctd_p90, m.ctd_bound_mean
    );
    println!(
        "ready-to-pickup      mean {:.2} min, 90th {:.1}",
        m.r2p_mean, m.r2p_p90
    );
    println!("overage (past 40)    mean {:.2} min", m.overage_mean);
    println!(
        "couriers             {:.2} orders/hour, utilisation {:.2}, ${:.2} per order, {:.2} orders per bundle",
        m.orders_per_courier_hour, m.utilisation, m.cost_per_order, m.orders_per_bundle
    );
    println!(
        "rounds               {} , p50 {p50:.3} ms, p99 {p99:.3} ms; replay {wall:.2} s",
        rounds.len()
    );
    println!(
        "RESULT instance={name} policy={policy} orders={} delivered={} deliverable={} past_max={} delivered_pct={:.3} ctd_mean={:.3} ctd_p90={:.3} ctd_bound={:.3} r2p_mean={:.3} r2p_p90={:.3} overage={:.3} cost={:.3} oph={:.3} opb={:.3} util={:.3} round_p50_ms={p50:.3} round_p99_ms={p99:.3} wall_s={wall:.3} feasible={}",
        m.orders,
        m.delivered,
        m.deliverable,
        m.past_max,
        m.delivered_pct(),
        m.ctd_mean,
        m.ctd_p90,
        m.ctd_bound_mean,
        m.r2p_mean,
        m.r2p_p90,
        m.overage_mean,
        m.cost_per_order,
        m.orders_per_courier_hour,
        m.orders_per_bundle,
        m.utilisation,
        u8::from(problems.is_empty())
    );
    if let Some(first) = problems.first() {
        return Err(ReplayError::Infeasible(format!(
            "{first} (and {} more)",
            problems.len() - 1
        )));
    }
    println!("feasible (own checker)");
    Ok(())
}
