//! Packer: a domain's documents, each followed by the end-of-document token, cut into sequences
//! of `seq_len + 1` tokens.
//!
//! A document longer than the room left in a sequence continues at the start of the domain's next
//! sequence, so no token is dropped or repeated. Each sequence records where documents start in
//! it (the index of a document's first token), for document masks. Empty documents contribute
//! nothing, not even an end-of-document token.
//!
//! ```
//! use chameleon::packer::Packer;
//!
//! // Documents of 5, 2, 3 and 1 tokens, end-of-document token 0, sequences of 4 + 1 tokens.
//! let mut packer = Packer::new(4, 0);
//! let mut sequences = Vec::new();
//! for document in [&[1, 1, 1, 1, 1][..], &[2, 2], &[3, 3, 3], &[4]] {
//!     packer.push(document, 0, |sequence, _| sequences.push(sequence));
//! }
//! assert_eq!(sequences[0].tokens, [1, 1, 1, 1, 1]);
//! assert_eq!(sequences[1].tokens, [0, 2, 2, 0, 3]);
//! assert_eq!(sequences[1].doc_starts, [1, 4]);
//! assert_eq!(sequences[2].tokens, [3, 3, 0, 4, 0]);
//! assert_eq!(sequences[2].doc_starts, [3]);
//! ```

/// One packed sequence of `seq_len + 1` tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackedSequence {
    /// The tokens.
    pub tokens: Vec<u32>,
    /// Positions in `tokens` where a document's first token sits, ascending.
    pub doc_starts: Vec<u32>,
}

/// Packs one domain's documents into sequences.
#[derive(Debug)]
pub struct Packer {
    sequence_tokens: usize,
    eos_token: u32,
    current: PackedSequence,
    /// Emptied sequences handed back by [`Packer::recycle`], filled before new ones are allocated.
    spare: Vec<PackedSequence>,
}

/// Spare sequences a packer keeps at most; more are freed.
const MAX_SPARE_SEQUENCES: usize = 8;

impl Packer {
    /// Makes a packer for sequences of `seq_len + 1` tokens, appending `eos_token` after each
    /// document.
    ///
    /// # Panics
    ///
    /// When `seq_len` is 0; configurations are validated to have `seq_len >= 1`.
    pub fn new(seq_len: usize, eos_token: u32) -> Packer {
        assert!(seq_len >= 1, "seq_len is validated to be at least 1");
        let sequence_tokens = seq_len + 1;
        Packer { sequence_tokens, eos_token, current: Self::empty_sequence(sequence_tokens), spare: Vec::new() }
    }

    /// Appends `document` followed by the end-of-document token, starting `skip` tokens into that
    /// stream (to continue a document cut by a resume). Calls `on_full` with each sequence that
    /// fills up, and with the number of tokens of this document's stream (document plus end token)
    /// consumed when it filled.
    pub fn push(&mut self, document: &[u32], skip: usize, mut on_full: impl FnMut(PackedSequence, usize)) {
        if document.is_empty() {
            return;
        }
        let stream_len = document.len() + 1;
        let mut position = skip.min(stream_len);

        while position < stream_len {
            if position == 0 {
                self.current.doc_starts.push(self.current.tokens.len() as u32);
            }
            let room = self.sequence_tokens - self.current.tokens.len();
            let from_document = document.len().saturating_sub(position).min(room);
            self.current.tokens.extend_from_slice(&document[position..position + from_document]);
            position += from_document;
            if position == document.len() && self.current.tokens.len() < self.sequence_tokens {
                self.current.tokens.push(self.eos_token);
                position += 1;
            }

            if self.current.tokens.len() == self.sequence_tokens {
                let next = self.spare.pop().unwrap_or_else(|| Self::empty_sequence(self.sequence_tokens));
                let full = std::mem::replace(&mut self.current, next);
                on_full(full, position);
            }
        }
    }

