//! Test helpers: a tiny SMTP server that records what it is sent.
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod smtp_sink;
