//! The library's one error type.
//!
//! Every variant names the place the failure happened (domain, file, row group, row) as far as it
//! is known, and its message says what was expected, what was found and what to do about it.
//! The underlying error (I/O, parquet, TOML) is not repeated in the message: it is the
//! [`std::error::Error::source`], which `{:#}` with `anyhow` or [`Error::chain`] prints after it.

use std::path::PathBuf;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in chameleon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid: a key is missing, out of range or contradicts another.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The configuration file could not be parsed as TOML.
    #[error("cannot parse configuration file {path}")]
    ConfigParse {
        /// The configuration file.
        path: PathBuf,
        /// The TOML parser's error, with line and column.
        source: toml::de::Error,
    },

    /// A file or folder could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done, for example "cannot open shard".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A domain has no shards: its folder is missing, empty, or its glob matches nothing.
    #[error("domain '{domain}': no parquet shards found at {path}; {hint}")]
    NoShards {
        /// The domain.
        domain: String,
        /// The folder or glob that was searched.
        path: PathBuf,
        /// What to check.
        hint: &'static str,
    },

    /// A shard is not valid parquet, or a row group of it cannot be decoded.
    #[error("domain '{domain}': shard {path}{}: the file is truncated or corrupt; rewrite it or set skip_bad_shards = true to skip it", row_group.map(|g| format!(", row group {g}")).unwrap_or_default())]
    Parquet {
        /// The domain.
        domain: String,
        /// The shard.
        path: PathBuf,
        /// The row group, when the failure is inside one.
        row_group: Option<usize>,
        /// The parquet reader's error.
        source: parquet::errors::ParquetError,
    },

    /// A shard's schema does not fit the domain: a column is missing or has the wrong type, or it
    /// differs from the domain's other shards.
    #[error("domain '{domain}': shard {path}: {message}")]
    Schema {
        /// The domain.
        domain: String,
        /// The shard.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },

    /// A token id cannot be converted to `u32`: it is negative or larger than `u32::MAX`.
    #[error("domain '{domain}': shard {path}, row group {row_group}, row {row}: token id {value} is out of range (expected 0 to {max}); fix the tokenizer output that wrote this shard", max = u32::MAX)]
    TokenOutOfRange {
        /// The domain.
        domain: String,
        /// The shard.
        path: PathBuf,
        /// The row group within the shard.
        row_group: usize,
        /// The row within the row group.
        row: usize,
        /// The offending id.
        value: i128,
    },

    /// A domain has no documents to give although its weight is positive.
    #[error("domain '{domain}' has a positive weight but no documents: {reason}; give it weight 0, remove it, or add data")]
    EmptyDomain {
        /// The domain.
        domain: String,
        /// Why it has no documents (no rows, only null or empty rows, every shard skipped).
        reason: String,
    },

    /// A tokenizer could not be loaded or failed on a document.
    #[error("tokenizer '{name}': {message}")]
    Tokenizer {
        /// The tokenizer name or file.
        name: String,
        /// What failed.
        message: String,
    },

    /// A reader thread panicked. The panic message is kept.
    #[error("the reader of domain '{domain}' panicked: {message}")]
    ReaderPanicked {
        /// The domain.
        domain: String,
        /// The panic payload, when it was a string.
        message: String,
    },

    /// A reader thread stopped without an error or a panic message.
    #[error("the reader of domain '{domain}' stopped unexpectedly")]
    ReaderStopped {
        /// The domain.
        domain: String,
    },

    /// The mixture's weights are unusable.
    #[error("invalid mixture weights: {message}")]
    Weights {
        /// What is wrong.
        message: String,
    },

    /// The loader behind a mixture handle is gone.
    #[error("the loader was dropped; mixture changes need a running loader")]
    LoaderClosed,

    /// A saved loader state does not fit the configuration it is resumed with.
    #[error("cannot resume: {message}")]
    Resume {
        /// Which field differs, with both values.
        message: String,
    },

    /// A domain's embedding contains NaN or an infinity.
    #[error("domain '{domain}': embedding {} column {column} is {value}; embeddings must be finite, so fix or drop that row", row.map(|r| format!("row {r},")).unwrap_or_default())]
    NonFiniteEmbedding {
        /// The domain.
        domain: String,
        /// The row in the domain's embedding file, or `None` for the domain embedding itself.
        row: Option<usize>,
        /// The column (dimension index) of the value.
        column: usize,
        /// The value found.
        value: f64,
    },

    /// Two domains' embeddings have different dimensions.
    #[error("domain '{domain}' has an embedding of dimension {dimension} but domain '{other_domain}' has dimension {other_dimension}; embed every domain with the same model")]
    EmbeddingDimension {
        /// The domain whose dimension differs from the first domain's.
        domain: String,
        /// Its dimension.
        dimension: usize,
        /// The first domain.
        other_domain: String,
        /// The first domain's dimension.
        other_dimension: usize,
    },

    /// A domain has no embedding, although its policy needs one.
    #[error("domain '{domain}' has no embedding; {hint}")]
    MissingEmbedding {
        /// The domain.
        domain: String,
        /// Where the embedding was expected and what to do.
        hint: String,
    },

    /// A domain has no documents with tokens to embed.
    #[error("domain '{domain}': none of its {documents} sampled documents has a token, so it cannot be embedded; add data or remove the domain")]
    NoDocumentsToEmbed {
        /// The domain.
        domain: String,
        /// The number of documents that were offered, all empty.
        documents: usize,
    },

    /// A numeric mixture parameter is out of range.
    #[error("invalid mixture parameter: {key} = {value}; {expected}")]
    MixtureParameter {
        /// The configuration key, for example `lambda`.
        key: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range.
        expected: String,
    },

    /// An input record (a JSON line, an embedding file) is malformed.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or row when known.
        message: String,
    },

    /// An export cannot be written: its output folder or a file in it cannot be created or
    /// written, holds another export or other files, or a shard no longer matches its hash.
    #[error("{path}: {message}")]
    Output {
        /// The output folder or file.
        path: PathBuf,
        /// What failed and what to do about it.
        message: String,
    },
}

