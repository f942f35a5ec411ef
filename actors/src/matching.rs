//! The assignment of waiting orders to free courier slots: as many orders
//! as possible, then the least total pickup distance, waiting orders first.
//!
//! Positions are campus places, so orders at one pickup place (and of one
//! urgency) are interchangeable, and so are the free slots of couriers
//! standing at one place. The problem therefore shrinks to a transportation
//! problem between at most P courier places and 2·P pickup classes, solved
//! exactly by min-cost max-flow — the work per round grows with the number
//! of places, not with orders × couriers. Concrete orders (longest-waiting
//! first) and couriers are then drawn from each flow; a courier is never
//! handed their own order.

use std::collections::BTreeMap;

/// Cost bonus (in cm) an urgent order gets: more than any campus distance,
/// so an order waiting past the urgency threshold is served before any
/// fresh one, whatever the distance.
pub const URGENT_BONUS_CM: i64 = 10_000_000;

/// An order waiting for a courier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingOrder<I, U> {
    /// Its id.
    pub id: I,
    /// Index of its pickup place.
    pub place: usize,
    /// Waited past the urgency threshold.
    pub urgent: bool,
    /// How long it has waited (larger first among equals).
    pub waited_ms: u64,
    /// The customer (never assigned to themselves).
    pub customer: U,
}

/// A courier with free capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeCourier<U> {
    /// The courier.
    pub id: U,
    /// Index of the place they stand at.
    pub place: usize,
    /// Tasks they may still take.
    pub free: u32,
}

/// Distances between places, in centimetres.
#[derive(Debug, Clone)]
pub struct Distances {
    n: usize,
    cm: Vec<i64>,
}

impl Distances {
    /// From a function over place indices (metres).
    pub fn new(n: usize, metres: impl Fn(usize, usize) -> f64) -> Self {
        let mut cm = vec![0; n * n];
        for a in 0..n {
            for b in 0..n {
                cm[a * n + b] = (metres(a, b) * 100.0).round() as i64;
            }
        }
        Self { n, cm }
    }

    /// Distance in cm.
    pub fn cm(&self, a: usize, b: usize) -> i64 {
        self.cm[a * self.n + b]
    }

    /// How many places.
    pub fn places(&self) -> usize {
        self.n
    }
}

/// Assigns orders to couriers: returns (order index, courier index) pairs.
pub fn assign<I, U: PartialEq>(
    orders: &[WaitingOrder<I, U>],
    couriers: &[FreeCourier<U>],
    dist: &Distances,
) -> Vec<(usize, usize)> {
    // Order classes: (place, urgent) → order indices, longest-waiting first.
    let mut classes: BTreeMap<(usize, bool), Vec<usize>> = BTreeMap::new();
    for (i, o) in orders.iter().enumerate() {
        classes.entry((o.place, o.urgent)).or_default().push(i);
    }
    for list in classes.values_mut() {
        list.sort_by(|a, b| orders[*b].waited_ms.cmp(&orders[*a].waited_ms));
    }
    // Courier places → courier indices with capacity.
    let mut stands: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, c) in couriers.iter().enumerate() {
        if c.free > 0 {
            stands.entry(c.place).or_default().push(i);
        }
    }
    let class_keys: Vec<(usize, bool)> = classes.keys().copied().collect();
    let stand_keys: Vec<usize> = stands.keys().copied().collect();
    let supply: Vec<i64> = stand_keys
        .iter()
        .map(|p| stands[p].iter().map(|&c| i64::from(couriers[c].free)).sum())
        .collect();
    let demand: Vec<i64> = class_keys.iter().map(|k| classes[k].len() as i64).collect();
    let flows = transport(&supply, &demand, |s, c| {
        let (place, urgent) = class_keys[c];
        dist.cm(stand_keys[s], place) - if urgent { URGENT_BONUS_CM } else { 0 }
    });

    let mut free: Vec<u32> = couriers.iter().map(|c| c.free).collect();
    let mut taken = vec![false; orders.len()];
    let mut pairs = Vec::new();
    for ((s, c), amount) in flows {
        let class = &classes[&class_keys[c]];
        let stand = &stands[&stand_keys[s]];
        for _ in 0..amount {
            // The longest-waiting order of the class that some courier here
            // with room may take (a courier never takes their own order;
            // skipping it keeps it for another courier).
            let pick = class.iter().copied().filter(|&o| !taken[o]).find_map(|o| {
                stand
                    .iter()
                    .copied()
                    .find(|&k| free[k] > 0 && couriers[k].id != orders[o].customer)
                    .map(|k| (o, k))
            });
            let Some((o, k)) = pick else { break };
            taken[o] = true;
            free[k] -= 1;
            pairs.push((o, k));
        }
    }
    pairs
}

