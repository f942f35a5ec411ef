//! Money: fees and tips in fen.

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
        json_u32(n).ok_or_else(err).and_then(Self::try_from)
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

/// A JSON number as a u32, when it is one: JSON does not tell 300 from
/// 300.0, both are the integer 300.
pub fn json_u32(n: &serde_json::Number) -> Option<u32> {
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                .map(|f| f as u64)
        })
        .and_then(|v| u32::try_from(v).ok())
}

/// A tip in fen, 0 ≤ tip ≤ [`MAX_TIP_FEN`]: paid with the fee, and goes to
/// the courier whole.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "u32", into = "u32")]
#[schema(value_type = u32, example = 0)]
pub struct Tip(u32);

impl Tip {
    /// Parses a tip from a JSON number (an integer in range).
    pub fn parse_json(n: &serde_json::Number) -> Result<Self, ValidationError> {
        json_u32(n)
            .ok_or_else(Self::out_of_range)
            .and_then(Self::try_from)
    }

    /// The amount in fen.
    pub fn get(self) -> u32 {
        self.0
    }

    fn out_of_range() -> ValidationError {
        ValidationError::new(format!(
            "tip_fen must be between 0 and {MAX_TIP_FEN} (an integer number of fen)"
        ))
    }
}

impl TryFrom<u32> for Tip {
    type Error = ValidationError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if v <= MAX_TIP_FEN {
            Ok(Self(v))
        } else {
            Err(Self::out_of_range())
        }
    }
}

impl From<Tip> for u32 {
    fn from(t: Tip) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).expect("number")
    }

    #[test]
    fn tips_are_whole_fen_from_zero_to_the_cap() {
        assert_eq!(Tip::parse_json(&number("0")).map(Tip::get), Ok(0));
        assert_eq!(Tip::parse_json(&number("500.0")).map(Tip::get), Ok(500));
        assert_eq!(Tip::parse_json(&number("10000")).map(Tip::get), Ok(10_000));
        for bad in ["10001", "-1", "1.5", "4294967296"] {
            let err = Tip::parse_json(&number(bad)).expect_err(bad);
            assert!(err.to_string().contains("tip_fen"), "{bad}: {err}");
        }
    }
}
