//! The campus map: places with kinds and coordinates, and distances between them.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// What is wrong with a campus map file.
#[derive(Debug, thiserror::Error)]
pub enum CampusError {
    /// The file could not be read.
    #[error("cannot read campus map {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not have the expected shape.
    #[error("campus map {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// A rule about places is broken (duplicate id, unknown kind, ...).
    #[error("campus map {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Which rule.
        message: String,
    },
}

/// What a place is; it matters to people, and to the dispatcher's zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// An express (parcel) station.
    Station,
    /// A campus gate, where takeout riders hand over.
    Gate,
    /// A dormitory.
    Dorm,
    /// A canteen.
    Canteen,
    /// A teaching or office building.
    Building,
}

/// One place on the map.
#[derive(Debug, Clone, Deserialize)]
pub struct Place {
    /// Its id, used by clients as `place_id`.
    pub id: String,
    /// A human name.
    pub name: String,
    /// What it is.
    pub kind: PlaceKind,
    /// East coordinate in metres.
    pub x: f64,
    /// North coordinate in metres.
    pub y: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampusFile {
    #[serde(default)]
    name: Option<String>,
    places: Vec<Place>,
}

/// The loaded map: places by id, in file order.
#[derive(Debug, Clone)]
pub struct Campus {
    name: String,
    places: Vec<Place>,
    by_id: HashMap<String, usize>,
}

impl Campus {
    /// Reads and validates a campus map file.
    pub fn load(path: &Path) -> Result<Self, CampusError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CampusError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses map text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CampusError> {
        let file: CampusFile = toml::from_str(text).map_err(|e| CampusError::Parse {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        let invalid = |message: String| CampusError::Invalid {
            path: origin.to_owned(),
            message,
        };
        if file.places.is_empty() {
            return Err(invalid("it has no places".into()));
        }
        let mut by_id = HashMap::with_capacity(file.places.len());
        for (i, p) in file.places.iter().enumerate() {
            if p.id.is_empty() || p.id.len() > 64 {
                return Err(invalid(format!(
                    "place #{} has an empty or over-long id",
                    i + 1
                )));
            }
            if !p.x.is_finite() || !p.y.is_finite() {
                return Err(invalid(format!(
                    "place {} has a non-finite coordinate",
                    p.id
                )));
            }
            if by_id.insert(p.id.clone(), i).is_some() {
                return Err(invalid(format!("duplicate place id {}", p.id)));
            }
        }
        Ok(Self {
            name: file.name.unwrap_or_else(|| "campus".into()),
            places: file.places,
            by_id,
        })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A place by id.
    pub fn place(&self, id: &str) -> Option<&Place> {
        self.by_id.get(id).map(|&i| &self.places[i])
    }

    /// All places, in file order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// Straight-line distance in metres between two known places.
    pub fn distance(&self, a: &str, b: &str) -> Option<f64> {
        let (pa, pb) = (self.place(a)?, self.place(b)?);
        Some((pa.x - pb.x).hypot(pa.y - pb.y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_and_unknown_kinds() {
        let dup = "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='a'\nname='B'\nkind='gate'\nx=1\ny=1\n";
        assert!(matches!(
            Campus::parse(dup, "t"),
            Err(CampusError::Invalid { .. })
        ));
        let kind = "[[places]]\nid='a'\nname='A'\nkind='moon'\nx=0\ny=0\n";
        assert!(matches!(
            Campus::parse(kind, "t"),
            Err(CampusError::Parse { .. })
        ));
    }

    #[test]
    fn distance_is_euclidean() {
        let ok = "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='b'\nname='B'\nkind='gate'\nx=3\ny=4\n";
        let c = Campus::parse(ok, "t").expect("valid map");
        assert_eq!(c.distance("a", "b"), Some(5.0));
    }
}
