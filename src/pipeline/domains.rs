//! What the loader needs to know of each domain for its mixture: token counts and embeddings.

use crate::error::{Error, Result};
use crate::mixture::embedder::HashedEmbedder;
use crate::mixture::embeddings::load_embeddings;
use crate::mixture::{EmbeddingSource, MixtureConfig, PolicyName};
use crate::source::{sample_documents, ColumnReader, DomainSource};

use super::handle::EmbeddingInput;
use super::mixing::MixtureDomain;

/// Average bytes of text per GPT-2 style token, for estimating a text domain's token count from
/// its column size.
const TEXT_BYTES_PER_TOKEN: u64 = 4;

/// The number of tokens of a domain: exact up to empty rows for token columns (the leaf value
/// count), estimated at four bytes per token for text columns.
///
/// NOTE: the text estimate is rough for code and non-English text; the token-count policies
/// (`proportional`, `temperature`, `unimax`) over text domains are only as good as it is.
pub fn token_count(source: &DomainSource) -> u64 {
    match source.reader {
        ColumnReader::Tokens { .. } => source.shards.iter().map(|shard| shard.column_values()).sum(),
        ColumnReader::Text { .. } => source.shards.iter().map(|shard| shard.column_bytes()).sum::<u64>() / TEXT_BYTES_PER_TOKEN,
    }
}

/// Whether the policy (or an online policy's prior) needs domain embeddings.
pub fn needs_embeddings(config: &MixtureConfig) -> bool {
    let chameleon = |policy: PolicyName| matches!(policy, PolicyName::ChameleonPretrain | PolicyName::ChameleonFinetune);
    chameleon(config.policy) || (config.policy == PolicyName::OnlineExp3 && config.prior.is_some_and(chameleon))
}

/// Embeds a domain as the mixture configuration says: with the hashed embedder over a seeded
/// sample of its documents, or from the embeddings file.
///
/// # Errors
///
/// [`Error::Config`] when the policy needs embeddings and `embeddings` is not set, or the file
/// has no entry for the domain; reading and embedding errors otherwise.
pub fn embed_domain(config: &MixtureConfig, seed: u64, source: &DomainSource) -> Result<Vec<f64>> {
    match config.embedding_source() {
        None => Err(Error::config(format!(
            "policy '{}' needs domain embeddings; set [mixture] embeddings = \"hashed\" or a path to .npy files or a safetensors file",
            config.policy.as_str()
        ))),
        Some(EmbeddingSource::Hashed) => embed_hashed(config, seed, source),
        Some(EmbeddingSource::Path(path)) => {
            let embeddings = load_embeddings(&path)?;
            embeddings.get(&source.name).cloned().ok_or_else(|| {
                Error::config(format!("embeddings at {} have no entry for domain '{}'; add {}.npy or a tensor of that name", path.display(), source.name, source.name))
            })
        }
    }
}

/// Embeds a new domain from the input its spec gives.
///
/// # Errors
///
/// As [`embed_domain`], and for a file that cannot be read.
pub fn embed_new_domain(config: &MixtureConfig, seed: u64, source: &DomainSource, input: &EmbeddingInput) -> Result<Vec<f64>> {
    match input {
        EmbeddingInput::Hashed => embed_hashed(config, seed, source),
        EmbeddingInput::Vector(vector) => Ok(vector.clone()),
        EmbeddingInput::File(path) => {
            let embeddings = load_embeddings(path)?;
            if let Some(embedding) = embeddings.get(&source.name) {
                return Ok(embedding.clone());
            }
            match embeddings.len() {
                1 => Ok(embeddings.into_values().next().expect("one entry")),
                _ => Err(Error::config(format!("embedding file {} has no entry for domain '{}'", path.display(), source.name))),
            }
        }
    }
}

fn embed_hashed(config: &MixtureConfig, seed: u64, source: &DomainSource) -> Result<Vec<f64>> {
    let documents = sample_documents(source, config.embed_documents, seed)?;
    let embedder = HashedEmbedder::new(HashedEmbedder::DEFAULT_BUCKETS, config.embed_dimension, seed)?;
    embedder.embed_domain(&source.name, documents.iter().map(Vec::as_slice))
}

/// The mixture's view of a freshly opened domain; the embedding is filled in when needed.
pub fn mixture_domain(source: &DomainSource, weight: Option<f64>) -> MixtureDomain {
    MixtureDomain { name: source.name.clone(), active: true, weight, tokens: Some(token_count(source)), embedding: None }
}
