//! Test helper: the plan a delivery report leads to (the path the worker takes).
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod plan;
