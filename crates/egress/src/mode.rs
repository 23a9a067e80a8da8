//! The transport `egress.mode` selects, as one type the job loop can hold.

use crate::EgressError;
use crate::capture::CaptureTransport;
use crate::mx::{MxPolicy, MxTransport};
use crate::relay::RelayTransport;
use crate::transport::{DeliveryReport, Outgoing, Transport};
use thwonk_core::config::{Config, EgressMode};

/// One of the three delivery modes.
#[derive(Clone)]
pub enum ModeTransport {
    Capture(CaptureTransport),
    Relay(RelayTransport),
    // Boxed: the resolver is large, and the enum is moved around by value.
    Mx(Box<MxTransport>),
}

impl ModeTransport {
    /// Build the configured transport. Needs a running tokio runtime (mx: the resolver).
    pub fn from_config(config: &Config) -> Result<Self, EgressError> {
        let timeout = config.egress.timeout;
        Ok(match config.egress.mode {
            EgressMode::Capture => {
                ModeTransport::Capture(CaptureTransport::new(config.captured_dir()))
            }
            EgressMode::Relay => ModeTransport::Relay(RelayTransport::new(
                config.egress.relay.as_deref().unwrap_or_default(),
                &config.smtp.hostname,
                timeout,
            )?),
            EgressMode::Mx => ModeTransport::Mx(Box::new(MxTransport::new(
                &config.smtp.hostname,
                timeout,
                MxPolicy::default(),
            )?)),
        })
    }
}

impl Transport for ModeTransport {
    async fn deliver(&self, message: &Outgoing<'_>) -> DeliveryReport {
        match self {
            ModeTransport::Capture(t) => t.deliver(message).await,
            ModeTransport::Relay(t) => t.deliver(message).await,
            ModeTransport::Mx(t) => t.deliver(message).await,
        }
    }
}
