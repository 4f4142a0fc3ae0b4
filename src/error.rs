//! The one error type at the top, and the exit-code contract.
//!
//! Library modules return their own typed errors; this type wraps them so `main` can print one
//! sentence and pick the documented exit code (README, "Exit codes"):
//! 0 everything converged, 1 bad usage, config, inventory file or role (caught before any
//! connection), 2 a host failed or was unreachable, 3 `--check` found pending changes,
//! 4 the Spark archive or its checksum could not be fetched or verified, 5 cloud discovery
//! (Terraform outputs, the AWS API) or S3 staging failed, 6 another run holds the lock this
//! one needs (one `watch` per cluster), 7 `submit`'s application ran and failed.

use std::process::ExitCode;

use thiserror::Error;

use crate::config::ConfigError;
use crate::inventory::InventoryError;
use crate::lab::LabError;
use crate::roles::RoleError;

pub const EXIT_USAGE: u8 = 1;
pub const EXIT_HOST_FAILED: u8 = 2;
pub const EXIT_CHANGES_PENDING: u8 = 3;
pub const EXIT_DOWNLOAD: u8 = 4;
pub const EXIT_CLOUD: u8 = 5;
pub const EXIT_LOCKED: u8 = 6;
/// `submit` only: the application ran and failed (spark-submit's own status was not 0, or in
/// cluster mode the driver ended other than FINISHED).
pub const EXIT_APP_FAILED: u8 = 7;

/// Every exit code and what it means, for the manual page's EXIT STATUS (README, "Exit codes",
/// says the same at more length).
pub const EXIT_CODES: [(u8, &str); 7] = [
    (0, "Every selected host converged (or, with --check, nothing would change)."),
    (EXIT_USAGE, "Bad usage, config, inventory or role, caught before any connection."),
    (EXIT_HOST_FAILED, "At least one host failed or was unreachable (the others still converged); for status, the cluster is not healthy."),
    (EXIT_CHANGES_PENDING, "--check only: changes are pending."),
    (EXIT_DOWNLOAD, "The Spark archive or its checksum could not be fetched or verified; nothing was changed on any host."),
    (EXIT_CLOUD, "Cloud discovery (terraform output, the AWS API) or S3 staging failed; nothing was changed on any host."),
    (EXIT_LOCKED, "Another run holds the lock this one needs (the cluster lock on the master, or the watcher's state lock)."),
];

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
    /// Another run holds the lock this one needs (one watcher per cluster).
    #[error("{0}")]
    Locked(String),
    /// Standard output could not be written (not a closed pipe: that ends the output quietly).
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        use crate::spark::SparkError;
        ExitCode::from(match self {
            Error::Spark(
                SparkError::Checksum(_) | SparkError::Push(_) | SparkError::Connector(_),
            ) => EXIT_DOWNLOAD,
            Error::Spark(SparkError::S3(_))
            | Error::Inventory(InventoryError::Discovery { .. }) => EXIT_CLOUD,
            Error::Host(_) => EXIT_HOST_FAILED,
            Error::Locked(_) => EXIT_LOCKED,
            Error::Usage(_)
            | Error::Inventory(_)
            | Error::Config(_)
            | Error::Role(_)
            | Error::Lab(_)
            | Error::Harden(_)
            | Error::Stdout(_)
            | Error::Spark(SparkError::Secret { .. } | SparkError::Setting { .. }) => EXIT_USAGE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark::SparkError;

    fn code(e: Error) -> ExitCode {
        e.exit_code()
    }

    #[test]
    fn each_kind_of_failure_has_its_own_code() {
        assert_eq!(code(Error::Usage("x".into())), ExitCode::from(EXIT_USAGE));
        assert_eq!(
            code(Error::Spark(SparkError::Checksum("x".into()))),
            ExitCode::from(EXIT_DOWNLOAD)
        );
        assert_eq!(
            code(Error::Spark(SparkError::Push("mismatch".into()))),
            ExitCode::from(EXIT_DOWNLOAD)
        );
        assert_eq!(
            code(Error::Spark(SparkError::Connector("mismatch".into()))),
            ExitCode::from(EXIT_DOWNLOAD)
        );
        assert_eq!(
            code(Error::Spark(SparkError::Setting {
                field: "hadoop_version".into(),
                message: "unknown".into()
            })),
            ExitCode::from(EXIT_USAGE)
        );
        assert_eq!(
            code(Error::Spark(SparkError::S3("denied".into()))),
            ExitCode::from(EXIT_CLOUD)
        );
        let discovery = InventoryError::Discovery {
            source_name: "aws".into(),
            message: "no group".into(),
        };
        assert_eq!(
            code(Error::Inventory(discovery)),
            ExitCode::from(EXIT_CLOUD)
        );
        let file = InventoryError::LimitMatchesNothing("x".into());
        assert_eq!(code(Error::Inventory(file)), ExitCode::from(EXIT_USAGE));
    }
}
