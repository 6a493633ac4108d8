//! Configuration: the TOML file that describes the domains, the mixture and the batches.
//!
//! [`Config::from_file`] parses and validates a file; [`Config::from_toml_str`] does the same for
//! a string, resolving relative paths against a base folder. Every key is documented in the
//! README's configuration reference.
//!
//! ```
//! let config = chameleon::Config::from_toml_str(r#"
//!     seed = 7
//!     seq_len = 16
//!     batch_size = 2
//!     eos_token = 0
//!     [[domains]]
//!     name = "books"
//!     path = "data/books"
//!     weight = 1.0
//! "#, "/tmp".as_ref()).unwrap();
//! assert_eq!(config.domains[0].path, std::path::Path::new("/tmp/data/books"));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mixture::{MixtureConfig, PolicyName};

/// The default token column of pre-tokenized domains.
pub const DEFAULT_TOKEN_COLUMN: &str = "tokens";

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seed of every random choice: domain draws and the shuffle of shards and row groups.
    /// Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// Tokens a sequence feeds the model; each row of a batch holds `seq_len + 1` tokens so that
    /// the targets are the inputs shifted by one.
    pub seq_len: usize,
    /// Rows (sequences) in a batch.
    pub batch_size: usize,
    /// End-of-document token inserted after each document, unless a domain sets its own. Text
    /// domains fall back to their tokenizer's end-of-text id; pre-tokenized domains need one.
    #[serde(default)]
    pub eos_token: Option<u32>,
    /// Tokenizer of text domains that do not name their own: `gpt2`, `r50k_base`, `p50k_base`,
    /// `cl100k_base`, `o200k_base`, or a path to a Hugging Face `tokenizer.json`.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Skip shards that are truncated or corrupt, with a warning and a count, instead of failing.
    /// Default: false.
    #[serde(default)]
    pub skip_bad_shards: bool,
    /// Sequences buffered per domain between its reader and the sampler, each of
    /// `4 * (seq_len + 1)` bytes. Default: see [`Config::prefetch_sequences_for`].
    #[serde(default)]
    pub prefetch_sequences: Option<usize>,
    /// The domains, in the order their ids are given (0, 1, ...).
    pub domains: Vec<DomainConfig>,
    /// How the weights are chosen. Default: the static policy.
    #[serde(default)]
    pub mixture: MixtureConfig,
    /// A folder watched for new domains during the run. Default: none.
    #[serde(default)]
    pub watch: Option<WatchConfig>,
}

/// The `[watch]` table: a root folder whose new subfolders become domains during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The watched folder; each new subfolder holding complete parquet shards becomes a domain
    /// named after it. Relative to the configuration file. It may be left out of the file when
    /// `chameleon stream --watch DIR` sets it.
    #[serde(default)]
    pub root: PathBuf,
    /// Milliseconds between two looks at the folder. Default: 1000.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Static weight of new domains (used by the static policy).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Token column of new domains. Default: `tokens`.
    #[serde(default)]
    pub column: Option<String>,
    /// Text column of new domains, tokenized on the fly.
    #[serde(default)]
    pub text_column: Option<String>,
    /// Tokenizer of new text domains. Default: the top-level `tokenizer`.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// End-of-document token of new domains. Default: the top-level `eos_token`.
    #[serde(default)]
    pub eos_token: Option<u32>,
}

fn default_poll_interval_ms() -> u64 {
    1000
}

impl WatchConfig {
    /// A watch of `root` with every other key at its default.
    pub fn new(root: impl Into<PathBuf>) -> WatchConfig {
        WatchConfig { root: root.into(), poll_interval_ms: default_poll_interval_ms(), weight: None, column: None, text_column: None, tokenizer: None, eos_token: None }
    }

    /// The configuration of the domain a new subfolder becomes.
    pub fn domain(&self, name: &str, path: &Path) -> DomainConfig {
        DomainConfig {
            name: name.to_string(),
            path: path.to_path_buf(),
            weight: self.weight,
            column: self.column.clone(),
            text_column: self.text_column.clone(),
            tokenizer: self.tokenizer.clone(),
            eos_token: self.eos_token,
        }
    }
}

