//! Money: fees in fen.

use serde::{Deserialize, Serialize};

use super::*;

/// An amount of money in fen, 1 ≤ fen ≤ [`MAX_FEE_FEN`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "u32", into = "u32")]
#[schema(value_type = u32, example = 300)]
pub struct Fen(u32);

impl Fen {
    /// Parses a fee from a JSON number (must be an integer in range).
    pub fn parse_json(n: &serde_json::Number) -> Result<Self, ValidationError> {
        let err = || {
            ValidationError::new(format!(
                "fee_fen must be between 1 and {MAX_FEE_FEN} (an integer number of fen)"
            ))
        };
        // JSON does not tell 300 from 300.0: both are the integer 300.
        let v = n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                    .map(|f| f as u64)
            })
            .ok_or_else(err)?;
        u32::try_from(v).map_err(|_| err()).and_then(Self::try_from)
    }

    /// The amount in fen.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Fen {
    type Error = ValidationError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (1..=MAX_FEE_FEN).contains(&v) {
            Ok(Self(v))
        } else {
            Err(ValidationError::new(format!(
                "fee_fen must be between 1 and {MAX_FEE_FEN} (an integer number of fen)"
            )))
        }
    }
}

impl From<Fen> for u32 {
    fn from(f: Fen) -> Self {
        f.0
    }
}
