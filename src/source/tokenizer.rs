//! Tokenizers for text domains: OpenAI's BPE vocabularies through `tiktoken-rs`, which carries
//! them, and any Hugging Face `tokenizer.json` through the `tokenizers` crate.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// The tokenizer names served by `tiktoken-rs`; `gpt2` is another name for `r50k_base`.
pub const TIKTOKEN_NAMES: [&str; 5] = ["gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base"];

/// The text that marks the end of a document in the GPT-2 family of vocabularies.
const END_OF_TEXT: &str = "<|endoftext|>";

/// A loaded tokenizer.
#[derive(Clone)]
pub enum Tokenizer {
    /// One of OpenAI's BPE vocabularies.
    Tiktoken {
        /// The name it was loaded by.
        name: String,
        /// The encoder, loaded once per process.
        bpe: &'static tiktoken_rs::CoreBPE,
    },
    /// A Hugging Face tokenizer loaded from a `tokenizer.json` file.
    HuggingFace {
        /// The file it was loaded from.
        name: String,
        /// The tokenizer.
        tokenizer: Box<tokenizers::Tokenizer>,
    },
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tokenizer").field(&self.name()).finish()
    }
}

impl Tokenizer {
    /// Loads a tokenizer by name (`gpt2`, `cl100k_base`, ...) or from a `tokenizer.json` path.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] when the name is unknown and no such file exists, or the file is not a
    /// valid tokenizer.
    pub fn load(name: &str) -> Result<Tokenizer> {
        let bpe = match name {
            "gpt2" | "r50k_base" => Some(tiktoken_rs::r50k_base_singleton()),
            "p50k_base" => Some(tiktoken_rs::p50k_base_singleton()),
            "cl100k_base" => Some(tiktoken_rs::cl100k_base_singleton()),
            "o200k_base" => Some(tiktoken_rs::o200k_base_singleton()),
            _ => None,
        };
        if let Some(bpe) = bpe {
            return Ok(Tokenizer::Tiktoken { name: name.to_string(), bpe });
        }

        if !Path::new(name).is_file() {
            return Err(Error::Tokenizer {
                name: name.to_string(),
                message: format!(
                    "not a known tokenizer name ({}) and no such tokenizer.json file",
                    TIKTOKEN_NAMES.join(", ")
                ),
            });
        }
        let tokenizer = tokenizers::Tokenizer::from_file(name)
            .map_err(|error| Error::Tokenizer { name: name.to_string(), message: format!("cannot load tokenizer.json: {error}") })?;
        Ok(Tokenizer::HuggingFace { name: name.to_string(), tokenizer: Box::new(tokenizer) })
    }

    /// The name or file the tokenizer was loaded from.
    pub fn name(&self) -> &str {
        match self {
            Tokenizer::Tiktoken { name, .. } | Tokenizer::HuggingFace { name, .. } => name,
        }
    }

    /// The id of `<|endoftext|>`, when the vocabulary has it.
    pub fn end_of_text(&self) -> Option<u32> {
        match self {
            Tokenizer::Tiktoken { bpe, .. } => match bpe.encode_with_special_tokens(END_OF_TEXT).as_slice() {
                [id] => Some(*id),
                _ => None,
            },
            Tokenizer::HuggingFace { tokenizer, .. } => tokenizer.token_to_id(END_OF_TEXT),
        }
    }

    /// Appends the token ids of `text` to `out`. Special-token text such as `<|endoftext|>` inside
    /// a document is encoded as ordinary text, so a document cannot end itself early.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] when the Hugging Face tokenizer fails on the text.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match self {
            Tokenizer::Tiktoken { bpe, .. } => out.extend(bpe.encode_ordinary(text)),
            Tokenizer::HuggingFace { name, tokenizer } => {
                let encoding = tokenizer
                    .encode_fast(text, false)
                    .map_err(|error| Error::Tokenizer { name: name.clone(), message: format!("encoding failed: {error}") })?;
                out.extend_from_slice(encoding.get_ids());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_encodes_and_knows_end_of_text() {
        let tokenizer = Tokenizer::load("gpt2").unwrap();
        let mut ids = Vec::new();
        tokenizer.encode_into("Hello world", &mut ids).unwrap();
        assert_eq!(ids, vec![15496, 995]);
        assert_eq!(tokenizer.end_of_text(), Some(50256));
    }

    #[test]
    fn end_of_text_inside_a_document_is_ordinary_text() {
        let tokenizer = Tokenizer::load("cl100k_base").unwrap();
        let mut ids = Vec::new();
        tokenizer.encode_into("a<|endoftext|>b", &mut ids).unwrap();
        assert!(!ids.contains(&100257), "{ids:?}");
        assert_eq!(tokenizer.end_of_text(), Some(100257));
    }

    #[test]
    fn unknown_name_lists_known_names() {
        let error = Tokenizer::load("gpt5").unwrap_err().to_string();
        assert!(error.contains("gpt5") && error.contains("cl100k_base"), "{error}");
    }
}