/// One domain: a folder (or glob) of parquet shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Unique name, used in logs, errors, statistics and the loader state.
    pub name: String,
    /// A folder (every `*.parquet` file in it, sorted by name) or a glob pattern. Relative paths
    /// are resolved against the configuration file's folder.
    pub path: PathBuf,
    /// Weight under the static policy. Weights are normalised to sum to 1.
    #[serde(default)]
    pub weight: Option<f64>,
    /// Token column of pre-tokenized shards: a list or large list of integers. Default: `tokens`.
    #[serde(default)]
    pub column: Option<String>,
    /// Text column to tokenize on the fly; when set, `column` must not be.
    #[serde(default)]
    pub text_column: Option<String>,
    /// Tokenizer of this domain's text column, overriding the top-level `tokenizer`.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// End-of-document token of this domain, overriding the top-level `eos_token`.
    #[serde(default)]
    pub eos_token: Option<u32>,
}

/// Where a domain's documents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentColumn {
    /// A list column of token ids.
    Tokens(String),
    /// A string column tokenized on the fly by the named tokenizer.
    Text {
        /// The column.
        column: String,
        /// The tokenizer name or `tokenizer.json` path.
        tokenizer: String,
    },
}

impl DomainConfig {
    /// The column this domain reads and how to turn it into tokens.
    pub fn document_column(&self, config: &Config) -> Result<DocumentColumn> {
        match (&self.text_column, &self.column) {
            (Some(_), Some(_)) => Err(Error::config(format!(
                "domain '{}' sets both `column` and `text_column`; keep `column` for token ids or `text_column` for text",
                self.name
            ))),
            (Some(text), None) => {
                let Some(tokenizer) = self.tokenizer.clone().or_else(|| config.tokenizer.clone()) else {
                    return Err(Error::config(format!(
                        "domain '{}' reads text column '{text}' but names no tokenizer; set `tokenizer` on the domain or at the top level",
                        self.name
                    )));
                };
                Ok(DocumentColumn::Text { column: text.clone(), tokenizer })
            }
            (None, column) => Ok(DocumentColumn::Tokens(column.clone().unwrap_or_else(|| DEFAULT_TOKEN_COLUMN.to_string()))),
        }
    }
}

impl Config {
    /// Reads and validates a configuration file. Relative paths are resolved against the file's
    /// folder and made absolute, so a state or an export manifest names the same shards from any
    /// working directory.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, [`Error::ConfigParse`] when it is not valid TOML
    /// of this shape, and [`Error::Config`] when a value is invalid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let config = Config::read_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a configuration file and resolves its paths like [`Config::from_file`], without
    /// validating it, for a caller that changes it first (as `chameleon stream --watch` does) and
    /// then calls [`Config::validate`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, and [`Error::ConfigParse`] when it is not valid
    /// TOML of this shape.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::io("cannot read configuration file", path, source))?;
        let folder = path.parent().filter(|folder| !folder.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = folder.canonicalize().unwrap_or_else(|_| folder.to_path_buf());
        let mut config: Config = toml::from_str(&text).map_err(|source| Error::ConfigParse { path: path.to_path_buf(), source })?;
        config.resolve_paths(&base);
        Ok(config)
    }

