//! Source: a domain's parquet shards, and the documents read from them.
//!
//! [`DomainSource::open`] finds a domain's shards, maps them into memory, parses their footers
//! and checks the document column of each, so that a bad configuration fails before the first
//! batch. Readers then decode one row group at a time ([`Shard::read_row_group`]) into
//! [`DocumentRows`] ([`decode_tokens`], [`decode_text`]).

mod decode;
mod pages;
mod sample;
mod shard;
mod tokenizer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use decode::{check_text_type, check_token_type, decode_text, decode_tokens, BatchOrigin, DocumentRows, TokenId};
pub use pages::{PageBuffers, TokenPages};
pub use sample::sample_documents;
pub use shard::Shard;
pub use tokenizer::{Tokenizer, TIKTOKEN_NAMES};

use crate::config::{Config, DocumentColumn};
use crate::error::{Error, Result};

/// How a domain's column becomes tokens.
#[derive(Debug, Clone)]
pub enum ColumnReader {
    /// A list column of token ids.
    Tokens {
        /// The column name.
        column: String,
    },
    /// A text column and the tokenizer that encodes it.
    Text {
        /// The column name.
        column: String,
        /// The tokenizer, shared by the domains that name it.
        tokenizer: Arc<Tokenizer>,
    },
}

impl ColumnReader {
    /// The column name.
    pub fn column(&self) -> &str {
        match self {
            ColumnReader::Tokens { column } | ColumnReader::Text { column, .. } => column,
        }
    }
}

/// A shard left out because it is not readable, with the reason.
#[derive(Debug, Clone)]
pub struct SkippedShard {
    /// The file.
    pub path: PathBuf,
    /// Why it was left out.
    pub reason: String,
}

/// An opened domain: its shards, how to read them, and its end-of-document token.
#[derive(Debug, Clone)]
pub struct DomainSource {
    /// The domain's name.
    pub name: String,
    /// The readable shards, in file-name order.
    pub shards: Vec<Shard>,
    /// Shards left out at start because `skip_bad_shards` is set and they are not readable.
    pub skipped: Vec<SkippedShard>,
    /// How the document column becomes tokens.
    pub reader: ColumnReader,
    /// The token appended after each document.
    pub eos_token: u32,
}