/// Min-cost max-flow from supplies to demands over a complete bipartite
/// graph; returns the flow on each (supply, demand) edge that carries one.
fn transport(
    supply: &[i64],
    demand: &[i64],
    cost: impl Fn(usize, usize) -> i64,
) -> Vec<((usize, usize), i64)> {
    let (ns, nd) = (supply.len(), demand.len());
    if ns == 0 || nd == 0 {
        return Vec::new();
    }
    // Nodes: 0 = source, 1..=ns supplies, ns+1..=ns+nd demands, last = sink.
    let n = ns + nd + 2;
    let (source, sink) = (0, n - 1);
    let mut graph = FlowGraph::new(n);
    for (s, &cap) in supply.iter().enumerate() {
        graph.add_edge(source, 1 + s, cap, 0);
    }
    let mut middle = Vec::with_capacity(ns * nd);
    for s in 0..ns {
        for d in 0..nd {
            let e = graph.add_edge(1 + s, 1 + ns + d, i64::MAX / 4, cost(s, d));
            middle.push(((s, d), e));
        }
    }
    for (d, &cap) in demand.iter().enumerate() {
        graph.add_edge(1 + ns + d, sink, cap, 0);
    }
    graph.min_cost_max_flow(source, sink);
    middle
        .into_iter()
        .filter_map(|(pair, e)| {
            let f = graph.flow(e);
            (f > 0).then_some((pair, f))
        })
        .collect()
}

struct Edge {
    to: usize,
    cap: i64,
    cost: i64,
}

/// A residual graph for successive shortest paths (Bellman-Ford, since
/// urgency bonuses make costs negative; the graph has at most a few
/// thousand edges).
struct FlowGraph {
    edges: Vec<Edge>,
    adj: Vec<Vec<usize>>,
    original: Vec<i64>,
}

impl FlowGraph {
    fn new(n: usize) -> Self {
        Self {
            edges: Vec::new(),
            adj: vec![Vec::new(); n],
            original: Vec::new(),
        }
    }

