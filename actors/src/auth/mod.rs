//! Who is calling and with what right: customer sessions from WeChat login
//! ([`sessions`]), named operators with roles ([`operators`]) and the app's
//! own WeChat access_token ([`token`]).

pub mod operators;
pub mod sessions;
pub mod token;