    /// Parses and validates a configuration from TOML text; relative paths are resolved against
    /// `base`.
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`], with `<string>` as the file name.
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Config> {
        let mut config: Config =
            toml::from_str(text).map_err(|source| Error::ConfigParse { path: PathBuf::from("<string>"), source })?;
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// The index of the domain called `name`.
    pub fn domain_index(&self, name: &str) -> Option<usize> {
        self.domains.iter().position(|domain| domain.name == name)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for domain in &mut self.domains {
            if domain.path.is_relative() {
                domain.path = base.join(&domain.path);
            }
        }
        if let Some(tokenizer) = &self.tokenizer {
            self.tokenizer = Some(resolve_tokenizer(tokenizer, base));
        }
        if let Some(watch) = &mut self.watch {
            if watch.root.is_relative() && !watch.root.as_os_str().is_empty() {
                watch.root = base.join(&watch.root);
            }
        }
        if let Some(embeddings) = &self.mixture.embeddings {
            if embeddings != "hashed" && Path::new(embeddings).is_relative() {
                self.mixture.embeddings = Some(base.join(embeddings).to_string_lossy().into_owned());
            }
        }
        for domain in &mut self.domains {
            if let Some(tokenizer) = &domain.tokenizer {
                domain.tokenizer = Some(resolve_tokenizer(tokenizer, base));
            }
        }
    }

    /// Returns the bound of each domain's channel, in sequences, when the loader has `domains`
    /// domains: `prefetch_sequences` when set, and otherwise about 2 MiB of tokens a domain (255
    /// sequences at `seq_len = 2048`), fewer when all domains together would pass 64 MiB, and at
    /// least 4.
    ///
    /// Deep channels keep the sampler from waiting while a reader decodes its next record batch.
    /// On two cores, 256 sequences streamed 10 to 20 % faster than 64. The overall cap keeps a
    /// loader of hundreds of domains from buffering gigabytes.
    pub fn prefetch_sequences_for(&self, domains: usize) -> usize {
        const DOMAIN_TOKENS: usize = 1 << 19;
        const TOTAL_TOKENS: usize = 1 << 24;
        if let Some(sequences) = self.prefetch_sequences {
            return sequences;
        }
        let tokens = DOMAIN_TOKENS.min(TOTAL_TOKENS / domains.max(1));
        (tokens / (self.seq_len + 1)).max(4)
    }

    /// Checks every value that can be checked without opening a shard, and that no shard file
    /// belongs to two domains.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key and the value, or both domains of a shared shard.
    pub fn validate(&self) -> Result<()> {
        if self.seq_len == 0 {
            return Err(Error::config("seq_len is 0; it must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size is 0; it must be at least 1"));
        }
        if self.prefetch_sequences == Some(0) {
            return Err(Error::config("prefetch_sequences is 0; it must be at least 1"));
        }
        if self.domains.is_empty() {
            return Err(Error::config("no domains; add at least one [[domains]] table"));
        }
        self.mixture.validate()?;

        let mut names = HashMap::new();
        let mut paths: HashMap<PathBuf, &str> = HashMap::new();
        for domain in &self.domains {
            if domain.name.is_empty() {
                return Err(Error::config(format!("a domain at {} has an empty name", domain.path.display())));
            }
            if names.insert(domain.name.as_str(), ()).is_some() {
                return Err(Error::config(format!("domain name '{}' is used twice; names must be unique", domain.name)));
            }
            let key = std::fs::canonicalize(&domain.path).unwrap_or_else(|_| domain.path.clone());
            if let Some(other) = paths.insert(key, &domain.name) {
                return Err(Error::config(format!(
                    "domains '{other}' and '{}' read the same path {}; a folder can belong to one domain only",
                    domain.name,
                    domain.path.display()
                )));
            }
            domain.document_column(self)?;
        }
        if let Some(watch) = &self.watch {
            if watch.root.as_os_str().is_empty() {
                return Err(Error::config("the [watch] table has no `root`; set `root = \"DIR\"` in it or pass --watch DIR to chameleon stream"));
            }
            if watch.weight.is_none() && self.mixture.policy == PolicyName::Static {
                return Err(Error::config(format!(
                    "the watched folder {} has no `weight` for new domains, and the static policy needs one for every domain; set `weight` in the [watch] table (or pass --watch-weight to chameleon stream)",
                    watch.root.display()
                )));
            }
        }
        check_shared_shards(&self.domains)
    }
}

/// Rejects a shard that two domains would both read, however their paths spell it: the same
/// folder, a glob over it, one of its files, or a symbolic link to it.
///
/// Domains whose shards cannot be listed are passed over here; opening the domain reports them.
fn check_shared_shards(domains: &[DomainConfig]) -> Result<()> {
    let mut owners: HashMap<PathBuf, &str> = HashMap::new();
    for domain in domains {
        let Ok(shards) = crate::source::find_shards(&domain.name, &domain.path) else {
            continue;
        };
        for shard in shards {
            let key = std::fs::canonicalize(&shard).unwrap_or(shard);
            match owners.get(&key) {
                Some(other) if *other != domain.name => {
                    return Err(Error::config(format!(
                        "domains '{other}' and '{}' both read shard {}; a shard can belong to one domain only, so fix the `path` of one of them",
                        domain.name,
                        key.display()
                    )));
                }
                _ => {
                    owners.insert(key, &domain.name);
                }
            }
        }
    }
    Ok(())
}

