//! chameleon: a streaming data loader for language-model training with built-in domain
//! reweighting.
//!
//! A training corpus comes in domains (code, books, web, ...), each a folder of parquet shards.
//! chameleon reads each domain with its own reader thread, picks the domain of every training
//! sequence with a seeded weighted draw, packs documents into fixed-length sequences and hands
//! batches to the trainer as a plain iterator.
//!
//! The data flows through these modules, in order:
//!
//! - [`config`]: the TOML configuration ([`Config`]).
//! - [`source`]: shards (memory-mapped parquet), token and text columns, tokenizers.
//! - [`mixture`]: the weight of each domain, from a policy.
//! - [`sampler`]: the seeded weighted multinomial draw of each sequence's domain.
//! - [`packer`]: documents cut into sequences of `seq_len + 1` tokens.
//! - [`pipeline`]: reader threads, bounded channels, and the [`Loader`] iterator.
//! - [`batch`]: the [`Batch`] handed to the trainer, and the stream digest.
//! - [`tokenize`]: pre-tokenizing text shards into token shards.
//! - [`watch`]: new domain folders that appear under a watched root during a run.
//! - [`export`]: the stream written to parquet shards with a manifest, resumable after a kill.
//!
//! # Example
//!
//! ```no_run
//! use chameleon::{Config, Loader};
//!
//! let config = Config::from_file("fixtures/mix.toml")?;
//! let loader = Loader::builder(config).threads(2).build()?;
//! for batch in loader.take(10) {
//!     let batch = batch?;
//!     for row in 0..batch.rows() {
//!         let (inputs, targets) = (batch.inputs(row), batch.targets(row));
//!         assert_eq!(inputs.len(), targets.len());
//!     }
//! }
//! # Ok::<(), chameleon::Error>(())
//! ```
//!
//! `cargo run --release --example train_loop` trains a small model on the fixtures this way.
#![deny(missing_docs)]

pub mod batch;
pub mod config;
pub mod error;
pub mod export;
pub mod mixture;
pub mod packer;
pub mod pipeline;
pub mod sampler;
pub mod source;
pub mod tokenize;
pub mod watch;

pub use batch::{Batch, StreamDigest};
pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::{DomainStats, Loader, LoaderBuilder, LoaderState, Partition};
