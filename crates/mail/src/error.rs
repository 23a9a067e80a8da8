//! Why a send cannot be composed. Each message names the field at fault so that the runner can
//! put it in the run record and the script's author can fix the script.

/// A send that cannot become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("the message has no recipients (to, cc and bcc are all empty)")]
    NoRecipients,
    #[error("{field}: {address:?} is not a valid mail address")]
    BadAddress {
        field: &'static str,
        address: String,
    },
    #[error("the thwonk address {0:?} is not a valid mail address")]
    BadThwonkAddress(String),
    #[error("send id {0:?} cannot be the local part of a Message-ID")]
    BadId(String),
    #[error("bounce token {0:?} is not ASCII letters and digits")]
    BadBounceToken(String),
    #[error("header name {0:?} is not an RFC 5322 field name (printable ASCII, no ':' or space)")]
    BadHeaderName(String),
    #[error(
        "header {0:?} is reserved (Thwonk or the mail servers on the way write it); a script cannot add it"
    )]
    ReservedHeader(String),
    #[error("header {0:?}: value contains a line break or NUL")]
    BadHeaderValue(String),
    #[error("attachment {filename:?}: {reason}")]
    BadAttachment { filename: String, reason: String },
    #[error("forward: the original message was not provided")]
    MissingOriginal,
    #[error("cannot build the message: {0}")]
    Build(String),
}
