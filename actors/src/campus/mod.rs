//! The campus map: places with kinds and coordinates, and distances
//! between them; a campus's prices, commission and dispatch overrides; and
//! the set of campuses one deployment serves ([`Campuses`]).

mod set;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use set::Campuses;

use crate::domain::{CampusId, OrderKind};
use crate::pricing::{Pricing, Quote};

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

/// The id of a campus whose file names none.
pub const DEFAULT_ID: &str = "main";

/// 1–16 of `[a-z0-9-]`: a campus id (it shows in URLs and metrics).
pub fn is_campus_id(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a place is; it matters to people, and to the dispatcher's zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
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

/// Where x = 0, y = 0 lies on the globe (in the datum phones report).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
}

/// Mean Earth radius in metres: over a campus the flat (equirectangular)
/// projection around the origin is off by well under a metre.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// A phone position further than this from the origin is not on campus.
pub const MAX_FROM_ORIGIN_M: f64 = 5_000.0;

/// Why a phone position cannot be placed on the map.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocateError {
    /// Latitude or longitude out of range.
    #[error("latitude must be within ±90 and longitude within ±180")]
    OutOfRange,
    /// The map has no `origin`.
    #[error("the campus map has no origin, so positions must be given as place_id")]
    NoOrigin,
    /// Further than [`MAX_FROM_ORIGIN_M`] from the origin.
    #[error("the position is more than 5 km north, south, east or west of the campus")]
    TooFar,
    /// The named campus is not served.
    #[error("campus is not a campus this service serves")]
    UnknownCampus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampusFile {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    origin: Option<Origin>,
    places: Vec<Place>,
    #[serde(default)]
    pricing: Pricing,
    #[serde(default)]
    commission_percent: Option<u8>,
    #[serde(default)]
    dispatch: DispatchOverrides,
}

/// A campus's `[dispatch]` table: what differs from the service's
/// `[dispatch]` settings there (a walking campus is slower, a small one
/// bundles less).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchOverrides {
    /// Metres per minute.
    pub speed: Option<f64>,
    /// Open tasks per courier.
    pub max_tasks: Option<u32>,
    /// Click-to-door target.
    #[serde(default, with = "humantime_serde")]
    pub target: Option<Duration>,
    /// Click-to-door never to pass.
    #[serde(default, with = "humantime_serde")]
    pub max: Option<Duration>,
}

impl DispatchOverrides {
    /// Checks the table; the message names the key.
    fn validate(&self) -> Result<(), String> {
        if let Some(speed) = self.speed {
            if !(speed.is_finite() && (1.0..=2000.0).contains(&speed)) {
                return Err("dispatch.speed must be between 1 and 2000 metres a minute".into());
            }
        }
        if let Some(n) = self.max_tasks {
            if !(1..=20).contains(&n) {
                return Err("dispatch.max_tasks must be between 1 and 20".into());
            }
        }
        for (key, d) in [("target", self.target), ("max", self.max)] {
            if d.is_some_and(|d| d < Duration::from_secs(60) || d > Duration::from_secs(86_400)) {
                return Err(format!("dispatch.{key} must be between 1m and 24h"));
            }
        }
        if let (Some(target), Some(max)) = (self.target, self.max) {
            if target > max {
                return Err("dispatch.target must not be longer than dispatch.max".into());
            }
        }
        Ok(())
    }
}

/// The latitudes and longitudes taken as on campus (inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Southmost and northmost latitude.
    pub latitude: (f64, f64),
    /// Westmost and eastmost longitude.
    pub longitude: (f64, f64),
}

impl Bounds {
    /// Whether a position lies inside.
    pub fn contains(&self, latitude: f64, longitude: f64) -> bool {
        (self.latitude.0..=self.latitude.1).contains(&latitude)
            && (self.longitude.0..=self.longitude.1).contains(&longitude)
    }
}

