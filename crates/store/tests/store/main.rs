//! The store's behaviour, each test run on SQLite (a temp dir) and on PostgreSQL (a scratch
//! database per test, when `THWONK_TEST_POSTGRES_URL` is set; otherwise the PostgreSQL
//! variants print that they were skipped).

#[macro_use]
mod common;

mod budgets;
mod deliveries;
mod feeds;
mod lease;
mod messages;
mod outbox;
mod runs;
mod thwonks;
mod users;
mod vfs;
