//! The one error type at the top, and the exit-code contract.
//!
//! Library modules return their own typed errors; this type wraps them so `main` can print one
//! sentence and pick the documented exit code:
//! 0 everything converged, 1 bad usage or config (caught before any connection),
//! 2 a host failed or was unreachable, 3 `--check` found pending changes.

use std::process::ExitCode;

use thiserror::Error;

use crate::config::ConfigError;
use crate::inventory::InventoryError;
use crate::lab::LabError;
use crate::roles::RoleError;

pub const EXIT_USAGE: u8 = 1;
pub const EXIT_HOST_FAILED: u8 = 2;
pub const EXIT_CHANGES_PENDING: u8 = 3;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Role(#[from] RoleError),
    #[error(transparent)]
    Spark(#[from] crate::spark::SparkError),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Harden(#[from] crate::harden::HardenError),
    /// A host could not be reached or refused (a host key that does not match, a failed login).
    #[error(transparent)]
    Host(#[from] crate::transport::TransportError),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Error::Usage(_)
            | Error::Inventory(_)
            | Error::Config(_)
            | Error::Role(_)
            | Error::Lab(_)
            | Error::Harden(_)
            | Error::Spark(_) => EXIT_USAGE,
            Error::Host(_) => EXIT_HOST_FAILED,
        })
    }
}
