//! The ES-module API handed to handlers (JS-API.md): `msg`, `thwonk` and its parts.

pub mod feed;
pub mod files;
pub mod msg;
pub mod thwonk;
