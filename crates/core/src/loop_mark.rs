//! The loop marker: the header every message a thwonk sends carries, and that the ingress
//! looks for.
//!
//! Outgoing mail gets one `X-Thwonk-Loop: <thwonk address>` field per hop (forwards keep the
//! fields already there). When mail comes back to a thwonk whose address is among them, it
//! already passed through that thwonk: the ingress refuses it with `554 5.4.6` rather than
//! run the script on its own output again. Writer: `thwonk_mail::compose`; reader: the
//! ingress's loop check.

/// The field name, as written (compared case-insensitively when read).
pub const LOOP_HEADER: &str = "X-Thwonk-Loop";
