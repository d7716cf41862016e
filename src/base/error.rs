//! Errors that end a command before or instead of a drill, and their exit
//! codes (base/exit.rs).

use crate::base::diag::Diagnostics;
use crate::base::exit::{ABORTED, INVALID, REVERT_FAILED};

/// Errors that end a command before or instead of a drill.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad scenario or targets file: every diagnostic, file:line:col.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
    /// Bad flags or arguments.
    #[error("error: {message}\n  = hint: {hint}")]
    Usage { message: String, hint: String },
    /// Could not do what was asked for a reason outside the input.
    #[error("error: {0}")]
    Failed(String),
    /// `drill cleanup` could not revert everything.
    #[error("error: {0}")]
    RevertFailed(String),
}

impl CliError {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Invalid(_) | CliError::Usage { .. } => INVALID,
            CliError::Failed(_) => ABORTED,
            CliError::RevertFailed(_) => REVERT_FAILED,
        }
    }
}