impl Error {
    /// The message followed by every underlying cause, separated by `: `.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        self.push_causes(&mut text);
        text
    }

    /// Formats the message for a shard or row group that `skip_bad_shards` leaves out, followed
    /// by every underlying cause. Unlike [`Error::chain`], it drops the hint to set
    /// `skip_bad_shards`, because skipping is already on.
    pub fn skipped_message(&self) -> String {
        let Error::Parquet { domain, path, row_group, .. } = self else {
            return self.chain();
        };
        let mut text = format!("domain '{domain}': shard {}", path.display());
        if let Some(row_group) = row_group {
            text.push_str(&format!(", row group {row_group}"));
        }
        text.push_str(": the file is truncated or corrupt");
        self.push_causes(&mut text);
        text
    }

    /// Appends every underlying cause to `text`, each after `: `.
    fn push_causes(&self, text: &mut String) {
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
    }

    /// Builds an [`Error::Config`].
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config { message: message.into() }
    }

    /// Builds an [`Error::Io`] from an action such as "cannot open shard".
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn corrupt_row_group() -> Error {
        Error::Parquet {
            domain: "books".into(),
            path: "data/books/0.parquet".into(),
            row_group: Some(3),
            source: parquet::errors::ParquetError::General("bad page header".into()),
        }
    }

    #[test]
    fn parquet_error_hints_at_skip_bad_shards() {
        assert!(corrupt_row_group().to_string().contains("set skip_bad_shards = true"));
    }

    #[test]
    fn skipped_message_drops_skip_hint() {
        let message = corrupt_row_group().skipped_message();
        assert_eq!(message, "domain 'books': shard data/books/0.parquet, row group 3: the file is truncated or corrupt: Parquet error: bad page header");
        assert!(!message.contains("skip_bad_shards"), "{message}");
    }
}
