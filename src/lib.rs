//! chameleon: a streaming data loader for language-model training with built-in domain
//! reweighting.
#![deny(missing_docs)]

pub mod error;
pub mod mixture;

pub use error::{Error, Result};
