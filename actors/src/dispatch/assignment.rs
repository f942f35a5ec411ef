//! Min-cost assignment of bundles to couriers: each bundle to at most one
//! courier, each courier at most one bundle, as many pairs as possible,
//! then the least total cost. Pure.
//!
//! Hungarian algorithm with potentials (O(n²·m) for n bundles and m
//! columns) over the couriers some bundle can use; every bundle also has a
//! private "not now" column of cost 0, so only pairs of negative cost (the
//! planner prices a pair as its worth, negated) are ever formed.
//! Beyond [`DENSE_LIMIT`] operations a round falls back to a greedy pass
//! (cheapest pair first), which keeps a busy round bounded in time.

/// A candidate pair as the assignment sees it: which courier (column) and
/// at what cost; the planner's pairs carry their schedules besides.
pub(crate) trait Priced {
    /// Index of the courier.
    fn courier(&self) -> usize;
    /// What the pair costs (negative: worth forming).
    fn cost(&self) -> f64;
}

/// Dense Hungarian work above which the greedy pass is used instead.
const DENSE_LIMIT: usize = 40_000_000;

/// Pairs chosen as (bundle index, index into that bundle's `pairs`).
pub(crate) fn min_cost<P: Priced>(bundles: usize, pairs: &[Vec<P>]) -> Vec<(usize, usize)> {
    let mut columns: Vec<usize> = pairs.iter().flatten().map(|p| p.courier()).collect();
    columns.sort_unstable();
    columns.dedup();
    let n = bundles;
    let m = columns.len() + n;
    if n == 0 || columns.is_empty() {
        return Vec::new();
    }
    if n.saturating_mul(n).saturating_mul(m) > DENSE_LIMIT {
        return greedy(pairs);
    }
    let col_of = |courier: usize| columns.binary_search(&courier).unwrap_or(0);
    // Real columns first, then one "not now" column per bundle.
    let mut cost = vec![vec![f64::INFINITY; m]; n];
    for (b, list) in pairs.iter().enumerate() {
        for p in list {
            let c = col_of(p.courier());
            cost[b][c] = cost[b][c].min(p.cost());
        }
        cost[b][columns.len() + b] = 0.0;
    }
    let assigned = hungarian(&cost);
    let mut out = Vec::new();
    for (b, &c) in assigned.iter().enumerate() {
        if c >= columns.len() {
            continue;
        }
        let courier = columns[c];
        if let Some(slot) = pairs[b]
            .iter()
            .enumerate()
            .filter(|(_, p)| p.courier() == courier)
            .min_by(|x, y| x.1.cost().total_cmp(&y.1.cost()))
            .map(|(i, _)| i)
        {
            out.push((b, slot));
        }
    }
    out
}

/// Cheapest pair first, skipping bundles and couriers already taken, and
/// pairs not worth forming.
fn greedy<P: Priced>(pairs: &[Vec<P>]) -> Vec<(usize, usize)> {
    let mut all: Vec<(f64, usize, usize)> = pairs
        .iter()
        .enumerate()
        .flat_map(|(b, list)| list.iter().enumerate().map(move |(i, p)| (p.cost(), b, i)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut bundle_done = vec![false; pairs.len()];
    let mut courier_done = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (cost, b, i) in all {
        if cost >= 0.0 {
            break;
        }
        let courier = pairs[b][i].courier();
        if bundle_done[b] || courier_done.contains(&courier) {
            continue;
        }
        bundle_done[b] = true;
        courier_done.insert(courier);
        out.push((b, i));
    }
    out
}

/// The column of each row in a min-cost assignment (rows ≤ columns;
/// infinite cost = forbidden, and every row must have a finite column).
fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let m = cost.first().map_or(0, Vec::len);
    // 1-based arrays as in the classic formulation; column 0 is virtual.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut row_of = vec![0usize; m + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let c = cost[i0 - 1][j - 1];
                let cur = if c.is_finite() {
                    c - u[i0] - v[j]
                } else {
                    f64::INFINITY
                };
                if cur < minv[j] {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            if j1 == 0 || !delta.is_finite() {
                break;
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col = vec![usize::MAX; n];
    for j in 1..=m {
        if row_of[j] > 0 {
            col[row_of[j] - 1] = j - 1;
        }
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(cost: &[Vec<f64>]) -> f64 {
        fn go(cost: &[Vec<f64>], row: usize, used: &mut Vec<bool>) -> f64 {
            if row == cost.len() {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..used.len() {
                if !used[j] && cost[row][j].is_finite() {
                    used[j] = true;
                    best = best.min(cost[row][j] + go(cost, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        let m = cost[0].len();
        go(cost, 0, &mut vec![false; m])
    }

    #[test]
    fn hungarian_equals_brute_force_on_small_matrices() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 1000) as f64
        };
        for n in 1..=5 {
            for m in n..=6 {
                for _ in 0..20 {
                    let cost: Vec<Vec<f64>> =
                        (0..n).map(|_| (0..m).map(|_| next()).collect()).collect();
                    let cols = hungarian(&cost);
                    let total: f64 = cols.iter().enumerate().map(|(i, &j)| cost[i][j]).sum();
                    assert_eq!(total, brute(&cost), "{cost:?}");
                }
            }
        }
    }
}
