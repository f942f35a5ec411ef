//! Notifying customers: the outbox worker that sends subscribe and template
//! messages ([`notifier`]) and the pool of what WeChat lets us send with —
//! form_ids, paid prepay_ids and subscribe grants ([`formid`]).

pub mod formid;
pub mod notifier;
