//! Decoding rows into the public types. Columns cross `sqlx::Any` only as `i64`, text, bytes
//! and their `Option`s; lists are JSON text, flags are 0/1 and states are words
//! ([`thwonk_core::status`]), converted here and nowhere else.
//!
//! The column lists are macros so that each query stays one `&'static str` (`concat!`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;
use thwonk_core::Address;
use thwonk_core::run::{ErrorKind, RunStatus};
use thwonk_core::status::{DeliveryStatus, MessageStatus, ThwonkStatus, TriggerKind, UnknownWord};

use crate::{OutboxRow, Result, RunRecord, ScriptVersion, StoreError, StoredMessage, Thwonk};

macro_rules! thwonk_columns {
    () => {
        "id, address, status, active_version, schedule, created_at_ms"
    };
}
macro_rules! script_columns {
    () => {
        "thwonk_id, version, source, schedule, created_at_ms"
    };
}
macro_rules! message_columns {
    () => {
        "m.id, m.seq, m.thwonk_id, m.mail_from, m.rcpt_to, b.raw, m.received_at_ms, m.status"
    };
}
macro_rules! run_columns {
    () => {
        "id, thwonk_id, message_id, \"trigger\", script_version, status, error_kind, \
         error_message, error_stack, logs, logs_truncated, instructions, wall_ms, \
         started_at_ms, finished_at_ms"
    };
}
macro_rules! outbox_columns {
    () => {
        "id, run_id, thwonk_id, mail_from, rcpt_to, raw, status, attempts, last_error, \
         next_attempt_at_ms, created_at_ms, bounce_token"
    };
}
pub(crate) use {message_columns, outbox_columns, run_columns, script_columns, thwonk_columns};

/// Encode a list column.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn from_json<T: DeserializeOwned>(row: &AnyRow, column: &str, table: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("{table}.{column} is not the expected JSON: {e}")))
}

/// A state column, parsed with `parse` (each state's own `parse`).
pub(crate) fn word<T>(
    row: &AnyRow,
    column: &str,
    table: &str,
    parse: fn(&str) -> Result<T, UnknownWord>,
) -> Result<T> {
    let text: String = row.try_get(column)?;
    parse(&text).map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn thwonk(row: &AnyRow) -> Result<Thwonk> {
    let address: String = row.try_get("address")?;
    let address = Address::parse(&address)
        .map_err(|e| StoreError::Corrupt(format!("thwonks.address is not a valid address: {e}")))?;
    Ok(Thwonk {
        id: row.try_get("id")?,
        address,
        status: word(row, "status", "thwonks", ThwonkStatus::parse)?,
        active_version: row.try_get("active_version")?,
        schedule: row.try_get("schedule")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

pub(crate) fn script(row: &AnyRow) -> Result<ScriptVersion> {
    Ok(ScriptVersion {
        thwonk_id: row.try_get("thwonk_id")?,
        version: row.try_get("version")?,
        source: row.try_get("source")?,
        schedule: row.try_get("schedule")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

pub(crate) fn message(row: &AnyRow) -> Result<StoredMessage> {
    Ok(StoredMessage {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        thwonk_id: row.try_get("thwonk_id")?,
        mail_from: row.try_get("mail_from")?,
        rcpt_to: from_json(row, "rcpt_to", "messages")?,
        raw: row.try_get("raw")?,
        received_at_ms: row.try_get("received_at_ms")?,
        status: word(row, "status", "messages", MessageStatus::parse)?,
    })
}

pub(crate) fn run(row: &AnyRow) -> Result<RunRecord> {
    let logs_truncated: i64 = row.try_get("logs_truncated")?;
    Ok(RunRecord {
        id: row.try_get("id")?,
        thwonk_id: row.try_get("thwonk_id")?,
        message_id: row.try_get("message_id")?,
        trigger: word(row, "trigger", "runs", TriggerKind::parse)?,
        script_version: row.try_get("script_version")?,
        status: word(row, "status", "runs", RunStatus::parse)?,
        error_kind: error_kind(row)?,
        error_message: row.try_get("error_message")?,
        error_stack: row.try_get("error_stack")?,
        logs: from_json(row, "logs", "runs")?,
        logs_truncated: logs_truncated != 0,
        instructions: row.try_get("instructions")?,
        wall_ms: row.try_get("wall_ms")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
    })
}

fn error_kind(row: &AnyRow) -> Result<Option<ErrorKind>> {
    let text: Option<String> = row.try_get("error_kind")?;
    text.map(|t| {
        ErrorKind::parse(&t).map_err(|e| StoreError::Corrupt(format!("runs.error_kind: {e}")))
    })
    .transpose()
}

pub(crate) fn outbox(row: &AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        thwonk_id: row.try_get("thwonk_id")?,
        mail_from: row.try_get("mail_from")?,
        rcpt_to: from_json(row, "rcpt_to", "outbox")?,
        raw: row.try_get("raw")?,
        status: word(row, "status", "outbox", DeliveryStatus::parse)?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        bounce_token: row.try_get("bounce_token")?,
    })
}
