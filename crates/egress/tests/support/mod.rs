//! Test helpers: a tiny SMTP server that records what it is sent, and the plan a delivery
//! report leads to.
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod plan;
pub mod smtp_sink;
