//! Batches: what the loader hands to the trainer, and the hash that identifies a stream of them.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

/// A batch of `batch_size` packed sequences of `seq_len + 1` tokens each.
///
/// `tokens` is one contiguous buffer of shape `[batch_size, seq_len + 1]`, row-major. Row `i`'s
/// inputs are its first `seq_len` tokens and its targets its last `seq_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The step: 0 for the first batch of a run, counting on across a resume.
    pub step: u64,
    /// Tokens a sequence feeds the model.
    pub seq_len: usize,
    /// All rows' tokens, `[batch_size, seq_len + 1]`, row-major.
    pub tokens: Vec<u32>,
    /// The domain id (configuration order) of each row.
    pub domains: Vec<u32>,
    /// Every row's document starts, concatenated; see [`Batch::doc_starts`].
    pub(crate) doc_starts: Vec<u32>,
    /// Row `i`'s document starts are `doc_starts[doc_start_offsets[i]..doc_start_offsets[i + 1]]`.
    pub(crate) doc_start_offsets: Vec<usize>,
    /// Domain names by id, shared by every batch of a mixture version.
    pub(crate) domain_names: Arc<Vec<String>>,
}

impl Batch {
    /// Rows (sequences) in the batch.
    pub fn rows(&self) -> usize {
        self.domains.len()
    }

    /// Row `row`'s `seq_len + 1` tokens.
    pub fn row(&self, row: usize) -> &[u32] {
        let width = self.seq_len + 1;
        &self.tokens[row * width..(row + 1) * width]
    }

    /// Row `row`'s inputs: its first `seq_len` tokens.
    pub fn inputs(&self, row: usize) -> &[u32] {
        &self.row(row)[..self.seq_len]
    }

    /// Row `row`'s targets: its last `seq_len` tokens, the inputs shifted by one.
    pub fn targets(&self, row: usize) -> &[u32] {
        &self.row(row)[1..]
    }

    /// Positions in row `row` where a document's first token sits, ascending. A row that starts
    /// in the middle of a document has no start at 0.
    pub fn doc_starts(&self, row: usize) -> &[u32] {
        &self.doc_starts[self.doc_start_offsets[row]..self.doc_start_offsets[row + 1]]
    }

    /// The name of row `row`'s domain.
    pub fn domain_name(&self, row: usize) -> &str {
        &self.domain_names[self.domains[row] as usize]
    }

    /// The batch's hash: 128-bit XXH3 (seed 0) over each row in order, as the little-endian `u32`
    /// length of its domain name, the name's bytes, the `u32` count of its document starts, the
    /// starts as `u32`, then its `seq_len + 1` tokens as `u32`; returned as the hash's 16
    /// big-endian bytes. Equal batches hash equal whatever the domain ids. XXH3 is not a
    /// cryptographic hash: it detects any accidental difference, at memory speed.
    pub fn hash(&self) -> [u8; 16] {
        let mut hasher = Xxh3::new();
        for row in 0..self.rows() {
            let name = self.domain_name(row);
            let starts = self.doc_starts(row);
            hasher.update(&(name.len() as u32).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update(&(starts.len() as u32).to_le_bytes());
            hasher.update(as_le_bytes(starts).as_ref());
            hasher.update(as_le_bytes(self.row(row)).as_ref());
        }
        hasher.digest128().to_be_bytes()
    }
}

/// The little-endian bytes of `values`, borrowed where the platform is little-endian.
fn as_le_bytes(values: &[u32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: u32 has no padding and any byte pattern is a valid u8; the length is exact.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) })
    } else {
        std::borrow::Cow::Owned(values.iter().flat_map(|value| value.to_le_bytes()).collect())
    }
}

/// The digest of a stream of batches: 128-bit XXH3 over the concatenated 16-byte
/// [`Batch::hash`]es, in order. Two runs that yield the same batches have the same digest.
#[derive(Clone, Default)]
pub struct StreamDigest {
    hasher: Xxh3,
}

impl std::fmt::Debug for StreamDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StreamDigest").field(&self.hex()).finish()
    }
}

impl StreamDigest {
    /// Starts an empty digest.
    pub fn new() -> StreamDigest {
        StreamDigest::default()
    }

    /// Adds one batch's hash.
    pub fn update(&mut self, batch_hash: &[u8; 16]) {
        self.hasher.update(batch_hash);
    }

    /// The digest so far, as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        to_hex(&self.hasher.digest128().to_be_bytes())
    }
}

/// Formats a hash as lowercase hex digits.
pub fn to_hex(hash: &[u8]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}
