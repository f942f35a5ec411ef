//! Couriers: profiles and phone numbers.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// A mainland China mobile number: 11 digits starting with 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^1[0-9]{10}$")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a phone number.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "phone must be a mainland mobile number: 11 digits starting with 1",
            ))
        }
    }
}

string_newtype!(PhoneNumber);

/// Where a courier's application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// Waiting for an operator.
    Pending,
    /// May work.
    Approved,
    /// Turned down (may apply again).
    Rejected,
    /// Barred by an operator, until reinstated or `suspended_until`.
    Suspended,
}

impl Review {
    /// Parses `pending`, `approved`, `rejected` or `suspended`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Review::Pending,
            "approved" => Review::Approved,
            "rejected" => Review::Rejected,
            "suspended" => Review::Suspended,
            _ => return None,
        })
    }
}

/// A registered courier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierProfile {
    /// The courier's openid.
    pub openid: OpenId,
    /// Display name, 1–32 characters.
    pub name: String,
    /// Contact number.
    pub phone: PhoneNumber,
    /// Student number (required when couriers are reviewed).
    pub student_no: Option<String>,
    /// The photo of the student card (an upload of the courier's).
    pub card_photo: Option<UploadId>,
    /// Where the application stands.
    pub review: Review,
    /// The operator's reason for a rejection or suspension.
    pub reason: Option<String>,
    /// When a suspension ends by itself (None: until reinstated).
    pub suspended_until: Option<OffsetDateTime>,
    /// When the courier (last) applied.
    pub applied_at: OffsetDateTime,
    /// WeChat's content check wants a person to look at the name (or
    /// could not check it).
    pub name_flagged: bool,
    /// The campus they work on (last went online or were assigned on);
    /// None until they first do. Operators limited to campuses see and act
    /// on a courier by it.
    pub campus: Option<CampusId>,
}

/// What a user sends to become (or stay) a courier.
#[derive(Debug, Clone)]
pub struct Application {
    /// Who.
    pub openid: OpenId,
    /// Display name.
    pub name: String,
    /// Contact number.
    pub phone: PhoneNumber,
    /// Student number.
    pub student_no: Option<String>,
    /// Student-card photo.
    pub card_photo: Option<UploadId>,
    /// WeChat's content check wants a person to look at the name.
    pub name_flagged: bool,
}

/// An operator's decision about a courier.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Let them work.
    Approve,
    /// Turn the application down.
    Reject(String),
    /// Bar them, optionally until a time.
    Suspend {
        /// Why (shown to the courier).
        reason: String,
        /// When it ends by itself.
        until: Option<OffsetDateTime>,
    },
    /// Lift a suspension.
    Reinstate,
}

impl Decision {
    /// The action's name in histories and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Approve => "approve_courier",
            Decision::Reject(_) => "reject_courier",
            Decision::Suspend { .. } => "suspend_courier",
            Decision::Reinstate => "reinstate_courier",
        }
    }
}

impl CourierProfile {
    /// The review as it stands at `now` (a suspension past its end is over).
    pub fn review_at(&self, now: OffsetDateTime) -> Review {
        match (self.review, self.suspended_until) {
            (Review::Suspended, Some(until)) if until <= now => Review::Approved,
            (review, _) => review,
        }
    }

