//! Who is calling and with what right: customer sessions from WeChat login
//! ([`sessions`]) and the app's own WeChat access_token ([`token`]).

pub mod sessions;
pub mod token;
