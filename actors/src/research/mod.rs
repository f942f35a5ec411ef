//! Offline research on the dispatcher: the public Meal Delivery Routing
//! Problem instances and solution files ([`mdrp`]), and replaying a day
//! through the same planner the service runs ([`replay`]). Nothing here
//! runs in the service.

pub mod mdrp;
pub mod replay;
