//! A campus's prices: the suggested fee of an errand from its kind and
//! route length, and the floor below which nobody may post one. Pure: the
//! route length comes from the campus map.

use serde::{Deserialize, Serialize};

use crate::domain::{OrderKind, MAX_FEE_FEN};

/// Metres in a kilometre, the unit the per-distance price counts in.
const KM: f64 = 1000.0;

/// A campus's `[pricing]` table; every key may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pricing {
    /// Suggested fee of an express pickup whose route is at most 1 km.
    pub express_base_fen: u32,
    /// Suggested fee of a takeout delivery whose route is at most 1 km.
    pub takeout_base_fen: u32,
    /// Added per started kilometre of the route beyond the first.
    pub per_km_fen: u32,
    /// The lowest fee an order may carry.
    pub min_fen: u32,
}

impl Default for Pricing {
    /// What campus errand boards commonly ask: ¥2 a parcel, ¥3 a takeout,
    /// ¥1 per further kilometre; any fee of at least 1 fen is accepted.
    fn default() -> Self {
        Self {
            express_base_fen: 200,
            takeout_base_fen: 300,
            per_km_fen: 100,
            min_fen: 1,
        }
    }
}

/// One line of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriceItem {
    /// What it is for: `base` or `distance`.
    pub item: String,
    /// Its amount in fen.
    pub fen: u32,
}

/// The suggested fee of one errand, and the campus's floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Quote {
    /// The suggested fee: the breakdown's sum, raised to the floor and
    /// capped at the largest fee an order may carry.
    pub fee_fen: u32,
    /// The lowest fee an order may carry on this campus.
    pub min_fen: u32,
    /// How the fee is made up.
    pub breakdown: Vec<PriceItem>,
}

impl Pricing {
    /// Checks the table; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let keys = [
            ("express_base_fen", self.express_base_fen),
            ("takeout_base_fen", self.takeout_base_fen),
            ("per_km_fen", self.per_km_fen),
        ];
        if let Some((key, _)) = keys.iter().find(|(_, v)| *v > MAX_FEE_FEN) {
            return Err(format!("pricing.{key} must be at most {MAX_FEE_FEN}"));
        }
        if !(1..=MAX_FEE_FEN).contains(&self.min_fen) {
            return Err(format!(
                "pricing.min_fen must be between 1 and {MAX_FEE_FEN}"
            ));
        }
        Ok(())
    }

    /// The quote of an errand of `kind` whose route is `route_m` metres.
    pub fn quote(&self, kind: OrderKind, route_m: f64) -> Quote {
        let base = match kind {
            OrderKind::Express => self.express_base_fen,
            OrderKind::Takeout => self.takeout_base_fen,
        };
        let mut breakdown = vec![PriceItem {
            item: "base".into(),
            fen: base,
        }];
        let extra_km = extra_kilometres(route_m);
        if extra_km > 0 {
            breakdown.push(PriceItem {
                item: "distance".into(),
                fen: self.per_km_fen.saturating_mul(extra_km),
            });
        }
        let sum = breakdown
            .iter()
            .fold(0u32, |total, line| total.saturating_add(line.fen));
        Quote {
            fee_fen: sum.max(self.min_fen).min(MAX_FEE_FEN),
            min_fen: self.min_fen,
            breakdown,
        }
    }
}

/// Started kilometres beyond the first: 0 up to 1 000 m, 1 up to 2 000 m…
fn extra_kilometres(route_m: f64) -> u32 {
    if !route_m.is_finite() || route_m <= KM {
        return 0;
    }
    // A campus route is a few km; the cast cannot overflow in practice and
    // saturates if it ever would.
    ((route_m / KM).ceil() as u32).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_kilometre_is_in_the_base_and_each_started_one_after_costs_more() {
        let p = Pricing::default();
        let fee = |kind, m| p.quote(kind, m).fee_fen;
        assert_eq!(fee(OrderKind::Express, 0.0), 200);
        assert_eq!(fee(OrderKind::Express, 1000.0), 200);
        assert_eq!(fee(OrderKind::Express, 1000.1), 300);
        assert_eq!(fee(OrderKind::Takeout, 2000.0), 400);
        assert_eq!(fee(OrderKind::Takeout, 2500.0), 500);
        let q = p.quote(OrderKind::Takeout, 2500.0);
        assert_eq!(
            q.breakdown,
            vec![
                PriceItem {
                    item: "base".into(),
                    fen: 300
                },
                PriceItem {
                    item: "distance".into(),
                    fen: 200
                },
            ]
        );
    }

    #[test]
    fn the_suggestion_respects_the_floor_and_the_cap() {
        let p = Pricing {
            express_base_fen: 50,
            takeout_base_fen: 0,
            per_km_fen: MAX_FEE_FEN,
            min_fen: 150,
        };
        assert_eq!(p.quote(OrderKind::Express, 10.0).fee_fen, 150);
        assert_eq!(p.quote(OrderKind::Takeout, 10.0).min_fen, 150);
        assert_eq!(p.quote(OrderKind::Takeout, 9000.0).fee_fen, MAX_FEE_FEN);
        assert_eq!(p.quote(OrderKind::Takeout, f64::NAN).fee_fen, 150);
    }

    #[test]
    fn a_bad_table_is_named() {
        let zero_floor = Pricing {
            min_fen: 0,
            ..Pricing::default()
        };
        assert!(zero_floor.validate().unwrap_err().contains("min_fen"));
        let huge = Pricing {
            per_km_fen: MAX_FEE_FEN + 1,
            ..Pricing::default()
        };
        assert!(huge.validate().unwrap_err().contains("per_km_fen"));
        assert_eq!(Pricing::default().validate(), Ok(()));
    }
}
