//! The campuses one deployment serves. `campus.map` names one campus file
//! (a deployment of one campus, as before campuses) or a directory of
//! them, read in file-name order; the first is the default campus, the one
//! orders written before campuses belong to.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{Campus, CampusError, LocateError};
use crate::domain::{CampusId, ValidationError};

/// Every campus served, in map order.
#[derive(Debug, Clone)]
pub struct Campuses {
    list: Vec<Arc<Campus>>,
    by_id: HashMap<String, usize>,
    /// Which campuses (by index) have a place with this id.
    places: HashMap<String, Vec<usize>>,
}

impl Campuses {
    /// Reads `path`: one campus file, or every `*.toml` file of a
    /// directory in name order; campus ids must be unique.
    pub fn load(path: &Path) -> Result<Self, CampusError> {
        let shown = path.display().to_string();
        let is_dir = std::fs::metadata(path)
            .map_err(|source| CampusError::Read {
                path: shown.clone(),
                source,
            })?
            .is_dir();
        if !is_dir {
            return Ok(Self::one(Campus::load(path)?));
        }
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(|source| CampusError::Read {
                path: shown.clone(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(CampusError::Invalid {
                path: shown,
                message: "the directory holds no *.toml campus file".into(),
            });
        }
        let mut named: Vec<(String, Campus)> = Vec::with_capacity(files.len());
        for file in files {
            let campus = Campus::load(&file)?;
            let file = file.display().to_string();
            if let Some((first, _)) = named.iter().find(|(_, c)| c.id() == campus.id()) {
                return Err(CampusError::Invalid {
                    path: file,
                    message: format!("id: campus id {:?} is also the id in {first}", campus.id()),
                });
            }
            named.push((file, campus));
        }
        Ok(Self::of_list(named.into_iter().map(|(_, c)| c).collect()))
    }

    /// A deployment of one campus.
    pub fn one(campus: Campus) -> Self {
        Self::of_list(vec![campus])
    }

    /// Campuses whose ids are already known to be unique.
    fn of_list(list: Vec<Campus>) -> Self {
        let list: Vec<Arc<Campus>> = list.into_iter().map(Arc::new).collect();
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id().to_owned(), i))
            .collect();
        let mut places: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, campus) in list.iter().enumerate() {
            for place in campus.places() {
                places.entry(place.id.clone()).or_default().push(i);
            }
        }
        Self {
            list,
            by_id,
            places,
        }
    }

    /// The default campus: the first of the map.
    pub fn first(&self) -> &Arc<Campus> {
        &self.list[0]
    }

    /// A campus by id.
    pub fn get(&self, id: &str) -> Option<&Arc<Campus>> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// Checks that every id names a campus served here; the error names
    /// the first that does not and the ids that are served.
    pub fn check_served(&self, ids: &[String]) -> Result<(), String> {
        match ids.iter().find(|id| self.get(id).is_none()) {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "campus {unknown:?} is not served here (served: {})",
                self.list
                    .iter()
                    .map(|c| c.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The campus of a stored order or presence: None is the default one
    /// (written before campuses); a campus since removed from the map is None.
    pub fn of(&self, id: Option<&CampusId>) -> Option<&Arc<Campus>> {
        match id {
            None => Some(self.first()),
            Some(id) => self.get(id.as_str()),
        }
    }

    /// Every campus, in map order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Campus>> {
        self.list.iter()
    }

    /// How many campuses there are (at least one).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never true: a map has at least one campus.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first campus with a place of this id.
    pub fn with_place(&self, place: &str) -> Option<&Arc<Campus>> {
        let first = *self.places.get(place)?.first()?;
        Some(&self.list[first])
    }

    /// The campus an errand or a courier is in, from the `campus` a client
    /// named (may be left out unless a place id is in several campuses)
    /// and `places` as (field, place id): every place must be in that one
    /// campus.
    pub fn resolve(
        &self,
        campus: Option<&str>,
        places: &[(&str, &str)],
    ) -> Result<&Arc<Campus>, ValidationError> {
        let chosen = match campus {
            Some(id) => self.get(id).ok_or_else(|| {
                ValidationError::new("campus is not a campus this service serves")
            })?,
            None => self.implied(places)?,
        };
        for (field, place) in places {
            if chosen.place(place).is_some() {
                continue;
            }
            let elsewhere = self.places.contains_key(*place);
            return Err(ValidationError::new(if elsewhere {
                format!(
                    "{field} is not on campus {}: pickup and drop-off must be in one campus",
                    chosen.id()
                )
            } else {
                format!("{field} is not a place on the campus map")
            }));
        }
        Ok(chosen)
    }

    /// The one campus the first place is in.
    fn implied(&self, places: &[(&str, &str)]) -> Result<&Arc<Campus>, ValidationError> {
        let Some((field, place)) = places.first() else {
            return Ok(self.first());
        };
        match self.places.get(*place).map(Vec::as_slice) {
            None | Some([]) => Err(ValidationError::new(format!(
                "{field} is not a place on the campus map"
            ))),
            Some([one]) => Ok(&self.list[*one]),
            Some(many) => {
                let ids: Vec<&str> = many.iter().map(|&i| self.list[i].id()).collect();
                Err(ValidationError::new(format!(
                    "campus is required: {field} is a place on several campuses ({})",
                    ids.join(", ")
                )))
            }
        }
    }

    /// The campus of a phone position and its campus metres: the named
    /// campus, or else the one whose origin is nearest within 5 km.
    pub fn locate(
        &self,
        campus: Option<&str>,
        latitude: f64,
        longitude: f64,
    ) -> Result<(&Arc<Campus>, f64, f64), LocateError> {
        if let Some(id) = campus {
            let c = self.get(id).ok_or(LocateError::UnknownCampus)?;
            let (x, y) = c.locate(latitude, longitude)?;
            return Ok((c, x, y));
        }
        let mut best: Option<(&Arc<Campus>, f64, f64)> = None;
        let mut last_error = LocateError::NoOrigin;
        for c in &self.list {
            match c.locate(latitude, longitude) {
                Ok((x, y)) if best.is_none_or(|(_, bx, by)| x.hypot(y) < bx.hypot(by)) => {
                    best = Some((c, x, y));
                }
                Ok(_) => {}
                // Out of range is out of range on every campus.
                Err(e @ LocateError::OutOfRange) => return Err(e),
                Err(LocateError::TooFar) => last_error = LocateError::TooFar,
                Err(_) => {}
            }
        }
        best.ok_or(last_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campus(id: &str, origin: (f64, f64), places: &[&str]) -> Campus {
        let mut text = format!(
            "id = '{id}'\norigin = {{ latitude = {}, longitude = {} }}\n",
            origin.0, origin.1
        );
        for (i, p) in places.iter().enumerate() {
            text.push_str(&format!(
                "[[places]]\nid='{p}'\nname='{p}'\nkind='dorm'\nx={}\ny=0\n",
                i * 300
            ));
        }
        Campus::parse(&text, id).expect("valid campus")
    }

    fn two() -> Campuses {
        Campuses::of_list(vec![
            campus("main", (40.0, 116.3), &["a", "b", "gate"]),
            campus("east", (40.0, 116.4), &["c", "d", "gate"]),
        ])
    }

    #[test]
    fn places_name_their_campus_unless_they_are_on_several() {
        let all = two();
        let pick = |campus, places: &[(&str, &str)]| {
            all.resolve(campus, places)
                .map(|c| c.id().to_owned())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            pick(None, &[("pickup", "a"), ("dropoff", "b")]).as_deref(),
            Ok("main")
        );
        assert_eq!(
            pick(None, &[("pickup", "c"), ("dropoff", "d")]).as_deref(),
            Ok("east")
        );
        assert_eq!(
            pick(Some("east"), &[("pickup", "gate"), ("dropoff", "c")]).as_deref(),
            Ok("east")
        );
        let split = pick(None, &[("pickup", "a"), ("dropoff", "c")]).unwrap_err();
        assert!(
            split.contains("dropoff") && split.contains("one campus"),
            "{split}"
        );
        let ambiguous = pick(None, &[("pickup", "gate"), ("dropoff", "c")]).unwrap_err();
        assert!(ambiguous.starts_with("campus is required"), "{ambiguous}");
        let unknown = pick(None, &[("pickup", "nowhere")]).unwrap_err();
        assert!(unknown.contains("not a place"), "{unknown}");
        let named_wrong = pick(Some("main"), &[("pickup", "c")]).unwrap_err();
        assert!(named_wrong.contains("not on campus main"), "{named_wrong}");
        assert!(pick(Some("west"), &[("pickup", "a")]).is_err());
    }

    #[test]
    fn a_position_lands_on_the_nearest_campus_within_5_km() {
        let all = two();
        // 116.3 and 116.4 are about 8.5 km apart at 40° north.
        let (c, x, _) = all.locate(None, 40.0, 116.305).expect("near main");
        assert_eq!((c.id(), x.round() as i64 > 0), ("main", true));
        let (c, _, _) = all.locate(None, 40.0, 116.39).expect("near east");
        assert_eq!(c.id(), "east");
        assert_eq!(
            all.locate(None, 41.0, 116.3).err(),
            Some(LocateError::TooFar)
        );
        assert_eq!(
            all.locate(Some("west"), 40.0, 116.3).err(),
            Some(LocateError::UnknownCampus)
        );
        assert_eq!(
            all.locate(Some("east"), 40.0, 116.305).err(),
            Some(LocateError::TooFar)
        );
    }

    #[test]
    fn stored_orders_without_a_campus_are_the_first_campus() {
        let all = two();
        assert_eq!(all.of(None).map(|c| c.id()), Some("main"));
        let east = CampusId::parse("east").expect("id");
        assert_eq!(all.of(Some(&east)).map(|c| c.id()), Some("east"));
        let gone = CampusId::parse("west").expect("id");
        assert!(all.of(Some(&gone)).is_none());
    }
}