    /// Keeps the buffers of a sequence the consumer is done with, so that a later sequence reuses
    /// them instead of allocating: a fresh buffer per sequence cost about three times as much in
    /// the hand-off benchmark (`benches/handoff.rs`).
    pub fn recycle(&mut self, mut sequence: PackedSequence) {
        if self.spare.len() >= MAX_SPARE_SEQUENCES || sequence.tokens.capacity() < self.sequence_tokens {
            return;
        }
        sequence.tokens.clear();
        sequence.doc_starts.clear();
        self.spare.push(sequence);
    }

    /// Tokens waiting in the sequence being filled.
    pub fn pending_tokens(&self) -> usize {
        self.current.tokens.len()
    }

    fn empty_sequence(sequence_tokens: usize) -> PackedSequence {
        PackedSequence { tokens: Vec::with_capacity(sequence_tokens), doc_starts: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(seq_len: usize, documents: &[Vec<u32>]) -> Vec<PackedSequence> {
        let mut packer = Packer::new(seq_len, u32::MAX);
        let mut sequences = Vec::new();
        for document in documents {
            packer.push(document, 0, |sequence, _| sequences.push(sequence));
        }
        sequences
    }

    #[test]
    fn every_token_appears_once_in_order() {
        let documents: Vec<Vec<u32>> = (0..50u32).map(|d| (0..(d * 7 % 23 + 1)).map(|t| d * 1000 + t).collect()).collect();
        for seq_len in [1, 2, 3, 4, 7, 64, 8193] {
            let sequences = pack(seq_len, &documents);
            let packed: Vec<u32> = sequences.iter().flat_map(|s| s.tokens.iter().copied()).collect();
            let mut expected: Vec<u32> = documents.iter().flat_map(|d| d.iter().copied().chain([u32::MAX])).collect();
            expected.truncate(packed.len());
            assert_eq!(packed, expected, "seq_len {seq_len}");
            assert!(sequences.iter().all(|s| s.tokens.len() == seq_len + 1));
        }
    }

    #[test]
    fn doc_starts_point_at_first_tokens() {
        let documents: Vec<Vec<u32>> = (1..40u32).map(|d| vec![d; (d % 5 + 1) as usize]).collect();
        for sequence in pack(6, &documents) {
            for &start in &sequence.doc_starts {
                let start = start as usize;
                assert!(start == 0 || sequence.tokens[start - 1] == u32::MAX, "{sequence:?}");
                assert_ne!(sequence.tokens[start], u32::MAX);
            }
        }
    }

    #[test]
    fn empty_documents_contribute_nothing() {
        let sequences = pack(2, &[vec![], vec![5], vec![], vec![6]]);
        assert_eq!(sequences, vec![PackedSequence { tokens: vec![5, u32::MAX, 6], doc_starts: vec![0, 2] }]);
    }

    #[test]
    fn skip_continues_a_document() {
        let mut packer = Packer::new(3, 0);
        let mut sequences = Vec::new();
        packer.push(&[1, 2, 3, 4, 5], 2, |sequence, consumed| sequences.push((sequence, consumed)));
        assert_eq!(sequences.len(), 1);
        assert_eq!(sequences[0].0.tokens, [3, 4, 5, 0]);
        assert!(sequences[0].0.doc_starts.is_empty());
        assert_eq!(sequences[0].1, 6);
    }

    #[test]
    fn recycled_buffers_are_emptied() {
        let mut packer = Packer::new(2, 0);
        packer.recycle(PackedSequence { tokens: vec![9; 3], doc_starts: vec![1] });
        let mut sequences = Vec::new();
        packer.push(&[1, 2, 3, 4, 5], 0, |sequence, _| sequences.push(sequence));
        assert_eq!(sequences[0].tokens, [1, 2, 3]);
        assert_eq!(sequences[1].tokens, [4, 5, 0]);
        assert!(sequences[1].doc_starts.is_empty());
    }

    #[test]
    fn seq_len_one_splits_every_pair() {
        let sequences = pack(1, &[vec![7, 8, 9]]);
        let tokens: Vec<_> = sequences.iter().map(|s| s.tokens.clone()).collect();
        assert_eq!(tokens, vec![vec![7, 8], vec![9, u32::MAX]]);
        assert_eq!(sequences[0].doc_starts, vec![0]);
        assert!(sequences[1].doc_starts.is_empty());
    }
}