/// The loaded map: places by id, in file order.
#[derive(Debug, Clone)]
pub struct Campus {
    id: CampusId,
    name: String,
    pricing: Pricing,
    commission_percent: Option<u8>,
    dispatch: DispatchOverrides,
    origin: Option<Origin>,
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
            message: match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    format!("line {line}: {}", e.message())
                }
                None => e.message().to_owned(),
            },
        })?;
        let invalid = |message: String| CampusError::Invalid {
            path: origin.to_owned(),
            message,
        };
        if file.places.is_empty() {
            return Err(invalid("places: it has no places".into()));
        }
        let mut by_id = HashMap::with_capacity(file.places.len());
        for (i, p) in file.places.iter().enumerate() {
            if p.id.is_empty() || p.id.len() > 64 {
                return Err(invalid(format!("places[{i}].id must have 1-64 characters")));
            }
            if !(p.x.is_finite() && p.y.is_finite())
                || p.x.abs() > MAX_FROM_ORIGIN_M
                || p.y.abs() > MAX_FROM_ORIGIN_M
            {
                return Err(invalid(format!(
                    "places[{i}] ({}): x and y must be metres within ±{MAX_FROM_ORIGIN_M} of the origin",
                    p.id
                )));
            }
            if by_id.insert(p.id.clone(), i).is_some() {
                return Err(invalid(format!(
                    "places[{i}].id: duplicate place id {}",
                    p.id
                )));
            }
        }
        if let Some(o) = file.origin {
            if !(o.latitude.abs() <= 90.0 && o.longitude.abs() <= 180.0) {
                return Err(invalid(
                    "origin: latitude must be within ±90 and longitude within ±180".into(),
                ));
            }
        }
        file.pricing.validate().map_err(invalid)?;
        file.dispatch.validate().map_err(invalid)?;
        if file.commission_percent.is_some_and(|p| p > 100) {
            return Err(invalid(
                "commission_percent must be between 0 and 100".into(),
            ));
        }
        let id = file.id.unwrap_or_else(|| DEFAULT_ID.into());
        let id = CampusId::parse(&id).map_err(|_| {
            invalid(format!(
                "id: campus id {id:?} must be 1-16 of a-z, 0-9 and -"
            ))
        })?;
        Ok(Self {
            id,
            name: file.name.unwrap_or_else(|| "campus".into()),
            pricing: file.pricing,
            commission_percent: file.commission_percent,
            dispatch: file.dispatch,
            origin: file.origin,
            places: file.places,
            by_id,
        })
    }

    /// The campus's id (`main` when the file names none).
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The campus's id, parsed.
    pub fn campus_id(&self) -> &CampusId {
        &self.id
    }

    /// Where x = 0, y = 0 lies on the globe, when the map says.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// The campus's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its prices.
    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// The platform's share of a completed order here, when the campus
    /// sets its own (else `money.commission_percent`).
    pub fn commission_percent(&self) -> Option<u8> {
        self.commission_percent
    }

    /// What differs from the service's `[dispatch]` settings here.
    pub fn dispatch(&self) -> &DispatchOverrides {
        &self.dispatch
    }

    /// The quote of an errand between two known places.
    pub fn quote(&self, kind: OrderKind, pickup: &str, dropoff: &str) -> Option<Quote> {
        let route_m = self.distance(pickup, dropoff)?;
        Some(self.pricing.quote(kind, route_m))
    }

    /// A place by id.
    pub fn place(&self, id: &str) -> Option<&Place> {
        self.by_id.get(id).map(|&i| &self.places[i])
    }

    /// All places, in file order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// The positions taken as on campus: at most [`MAX_FROM_ORIGIN_M`]
    /// north or south and east or west of the origin. A box, not a circle,
    /// so that the API document can state it exactly (JSON Schema bounds
    /// each number alone); None without an origin.
    pub fn bounds(&self) -> Option<Bounds> {
        let o = self.origin?;
        let dlat = (MAX_FROM_ORIGIN_M / EARTH_RADIUS_M).to_degrees();
        let dlng =
            (MAX_FROM_ORIGIN_M / (EARTH_RADIUS_M * o.latitude.to_radians().cos())).to_degrees();
        Some(Bounds {
            latitude: (o.latitude - dlat, o.latitude + dlat),
            longitude: (o.longitude - dlng, o.longitude + dlng),
        })
    }

    /// Campus metres (x east, y north of the origin) of a phone position.
    pub fn locate(&self, latitude: f64, longitude: f64) -> Result<(f64, f64), LocateError> {
        if !(latitude.is_finite() && longitude.is_finite())
            || latitude.abs() > 90.0
            || longitude.abs() > 180.0
        {
            return Err(LocateError::OutOfRange);
        }
        let (o, bounds) = self
            .origin
            .zip(self.bounds())
            .ok_or(LocateError::NoOrigin)?;
        if !bounds.contains(latitude, longitude) {
            return Err(LocateError::TooFar);
        }
        let x =
            (longitude - o.longitude).to_radians() * EARTH_RADIUS_M * o.latitude.to_radians().cos();
        let y = (latitude - o.latitude).to_radians() * EARTH_RADIUS_M;
        Ok((x, y))
    }

    /// The phone position of campus metres (the inverse of [`Campus::locate`]).
    pub fn position_of(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let o = self.origin?;
        let latitude = o.latitude + (y / EARTH_RADIUS_M).to_degrees();
        let longitude =
            o.longitude + (x / (EARTH_RADIUS_M * o.latitude.to_radians().cos())).to_degrees();
        Some((latitude, longitude))
    }

    /// The place nearest to campus metres (x, y).
    pub fn nearest(&self, x: f64, y: f64) -> &Place {
        self.places
            .iter()
            .min_by(|a, b| {
                (a.x - x)
                    .hypot(a.y - y)
                    .total_cmp(&(b.x - x).hypot(b.y - y))
            })
            .unwrap_or(&self.places[0])
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
    fn phone_positions_land_on_the_nearest_place() {
        let map = "origin = { latitude = 40.0, longitude = 116.3 }\n[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='b'\nname='B'\nkind='gate'\nx=800\ny=600\n";
        let c = Campus::parse(map, "t").expect("valid map");
        let (lat, lon) = c.position_of(790.0, 590.0).expect("origin");
        let (x, y) = c.locate(lat, lon).expect("on campus");
        assert!((x - 790.0).abs() < 0.01 && (y - 590.0).abs() < 0.01);
        assert_eq!(c.nearest(x, y).id, "b");
        // 0.001° of latitude is about 111 m north.
        let (_, y) = c.locate(40.001, 116.3).expect("on campus");
        assert!((y - 111.2).abs() < 0.5, "{y}");
        assert_eq!(c.locate(40.1, 116.3), Err(LocateError::TooFar));
        assert_eq!(c.locate(91.0, 0.0), Err(LocateError::OutOfRange));
        let no_origin = Campus::parse("[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n", "t")
            .expect("map");
        assert_eq!(no_origin.locate(40.0, 116.3), Err(LocateError::NoOrigin));
    }

    #[test]
    fn distance_is_euclidean() {
        let ok = "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='b'\nname='B'\nkind='gate'\nx=3\ny=4\n";
        let c = Campus::parse(ok, "t").expect("valid map");
        assert_eq!(c.distance("a", "b"), Some(5.0));
    }

    #[test]
    fn pricing_and_id_come_from_the_file_or_their_defaults() {
        let places = "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='b'\nname='B'\nkind='gate'\nx=1500\ny=0\n";
        let plain = Campus::parse(places, "t").expect("valid map");
        assert_eq!(plain.id(), "main");
        assert_eq!(plain.pricing(), &Pricing::default());
        let priced =
            format!("id = 'east-1'\n[pricing]\nexpress_base_fen = 250\nmin_fen = 100\n{places}");
        let c = Campus::parse(&priced, "t").expect("valid map");
        assert_eq!(c.id(), "east-1");
        let quote = c.quote(OrderKind::Express, "a", "b").expect("known places");
        assert_eq!((quote.fee_fen, quote.min_fen), (350, 100));
        assert_eq!(c.quote(OrderKind::Express, "a", "nowhere"), None);
        for bad in [
            format!("[pricing]\nmin_fen = 0\n{places}"),
            format!("id = 'East'\n{places}"),
        ] {
            assert!(matches!(
                Campus::parse(&bad, "t"),
                Err(CampusError::Invalid { .. })
            ));
        }
        let unknown_key = format!("[pricing]\nbase = 1\n{places}");
        assert!(matches!(
            Campus::parse(&unknown_key, "t"),
            Err(CampusError::Parse { .. })
        ));
    }
}