/// Resolves a tokenizer that names a file relative to `base`; known tokenizer names stay as they
/// are.
fn resolve_tokenizer(tokenizer: &str, base: &Path) -> String {
    let looks_like_path = tokenizer.ends_with(".json") || tokenizer.contains('/');
    if looks_like_path && Path::new(tokenizer).is_relative() {
        base.join(tokenizer).to_string_lossy().into_owned()
    } else {
        tokenizer.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml_str(text, Path::new("/base"))
    }

    const HEADER: &str = "seq_len = 8\nbatch_size = 2\neos_token = 0\n";

    #[test]
    fn relative_paths_resolve_against_base() {
        let config = parse(&format!("{HEADER}[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n")).unwrap();
        assert_eq!(config.domains[0].path, Path::new("/base/data/a"));
        assert_eq!(config.seed, 0);
        assert_eq!(config.prefetch_sequences, None);
    }

    #[test]
    fn file_paths_are_absolute_and_resolved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("mix.toml"), format!("{HEADER}[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n")).unwrap();
        let direct = Config::from_file(dir.path().join("mix.toml")).unwrap();
        let roundabout = Config::from_file(dir.path().join("sub/../mix.toml")).unwrap();
        assert!(direct.domains[0].path.is_absolute());
        assert_eq!(direct.domains[0].path, roundabout.domains[0].path);
    }

    #[test]
    fn static_watch_needs_a_weight() {
        let text = format!("{HEADER}[watch]\nroot = 'incoming'\n[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("set `weight` in the [watch] table"), "{error}");
        assert!(parse(&text.replace("root = 'incoming'", "root = 'incoming'\nweight = 0.1")).is_ok());
    }

    #[test]
    fn mixture_keys_checked_for_every_policy() {
        for (policy, key) in [("online-exp3", "smoothing = 2.0"), ("online-exp3", "smoothing = -0.5"), ("static", "embed_documents = 0")] {
            let text = format!("{HEADER}[mixture]\npolicy = '{policy}'\n{key}\n[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n");
            let error = parse(&text).unwrap_err().to_string();
            let name = key.split(' ').next().unwrap();
            assert!(error.contains(name), "{policy} with {key}: {error}");
        }
    }

    #[test]
    fn watch_root_may_come_later() {
        let text = format!("{HEADER}[watch]\nweight = 0.1\n[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("has no `root`"), "{error}");

        let mut config: Config = toml::from_str(&text).unwrap();
        config.watch.as_mut().unwrap().root = PathBuf::from("/incoming");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn prefetch_default_shrinks_with_domains() {
        let mut config = parse(&format!("{HEADER}[[domains]]\nname = 'a'\npath = 'data/a'\nweight = 1\n")).unwrap();
        config.seq_len = 2048;
        assert_eq!(config.prefetch_sequences_for(1), 255);
        assert_eq!(config.prefetch_sequences_for(32), 255);
        assert_eq!(config.prefetch_sequences_for(300), 27);
        assert_eq!(config.prefetch_sequences_for(10_000), 4);
        config.prefetch_sequences = Some(7);
        assert_eq!(config.prefetch_sequences_for(300), 7);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let error = parse(&format!("{HEADER}seq_length = 3\n[[domains]]\nname = 'a'\npath = 'a'\n")).unwrap_err().chain();
        assert!(error.contains("seq_length"), "{error}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let text = format!("{HEADER}[[domains]]\nname = 'a'\npath = 'x'\n[[domains]]\nname = 'a'\npath = 'y'\n");
        let error = parse(&text).unwrap_err();
        assert!(error.to_string().contains("'a' is used twice"), "{error}");
    }

    #[test]
    fn same_folder_twice_names_both_domains() {
        let text = format!("{HEADER}[[domains]]\nname = 'a'\npath = 'x'\n[[domains]]\nname = 'b'\npath = 'x'\n");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("'a'") && error.contains("'b'"), "{error}");
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let error = parse("seq_len = 0\nbatch_size = 1\n[[domains]]\nname = 'a'\npath = 'x'\n").unwrap_err();
        assert!(error.to_string().contains("seq_len is 0"), "{error}");
        let error = parse("seq_len = 1\nbatch_size = 0\n[[domains]]\nname = 'a'\npath = 'x'\n").unwrap_err();
        assert!(error.to_string().contains("batch_size is 0"), "{error}");
    }

    #[test]
    fn text_column_needs_a_tokenizer() {
        let error = parse(&format!("{HEADER}[[domains]]\nname = 'a'\npath = 'x'\ntext_column = 'text'\n")).unwrap_err();
        assert!(error.to_string().contains("names no tokenizer"), "{error}");
    }

    #[test]
    fn tokenizer_file_resolves_against_base() {
        let text = format!("{HEADER}tokenizer = 'tok/gpt2.json'\n[[domains]]\nname = 'a'\npath = 'x'\ntext_column = 'text'\n");
        let config = parse(&text).unwrap();
        let column = config.domains[0].document_column(&config).unwrap();
        assert_eq!(column, DocumentColumn::Text { column: "text".into(), tokenizer: "/base/tok/gpt2.json".into() });
    }
}