impl DomainSource {
    /// Opens domain `index` of `config`, loading tokenizers through `tokenizers` so that domains
    /// naming the same tokenizer share one.
    ///
    /// # Errors
    ///
    /// [`Error::NoShards`] when no shard is found, [`Error::Parquet`] or [`Error::Io`] for an
    /// unreadable shard (unless `skip_bad_shards` is set), [`Error::Schema`] for a missing or
    /// mistyped column, [`Error::Config`] when no end-of-document token is known, and
    /// [`Error::Tokenizer`] when the tokenizer cannot be loaded.
    pub fn open(config: &Config, index: usize, tokenizers: &mut HashMap<String, Arc<Tokenizer>>) -> Result<DomainSource> {
        let domain = &config.domains[index];
        let reader = match domain.document_column(config)? {
            DocumentColumn::Tokens(column) => ColumnReader::Tokens { column },
            DocumentColumn::Text { column, tokenizer } => {
                let tokenizer = match tokenizers.get(&tokenizer) {
                    Some(loaded) => Arc::clone(loaded),
                    None => {
                        let loaded = Arc::new(Tokenizer::load(&tokenizer)?);
                        tokenizers.insert(tokenizer, Arc::clone(&loaded));
                        loaded
                    }
                };
                ColumnReader::Text { column, tokenizer }
            }
        };
        let eos_token = eos_token(config, index, &reader)?;

        let paths = find_shards(&domain.name, &domain.path)?;
        let mut shards = Vec::with_capacity(paths.len());
        let mut skipped = Vec::new();
        for path in paths {
            match open_checked(&domain.name, &path, &reader) {
                Ok(shard) => shards.push(shard),
                Err(error @ (Error::Parquet { .. } | Error::Io { .. })) if config.skip_bad_shards => {
                    let reason = error.skipped_message();
                    tracing::warn!(domain = %domain.name, shard = %path.display(), error = %reason, "skipping unreadable shard");
                    skipped.push(SkippedShard { path, reason });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(DomainSource { name: domain.name.clone(), shards, skipped, reader, eos_token })
    }

    /// How the domain's column becomes tokens, in words: the column and, for text, the tokenizer.
    pub fn reader_description(&self) -> String {
        match &self.reader {
            ColumnReader::Tokens { column } => format!("token column '{column}'"),
            ColumnReader::Text { column, tokenizer } => format!("text column '{column}' tokenized by '{}'", tokenizer.name()),
        }
    }

    /// Rows in all readable shards, null and empty rows included.
    pub fn num_rows(&self) -> u64 {
        self.shards.iter().map(Shard::num_rows).sum()
    }
}

/// The end-of-document token of domain `index`: the domain's own, else the configuration's, else
/// (for text) the tokenizer's end-of-text id.
fn eos_token(config: &Config, index: usize, reader: &ColumnReader) -> Result<u32> {
    let domain = &config.domains[index];
    if let Some(token) = domain.eos_token.or(config.eos_token) {
        return Ok(token);
    }
    match reader {
        ColumnReader::Text { tokenizer, .. } => tokenizer.end_of_text().ok_or_else(|| {
            Error::config(format!(
                "domain '{}': tokenizer '{}' has no <|endoftext|> token; set `eos_token`",
                domain.name,
                tokenizer.name()
            ))
        }),
        ColumnReader::Tokens { .. } => Err(Error::config(format!(
"domain '{}' reads pre-tokenized ids and no end-of-document token is set; set `eos_token` at the top level or on the domain, or `text_column` if the domain holds text (`[watch] text_column` or `--watch-text-column` for a watched folder)",
            domain.name
        ))),
    }
}

/// Opens a shard and checks the type of its document column.
fn open_checked(domain: &str, path: &Path, reader: &ColumnReader) -> Result<Shard> {
    let shard = Shard::open(domain, path, reader.column())?;
    let checked = match reader {
        ColumnReader::Tokens { .. } => check_token_type(shard.column_type()),
        ColumnReader::Text { .. } => check_text_type(shard.column_type()),
    };
    checked.map_err(|message| Error::Schema {
        domain: domain.to_string(),
        path: path.to_path_buf(),
        message: format!("column '{}': {message}", reader.column()),
    })?;
    Ok(shard)
}

/// Lists a domain's shards: every `*.parquet` file in a folder (hidden files left out, sorted by
/// name), the files a glob matches (sorted), or a single parquet file.
///
/// # Errors
///
/// [`Error::NoShards`] when nothing is found, [`Error::Io`] when the folder cannot be listed.
pub fn find_shards(domain: &str, path: &Path) -> Result<Vec<PathBuf>> {
    let pattern = path.to_string_lossy();
    let mut shards = if pattern.contains(['*', '?', '[']) {
        let matches = glob::glob(&pattern).map_err(|error| Error::config(format!("domain '{domain}': invalid glob '{pattern}': {error}")))?;
        matches.filter_map(|entry| entry.ok()).filter(|path| path.is_file()).collect::<Vec<_>>()
    } else if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| Error::io("cannot list domain folder", path, source))?;
        let mut shards = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::io("cannot list domain folder", path, source))?;
            if is_shard_name(&entry.file_name().to_string_lossy()) && entry.path().is_file() {
                shards.push(entry.path());
            }
        }
        shards
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(Error::NoShards { domain: domain.to_string(), path: path.to_path_buf(), hint: "the folder does not exist; check `path`" });
    };

    if shards.is_empty() {
        return Err(Error::NoShards {
            domain: domain.to_string(),
            path: path.to_path_buf(),
            hint: "expected *.parquet files in the folder or matching the glob",
        });
    }
    shards.sort();
    Ok(shards)
}

/// Whether a file name is a shard: `*.parquet`, not hidden (temporary files start with a dot).
pub fn is_shard_name(name: &str) -> bool {
    name.ends_with(".parquet") && !name.starts_with('.')
}