    /// Whether the courier may go online, grab or be dispatched; the
    /// refusal names the review state.
    pub fn may_work(&self, now: OffsetDateTime) -> Result<(), &'static str> {
        match self.review_at(now) {
            Review::Approved => Ok(()),
            Review::Pending => {
                Err("courier review is pending: an operator has not approved you yet")
            }
            Review::Rejected => Err("courier review: your application was rejected"),
            Review::Suspended => Err("courier review: you are suspended"),
        }
    }

    /// The profile after an application: a new applicant waits for review
    /// (or is approved at once when couriers are not reviewed); an approved
    /// courier who changes their student number or card goes back to
    /// review; a rejected one who applies again waits again; a suspended
    /// one stays suspended whatever they send.
    pub fn apply(
        existing: Option<CourierProfile>,
        app: Application,
        reviewed: bool,
        now: OffsetDateTime,
    ) -> CourierProfile {
        // A courier's campus stays through a new application.
        let campus = existing.as_ref().and_then(|o| o.campus.clone());
        let fresh = |review| CourierProfile {
            openid: app.openid.clone(),
            name: app.name.clone(),
            phone: app.phone.clone(),
            student_no: app.student_no.clone(),
            card_photo: app.card_photo.clone(),
            review,
            reason: None,
            suspended_until: None,
            applied_at: now,
            name_flagged: app.name_flagged,
            campus: campus.clone(),
        };
        let waiting = if reviewed {
            Review::Pending
        } else {
            Review::Approved
        };
        let Some(old) = existing else {
            return fresh(waiting);
        };
        match old.review_at(now) {
            Review::Suspended => CourierProfile {
                name: app.name,
                phone: app.phone,
                name_flagged: app.name_flagged,
                ..old
            },
            Review::Approved => {
                let same_papers = app
                    .student_no
                    .as_ref()
                    .is_none_or(|s| old.student_no.as_ref() == Some(s))
                    && app
                        .card_photo
                        .as_ref()
                        .is_none_or(|c| old.card_photo.as_ref() == Some(c));
                if same_papers || !reviewed {
                    CourierProfile {
                        name: app.name,
                        phone: app.phone,
                        name_flagged: app.name_flagged,
                        student_no: app.student_no.or(old.student_no),
                        card_photo: app.card_photo.or(old.card_photo),
                        review: Review::Approved,
                        reason: None,
                        suspended_until: None,
                        ..old
                    }
                } else {
                    fresh(Review::Pending)
                }
            }
            Review::Pending | Review::Rejected => fresh(waiting),
        }
    }

    /// Applies an operator's decision; Ok(false) when it changes nothing
    /// (approving an approved courier), Err naming the conflict when the
    /// state does not allow it.
    pub fn decide(
        &mut self,
        decision: Decision,
        now: OffsetDateTime,
    ) -> Result<bool, &'static str> {
        let current = self.review_at(now);
        match (decision, current) {
            (Decision::Approve, Review::Approved) => Ok(false),
            (Decision::Approve, Review::Pending | Review::Rejected) => {
                self.set(Review::Approved, None, None);
                Ok(true)
            }
            (Decision::Approve, Review::Suspended) => {
                Err("the courier is suspended: reinstate them instead")
            }
            (Decision::Reject(reason), Review::Pending) => {
                self.set(Review::Rejected, Some(reason), None);
                Ok(true)
            }
            (Decision::Reject(_), Review::Rejected) => Ok(false),
            (Decision::Reject(_), Review::Approved | Review::Suspended) => {
                Err("only a pending application can be rejected: suspend an approved courier")
            }
            (Decision::Suspend { reason, until }, _) => {
                self.set(Review::Suspended, Some(reason), until);
                Ok(true)
            }
            (Decision::Reinstate, Review::Suspended) => {
                self.set(Review::Approved, None, None);
                Ok(true)
            }
            (Decision::Reinstate, _) => Err("the courier is not suspended"),
        }
    }

    fn set(&mut self, review: Review, reason: Option<String>, until: Option<OffsetDateTime>) {
        self.review = review;
        self.reason = reason;
        self.suspended_until = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-03 12:00 UTC);

    fn app(student_no: &str) -> Application {
        Application {
            openid: OpenId::parse("o-courier").expect("openid"),
            name: "张三".into(),
            phone: PhoneNumber::parse("13800138000").expect("phone"),
            student_no: Some(student_no.into()),
            card_photo: None,
            name_flagged: false,
        }
    }

    #[test]
    fn a_new_applicant_waits_for_review_unless_couriers_are_not_reviewed() {
        let p = CourierProfile::apply(None, app("2023001"), true, NOW);
        assert_eq!(p.review, Review::Pending);
        assert!(p.may_work(NOW).is_err());
        let p = CourierProfile::apply(None, app("2023001"), false, NOW);
        assert_eq!(p.review, Review::Approved);
        assert!(p.may_work(NOW).is_ok());
    }

    #[test]
    fn new_papers_send_an_approved_courier_back_to_review_and_a_suspension_sticks() {
        let mut p = CourierProfile::apply(None, app("2023001"), true, NOW);
        assert_eq!(p.decide(Decision::Approve, NOW), Ok(true));
        let renamed = CourierProfile::apply(Some(p.clone()), app("2023001"), true, NOW);
        assert_eq!(renamed.review, Review::Approved);
        let new_papers = CourierProfile::apply(Some(p.clone()), app("2099999"), true, NOW);
        assert_eq!(new_papers.review, Review::Pending);
        let suspend = Decision::Suspend {
            reason: "late".into(),
            until: None,
        };
        assert_eq!(p.decide(suspend, NOW), Ok(true));
        let again = CourierProfile::apply(Some(p), app("2099999"), true, NOW);
        assert_eq!(again.review, Review::Suspended);
        assert_eq!(again.reason.as_deref(), Some("late"));
    }

    #[test]
    fn a_suspension_with_an_end_ends_by_itself() {
        let mut p = CourierProfile::apply(None, app("1"), false, NOW);
        let until = NOW + time::Duration::hours(2);
        let suspend = Decision::Suspend {
            reason: "no-show".into(),
            until: Some(until),
        };
        assert_eq!(p.decide(suspend, NOW), Ok(true));
        assert_eq!(p.review_at(NOW), Review::Suspended);
        assert!(p.may_work(NOW).is_err());
        assert_eq!(p.review_at(until), Review::Approved);
        assert!(p.may_work(until).is_ok());
    }

    #[test]
    fn decisions_follow_the_review_states() {
        let mut p = CourierProfile::apply(None, app("1"), true, NOW);
        assert!(p.decide(Decision::Reinstate, NOW).is_err());
        assert_eq!(
            p.decide(Decision::Reject("blurry card".into()), NOW),
            Ok(true)
        );
        assert_eq!(p.review, Review::Rejected);
        assert_eq!(p.reason.as_deref(), Some("blurry card"));
        assert_eq!(p.decide(Decision::Reject("again".into()), NOW), Ok(false));
        assert_eq!(p.decide(Decision::Approve, NOW), Ok(true));
        assert_eq!(p.decide(Decision::Approve, NOW), Ok(false));
        assert!(p.decide(Decision::Reject("x".into()), NOW).is_err());
        let suspend = Decision::Suspend {
            reason: "x".into(),
            until: None,
        };
        assert_eq!(p.decide(suspend, NOW), Ok(true));
        assert!(p.decide(Decision::Approve, NOW).is_err());
        assert_eq!(p.decide(Decision::Reinstate, NOW), Ok(true));
        assert_eq!((p.review, p.reason.clone()), (Review::Approved, None));
    }
}
