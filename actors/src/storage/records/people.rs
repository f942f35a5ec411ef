//! Sessions, pooled ids, the outbox, the access token, couriers, operators,
//! blocks and uploads as stored.

use super::*;

/// A login session (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct SessionV1 {
    openid: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl Stored for Session {
    type Record = SessionV1;
    fn to_record(&self) -> SessionV1 {
        SessionV1 {
            openid: self.openid.as_str().to_owned(),
            expires_at: self.expires_at,
        }
    }
    fn from_record(r: SessionV1) -> Result<Self, Unreadable> {
        Ok(Session {
            openid: open_id(&r.openid)?,
            expires_at: r.expires_at,
        })
    }
}

/// A pooled form_id or prepay_id (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct PooledIdV1 {
    value: String,
    uses_left: u8,
}

impl Stored for PooledId {
    type Record = PooledIdV1;
    fn to_record(&self) -> PooledIdV1 {
        PooledIdV1 {
            value: self.value.clone(),
            uses_left: self.uses_left,
        }
    }
    fn from_record(r: PooledIdV1) -> Result<Self, Unreadable> {
        Ok(PooledId {
            value: r.value,
            uses_left: r.uses_left,
        })
    }
}

/// What a message tells (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum MessageKindRecord {
    Assigned,
    PickedUp,
    Delivered,
    Refunded,
    // Appended: earlier records keep their variant numbers.
    Untaken,
    ShippingInfo,
}

/// The permission a message spends.
#[derive(Serialize, Deserialize)]
enum ViaRecord {
    Subscribe,
    Template(String),
}

/// An outbox entry (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OutboxV1 {
    id: u64,
    order_id: String,
    to: String,
    kind: MessageKindRecord,
    created_at_ms: i64,
    attempts: u32,
    next_attempt_ms: i64,
    via: Option<ViaRecord>,
}

impl Stored for OutboxEntry {
    type Record = OutboxV1;
    fn to_record(&self) -> OutboxV1 {
        OutboxV1 {
            id: self.id,
            order_id: self.order_id.as_str().to_owned(),
            to: self.to.as_str().to_owned(),
            kind: match self.kind {
                MessageKind::Assigned => MessageKindRecord::Assigned,
                MessageKind::PickedUp => MessageKindRecord::PickedUp,
                MessageKind::Delivered => MessageKindRecord::Delivered,
                MessageKind::Refunded => MessageKindRecord::Refunded,
                MessageKind::Untaken => MessageKindRecord::Untaken,
                MessageKind::ShippingInfo => MessageKindRecord::ShippingInfo,
            },
            created_at_ms: self.created_at_ms,
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
            via: self.via.as_ref().map(|v| match v {
                Via::Subscribe => ViaRecord::Subscribe,
                Via::Template(id) => ViaRecord::Template(id.clone()),
            }),
        }
    }
    fn from_record(r: OutboxV1) -> Result<Self, Unreadable> {
        Ok(OutboxEntry {
            id: r.id,
            order_id: OrderId::parse(&r.order_id).map_err(|_| Unreadable)?,
            to: open_id(&r.to)?,
            kind: match r.kind {
                MessageKindRecord::Assigned => MessageKind::Assigned,
                MessageKindRecord::PickedUp => MessageKind::PickedUp,
                MessageKindRecord::Delivered => MessageKind::Delivered,
                MessageKindRecord::Refunded => MessageKind::Refunded,
                MessageKindRecord::Untaken => MessageKind::Untaken,
                MessageKindRecord::ShippingInfo => MessageKind::ShippingInfo,
            },
            created_at_ms: r.created_at_ms,
            attempts: r.attempts,
            next_attempt_ms: r.next_attempt_ms,
            via: r.via.map(|v| match v {
                ViaRecord::Subscribe => Via::Subscribe,
                ViaRecord::Template(id) => Via::Template(id),
            }),
        })
    }
}

/// The app's access token (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct TokenV1 {
    value: String,
    expires_at: i64,
}

