//! The states a stored thing can be in, as types. SQL keeps them as text (`'queued'`,
//! `'active'`, ...) and JSON shows the same words; the store decodes the text once, when it
//! reads a row ([`parse`](ThwonkStatus::parse) refuses any other word), and code compares
//! enums, never strings.
//!
//! - [`ThwonkStatus`]: `active` (accepts mail) or `disabled`.
//! - [`MessageStatus`]: an incoming message, `queued` until its run commits it.
//! - [`TriggerKind`]: what started a run (`message`, `schedule`, `request`, `job_result`).
//! - [`DeliveryStatus`]: an outbox row, and each of its recipients, `queued`, `sent` or
//!   `failed`.
//!
//! A run's status ([`crate::run::RunStatus`]) and its error kind ([`crate::run::ErrorKind`])
//! are words of the same kind, declared with the runner–sandbox contract in [`crate::run`].

/// A word that is not one of a state's names: a corrupt row or a bad argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected one of: {})", expected.join(", "))]
pub struct UnknownWord {
    /// What was being read (`thwonk status`, `error kind`, ...).
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// Declares an enum whose variants are the given words: `as_str`, a fallible `parse`
/// (also `FromStr`), `Display`, and serde as the same words.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in SQL and shown in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }

            /// The value named by `word` (exactly as [`as_str`](Self::as_str) writes it).
            pub fn parse(word: &str) -> Result<Self, $crate::status::UnknownWord> {
                match word {
                    $( $word => Ok($name::$variant), )+
                    _ => Err($crate::status::UnknownWord {
                        what: $what,
                        value: word.to_string(),
                        expected: &[$($word),+],
                    }),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::status::UnknownWord;
            fn from_str(word: &str) -> Result<Self, Self::Err> {
                Self::parse(word)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use word_enum;

word_enum! {
    /// Whether a thwonk takes mail, schedule ticks and requests.
    pub enum ThwonkStatus ("thwonk status") {
        /// Runs its script (the state a new thwonk is born in).
        Active = "active",
        /// Refuses mail (`550`), skips its schedule, answers requests `409`.
        Disabled = "disabled",
    }
}

word_enum! {
    /// Where an incoming message stands.
    pub enum MessageStatus ("message status") {
        /// Stored, its run not committed yet.
        Queued = "queued",
        /// Its run committed successfully.
        Processed = "processed",
        /// Its run committed as failed.
        Failed = "failed",
    }
}

word_enum! {
    /// What started a run.
    pub enum TriggerKind ("run trigger") {
        /// Mail arrived (`onMessage`).
        Message = "message",
        /// A schedule fired (`onSchedule`).
        Schedule = "schedule",
        /// An HTTP invoke (`onRequest`).
        Request = "request",
        /// A worker's result for a job the script published (`onJobResult`).
        JobResult = "job_result",
    }
}

word_enum! {
    /// Where an outbox row, or one recipient of it, stands.
    pub enum DeliveryStatus ("delivery status") {
        /// Still to be delivered (again).
        Queued = "queued",
        /// The remote server took it.
        Sent = "sent",
        /// Refused permanently, or retries ran out.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for s in ThwonkStatus::ALL {
            assert_eq!(ThwonkStatus::parse(s.as_str()), Ok(*s));
        }
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse::<MessageStatus>(), Ok(*s));
        }
        for s in TriggerKind::ALL {
            assert_eq!(TriggerKind::parse(&s.to_string()), Ok(*s));
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Ok(*s));
        }
    }

    #[test]
    fn the_words_are_those_stored_in_sql() {
        assert_eq!(
            ThwonkStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["active", "disabled"]
        );
        assert_eq!(
            MessageStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["queued", "processed", "failed"]
        );
        assert_eq!(
            TriggerKind::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["message", "schedule", "request", "job_result"]
        );
        assert_eq!(
            DeliveryStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["queued", "sent", "failed"]
        );
    }

    #[test]
    fn json_shows_the_same_words() {
        assert_eq!(
            serde_json::to_value(ThwonkStatus::Disabled).unwrap(),
            "disabled"
        );
        assert_eq!(
            serde_json::from_value::<DeliveryStatus>("sent".into()).unwrap(),
            DeliveryStatus::Sent
        );
        assert!(serde_json::from_value::<MessageStatus>("Queued".into()).is_err());
    }

    #[test]
    fn an_unknown_word_is_refused_with_what_was_expected() {
        let e = ThwonkStatus::parse("Active").unwrap_err();
        assert_eq!(e.what, "thwonk status");
        assert_eq!(
            e.to_string(),
            "\"Active\" is not a thwonk status (expected one of: active, disabled)"
        );
        assert!(DeliveryStatus::parse("").is_err());
    }
}
