//! The ES-module API handed to handlers (docs/rule-scripts.md): `msg`, `thwonk` and its parts.

pub mod feed;
pub mod files;
pub mod jobs;
pub mod msg;
pub mod request;
pub mod thwonk;
pub mod web;