impl Stored for StoredToken {
    type Record = TokenV1;
    fn to_record(&self) -> TokenV1 {
        TokenV1 {
            value: self.value.clone(),
            expires_at: self.expires_at,
        }
    }
    fn from_record(r: TokenV1) -> Result<Self, Unreadable> {
        Ok(StoredToken {
            value: r.value,
            expires_at: r.expires_at,
        })
    }
}

/// A courier profile before review (tag `RECORD_V1`): such a courier was
/// taken on before couriers were reviewed, so reads as approved.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct CourierV1 {
    openid: String,
    name: String,
    phone: String,
}

impl CourierV1 {
    /// The profile it stands for: approved, applied at the epoch.
    pub(in crate::storage) fn upgrade(self) -> Result<CourierProfile, Unreadable> {
        Ok(CourierProfile {
            openid: open_id(&self.openid)?,
            name: self.name,
            phone: PhoneNumber::parse(&self.phone).map_err(|_| Unreadable)?,
            student_no: None,
            card_photo: None,
            review: Review::Approved,
            reason: None,
            suspended_until: None,
            applied_at: OffsetDateTime::UNIX_EPOCH,
            name_flagged: false,
            campus: None,
        })
    }
}

/// A courier profile with its review (tag `COURIER_V2`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct CourierV2 {
    openid: String,
    name: String,
    phone: String,
    student_no: Option<String>,
    card_photo: Option<String>,
    /// 0 pending, 1 approved, 2 rejected, 3 suspended.
    review: u8,
    reason: Option<String>,
    /// Unix milliseconds (serde's optional RFC 3339 does not read back
    /// from bincode).
    suspended_until_ms: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    applied_at: OffsetDateTime,
}

impl From<&CourierProfile> for CourierV2 {
    fn from(p: &CourierProfile) -> Self {
        CourierV2 {
            openid: p.openid.as_str().to_owned(),
            name: p.name.clone(),
            phone: p.phone.as_str().to_owned(),
            student_no: p.student_no.clone(),
            card_photo: p.card_photo.as_ref().map(|c| c.as_str().to_owned()),
            review: match p.review {
                Review::Pending => 0,
                Review::Approved => 1,
                Review::Rejected => 2,
                Review::Suspended => 3,
            },
            reason: p.reason.clone(),
            suspended_until_ms: p.suspended_until.map(crate::domain::unix_ms),
            applied_at: p.applied_at,
        }
    }
}

impl CourierV2 {
    /// The profile it holds.
    pub(in crate::storage) fn domain(self) -> Result<CourierProfile, Unreadable> {
        Ok(CourierProfile {
            openid: open_id(&self.openid)?,
            name: self.name,
            phone: PhoneNumber::parse(&self.phone).map_err(|_| Unreadable)?,
            student_no: self.student_no,
            card_photo: self
                .card_photo
                .as_deref()
                .map(|c| UploadId::parse(c).map_err(|_| Unreadable))
                .transpose()?,
            review: match self.review {
                0 => Review::Pending,
                1 => Review::Approved,
                2 => Review::Rejected,
                3 => Review::Suspended,
                _ => return Err(Unreadable),
            },
            reason: self.reason,
            suspended_until: self.suspended_until_ms.map(time_of_ms).transpose()?,
            applied_at: self.applied_at,
            name_flagged: false,
            campus: None,
        })
    }
}

/// A courier profile whose name WeChat's content check flagged (tag
/// `COURIER_V3`): the v2 record and the mark.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct CourierV3 {
    v2: CourierV2,
    name_flagged: bool,
}

impl From<&CourierProfile> for CourierV3 {
    fn from(p: &CourierProfile) -> Self {
        CourierV3 {
            v2: CourierV2::from(p),
            name_flagged: p.name_flagged,
        }
    }
}

impl CourierV3 {
    /// The profile it holds.
    pub(in crate::storage) fn domain(self) -> Result<CourierProfile, Unreadable> {
        let name_flagged = self.name_flagged;
        self.v2
            .domain()
            .map(|p| CourierProfile { name_flagged, ..p })
    }
}