    fn add_edge(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> usize {
        let id = self.edges.len();
        self.edges.push(Edge { to, cap, cost });
        self.adj[from].push(id);
        self.edges.push(Edge {
            to: from,
            cap: 0,
            cost: -cost,
        });
        self.adj[to].push(id + 1);
        self.original.push(cap);
        self.original.push(0);
        id
    }

    fn flow(&self, e: usize) -> i64 {
        self.original[e] - self.edges[e].cap
    }

    fn min_cost_max_flow(&mut self, source: usize, sink: usize) {
        let n = self.adj.len();
        loop {
            let mut dist = vec![i64::MAX; n];
            let mut prev: Vec<Option<usize>> = vec![None; n];
            let mut queued = vec![false; n];
            let mut queue = std::collections::VecDeque::new();
            dist[source] = 0;
            queue.push_back(source);
            queued[source] = true;
            while let Some(u) = queue.pop_front() {
                queued[u] = false;
                for &e in &self.adj[u] {
                    let edge = &self.edges[e];
                    if edge.cap > 0 && dist[u] + edge.cost < dist[edge.to] {
                        dist[edge.to] = dist[u] + edge.cost;
                        prev[edge.to] = Some(e);
                        if !queued[edge.to] {
                            queued[edge.to] = true;
                            queue.push_back(edge.to);
                        }
                    }
                }
            }
            if dist[sink] == i64::MAX {
                return;
            }
            // Bottleneck along the path, then push it.
            let mut push = i64::MAX;
            let mut v = sink;
            while let Some(e) = prev[v] {
                push = push.min(self.edges[e].cap);
                v = self.edges[e ^ 1].to;
            }
            let mut v = sink;
            while let Some(e) = prev[v] {
                self.edges[e].cap -= push;
                self.edges[e ^ 1].cap += push;
                v = self.edges[e ^ 1].to;
            }
        }
    }
}

/// The greedy baseline: oldest order first, to the nearest courier with room.
pub fn assign_greedy<I, U: PartialEq>(
    orders: &[WaitingOrder<I, U>],
    couriers: &[FreeCourier<U>],
    dist: &Distances,
) -> Vec<(usize, usize)> {
    let mut free: Vec<u32> = couriers.iter().map(|c| c.free).collect();
    let mut by_age: Vec<usize> = (0..orders.len()).collect();
    by_age.sort_by(|a, b| orders[*b].waited_ms.cmp(&orders[*a].waited_ms));
    let mut pairs = Vec::new();
    for o in by_age {
        let best = (0..couriers.len())
            .filter(|&k| free[k] > 0 && couriers[k].id != orders[o].customer)
            .min_by_key(|&k| dist.cm(couriers[k].place, orders[o].place));
        if let Some(k) = best {
            free[k] -= 1;
            pairs.push((o, k));
        }
    }
    pairs
}

/// Total pickup distance of an assignment, in metres.
pub fn total_metres<I, U>(
    pairs: &[(usize, usize)],
    orders: &[WaitingOrder<I, U>],
    couriers: &[FreeCourier<U>],
    dist: &Distances,
) -> f64 {
    pairs
        .iter()
        .map(|&(o, k)| dist.cm(couriers[k].place, orders[o].place) as f64 / 100.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    /// Exact answer by dynamic programming over couriers' remaining
    /// capacities: (most orders assigned, then least distance).
    fn brute_force(
        orders: &[WaitingOrder<usize, u32>],
        couriers: &[FreeCourier<u32>],
        dist: &Distances,
    ) -> (usize, i64) {
        fn go(
            i: usize,
            free: &mut Vec<u32>,
            orders: &[WaitingOrder<usize, u32>],
            couriers: &[FreeCourier<u32>],
            dist: &Distances,
            memo: &mut HashMap<(usize, Vec<u32>), (usize, i64)>,
        ) -> (usize, i64) {
            if i == orders.len() {
                return (0, 0);
            }
            if let Some(v) = memo.get(&(i, free.clone())) {
                return *v;
            }
            let mut best = go(i + 1, free, orders, couriers, dist, memo);
            for k in 0..couriers.len() {
                if free[k] == 0 || couriers[k].id == orders[i].customer {
                    continue;
                }
                free[k] -= 1;
                let (n, d) = go(i + 1, free, orders, couriers, dist, memo);
                free[k] += 1;
                let cand = (n + 1, d + dist.cm(couriers[k].place, orders[i].place));
                if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1) {
                    best = cand;
                }
            }
            memo.insert((i, free.clone()), best);
            best
        }
        let mut free: Vec<u32> = couriers.iter().map(|c| c.free).collect();
        go(0, &mut free, orders, couriers, dist, &mut HashMap::new())
    }

    fn random_instance(
        rng: &mut impl Rng,
    ) -> (
        Vec<WaitingOrder<usize, u32>>,
        Vec<FreeCourier<u32>>,
        Distances,
    ) {
        let places = rng.gen_range(2..7);
        let coords: Vec<(f64, f64)> = (0..places)
            .map(|_| (rng.gen_range(0.0..1000.0), rng.gen_range(0.0..1000.0)))
            .collect();
        let dist = Distances::new(places, |a, b| {
            (coords[a].0 - coords[b].0).hypot(coords[a].1 - coords[b].1)
        });
        let orders = (0..rng.gen_range(0..=8))
            .map(|i| WaitingOrder {
                id: i,
                place: rng.gen_range(0..places),
                urgent: false,
                waited_ms: rng.gen_range(0..1000),
                customer: 1000 + i as u32,
            })
            .collect();
        let couriers = (0..rng.gen_range(0..=8))
            .map(|i| FreeCourier {
                id: i as u32,
                place: rng.gen_range(0..places),
                free: rng.gen_range(1..=3),
            })
            .collect();
        (orders, couriers, dist)
    }

    #[test]
    fn equals_the_brute_force_optimum_on_random_small_instances() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x1a57_0001);
        for case in 0..500 {
            let (orders, couriers, dist) = random_instance(&mut rng);
            let pairs = assign(&orders, &couriers, &dist);
            let got = (
                pairs.len(),
                pairs
                    .iter()
                    .map(|&(o, k)| dist.cm(couriers[k].place, orders[o].place))
                    .sum::<i64>(),
            );
            assert_eq!(
                got,
                brute_force(&orders, &couriers, &dist),
                "case {case}: {orders:?} {couriers:?}"
            );
            let mut used = vec![0u32; couriers.len()];
            for &(_, k) in &pairs {
                used[k] += 1;
            }
            assert!(
                used.iter().zip(&couriers).all(|(u, c)| *u <= c.free),
                "capacity exceeded"
            );
        }
    }

    #[test]
    fn never_assigns_a_courier_their_own_order_and_serves_urgent_first() {
        let dist = Distances::new(2, |a, b| if a == b { 0.0 } else { 500.0 });
        let orders = vec![
            WaitingOrder {
                id: "near-fresh",
                place: 0,
                urgent: false,
                waited_ms: 10,
                customer: "x",
            },
            WaitingOrder {
                id: "far-urgent",
                place: 1,
                urgent: true,
                waited_ms: 900_000,
                customer: "y",
            },
            WaitingOrder {
                id: "own",
                place: 0,
                urgent: false,
                waited_ms: 20,
                customer: "c",
            },
        ];
        let couriers = vec![FreeCourier {
            id: "c",
            place: 0,
            free: 1,
        }];
        let pairs = assign(&orders, &couriers, &dist);
        assert_eq!(
            pairs,
            vec![(1, 0)],
            "the urgent order wins despite the distance"
        );
        let solo = vec![orders[2].clone()];
        assert!(
            assign(&solo, &couriers, &dist).is_empty(),
            "never their own order"
        );
    }
}