/// A courier profile that knows the campus they work on (tag
/// `COURIER_V4`): the v3 record and the campus id.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct CourierV4 {
    v3: CourierV3,
    campus: String,
}

impl CourierV4 {
    /// The record of a profile with a campus (None: it has none).
    pub(in crate::storage) fn of(p: &CourierProfile) -> Option<Self> {
        Some(CourierV4 {
            v3: CourierV3::from(p),
            campus: p.campus.as_ref()?.as_str().to_owned(),
        })
    }

    /// The profile it holds.
    pub(in crate::storage) fn domain(self) -> Result<CourierProfile, Unreadable> {
        let campus = CampusId::parse(&self.campus).map_err(|_| Unreadable)?;
        self.v3.domain().map(|p| CourierProfile {
            campus: Some(campus),
            ..p
        })
    }
}

/// An operator (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OperatorV1 {
    name: String,
    role: u8,
    campuses: Vec<String>,
    token_hash: [u8; 32],
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
}

impl Stored for OperatorRecord {
    type Record = OperatorV1;
    fn to_record(&self) -> OperatorV1 {
        OperatorV1 {
            name: self.name.as_str().to_owned(),
            role: match self.role {
                Role::Viewer => 0,
                Role::Dispatcher => 1,
                Role::Finance => 2,
                Role::Admin => 3,
            },
            campuses: self.campuses.clone(),
            token_hash: self.token_hash,
            created_at_ms: crate::domain::unix_ms(self.created_at),
            revoked_at_ms: self.revoked_at.map(crate::domain::unix_ms),
        }
    }
    fn from_record(r: OperatorV1) -> Result<Self, Unreadable> {
        Ok(OperatorRecord {
            name: OperatorName::parse(&r.name).map_err(|_| Unreadable)?,
            role: match r.role {
                0 => Role::Viewer,
                1 => Role::Dispatcher,
                2 => Role::Finance,
                3 => Role::Admin,
                _ => return Err(Unreadable),
            },
            campuses: r.campuses,
            token_hash: r.token_hash,
            created_at: time_of_ms(r.created_at_ms)?,
            revoked_at: r.revoked_at_ms.map(time_of_ms).transpose()?,
        })
    }
}

/// A block on a user (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct BlockV1 {
    reason: String,
    at_ms: i64,
}

impl Stored for Block {
    type Record = BlockV1;
    fn to_record(&self) -> BlockV1 {
        BlockV1 {
            reason: self.reason.clone(),
            at_ms: crate::domain::unix_ms(self.at),
        }
    }
    fn from_record(r: BlockV1) -> Result<Self, Unreadable> {
        Ok(Block {
            reason: r.reason,
            at: time_of_ms(r.at_ms)?,
        })
    }
}

/// An uploaded photo (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct UploadV1 {
    id: String,
    owner: String,
    /// 0 JPEG, 1 PNG.
    image: u8,
    size: u32,
    width: u32,
    height: u32,
    order: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl Stored for Upload {
    type Record = UploadV1;
    fn to_record(&self) -> UploadV1 {
        UploadV1 {
            id: self.id.as_str().to_owned(),
            owner: self.owner.as_str().to_owned(),
            image: match self.image {
                ImageType::Jpeg => 0,
                ImageType::Png => 1,
            },
            size: self.size,
            width: self.width,
            height: self.height,
            order: self.order.as_ref().map(|o| o.as_str().to_owned()),
            created_at: self.created_at,
        }
    }
    fn from_record(r: UploadV1) -> Result<Self, Unreadable> {
        Ok(Upload {
            id: UploadId::parse(&r.id).map_err(|_| Unreadable)?,
            owner: open_id(&r.owner)?,
            image: match r.image {
                0 => ImageType::Jpeg,
                1 => ImageType::Png,
                _ => return Err(Unreadable),
            },
            size: r.size,
            width: r.width,
            height: r.height,
            order: r.order.as_deref().map(order_id).transpose()?,
            created_at: r.created_at,
        })
    }
}
