//! The reader of one domain: a thread that decodes row groups in epoch order, packs the documents
//! into sequences and sends them to the sampler over a bounded channel.
//!
//! Backpressure: when the channel is full the reader blocks, so a domain holds at most
//! `prefetch_sequences` sequences plus one decoded record batch. When the loader is dropped the
//! channel disconnects, the next send fails and the reader returns. Decoding (parquet decode, id
//! conversion, tokenization) holds one of the loader's decode permits, which is how `threads`
//! bounds the CPU the readers use together.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_channel::{Receiver, Sender};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use serde::{Deserialize, Serialize};

use super::order::EpochPlan;
use super::state::Partition;
use crate::error::{Error, Result};
use crate::packer::{PackedSequence, Packer};
use crate::source::{decode_text, decode_tokens, BatchOrigin, ColumnReader, DocumentRows, DomainSource, PageBuffers, TokenPages};

/// A position in a domain's stream of tokens, with the counts gathered before it.
///
/// The position is the end of the last sequence the consumer took from the domain: epoch `epoch`,
/// unit `unit` of that epoch's order, row `row` of the unit's row group, and `offset` tokens into
/// that row's document followed by its end-of-document token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCursor {
    /// The epoch, from 0.
    pub epoch: u64,
    /// The unit (row group) within the epoch's order.
    pub unit: u64,
    /// The row within the unit's row group.
    pub row: u64,
    /// Tokens of the row's document stream (document plus end token) already used.
    pub offset: u64,
    /// Null rows skipped before this position.
    pub null_rows: u64,
    /// Unreadable row groups skipped before this position (only with `skip_bad_shards`).
    pub skipped_row_groups: u64,
}

/// A packed sequence and the cursor just past it.
#[derive(Debug)]
pub struct Sequence {
    /// The tokens and document starts.
    pub packed: PackedSequence,
    /// Where the domain's stream continues after this sequence.
    pub end: DomainCursor,
    /// The channel on which [`Sequence::recycle`] sends the buffers back to the reader.
    spare: Sender<PackedSequence>,
}

impl Sequence {
    /// Hands the buffers back to the domain's reader for a later sequence, once the consumer has
    /// copied the tokens out. Dropping the sequence instead is correct too, and frees them.
    pub fn recycle(self) {
        let _ = self.spare.try_send(self.packed);
    }
}

/// Emptied sequences waiting to return to a reader; more are freed.
const SPARE_SEQUENCES: usize = 16;

/// Decode permits shared by all readers: a permit is a message in a bounded channel.
#[derive(Debug, Clone)]
pub struct Permits {
    give: Sender<()>,
    take: Receiver<()>,
}

impl Permits {
    /// Makes `count` permits (at least 1).
    pub fn new(count: usize) -> Permits {
        let count = count.max(1);
        let (give, take) = crossbeam_channel::bounded(count);
        for _ in 0..count {
            give.send(()).expect("the channel has room for every permit");
        }
        Permits { give, take }
    }

    fn acquire(&self) -> PermitGuard<'_> {
        // Both ends live in `self`, so the channel cannot disconnect while we wait.
        self.take.recv().expect("permit channel outlives its users");
        PermitGuard { permits: self }
    }
}

struct PermitGuard<'a> {
    permits: &'a Permits,
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        let _ = self.permits.give.send(());
    }
}

/// Everything a reader thread needs.
pub struct ReaderTask {
    /// The domain's shards and column.
    pub source: DomainSource,
    /// The configuration's seed.
    pub seed: u64,
    /// Tokens a sequence feeds the model.
    pub seq_len: usize,
    /// Where to start.
    pub start: DomainCursor,
    /// Skip unreadable row groups instead of failing.
    pub skip_bad_shards: bool,
    /// Which part of the domain this rank reads.
    pub partition: Partition,
    /// Where the sequences go.
    pub sender: Sender<Result<Sequence>>,
    /// The shared decode permits.
    pub permits: Permits,
    /// Fault injection for tests: panic after sending this many sequences.
    pub panic_after: Option<u64>,
}

/// Runs a reader to the end: until the consumer disconnects or an error has been sent. A panic
/// inside is caught and sent as [`Error::ReaderPanicked`].
pub fn run(task: ReaderTask) {
    let sender = task.sender.clone();
    let domain = task.source.name.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| read_domain(task)));
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Error::ReaderPanicked { domain, message }
        }
    };
    let _ = sender.send(Err(error));
}

/// Whether the reader should go on after sending.
enum Flow {
    Continue,
    Disconnected,
}

/// Reads epoch after epoch. Returns `Ok` when the consumer disconnects.
fn read_domain(task: ReaderTask) -> Result<()> {
    let source = &task.source;
    let mut packer = Packer::new(task.seq_len, source.eos_token);
    let mut rows = DocumentRows::default();
    let mut buffers = PageBuffers::default();
    let (spare_sender, spare) = crossbeam_channel::bounded(SPARE_SEQUENCES);
    let mut cursor = task.start;
    let mut sent = 0u64;
    let mut resume_offset = task.start.offset;

    loop {
        let plan = EpochPlan::new(task.seed, &source.name, cursor.epoch, &source.shards, task.partition);
        let units = &plan.units;
        if units.is_empty() {
            return Err(empty_domain(source, "every shard has zero rows"));
        }
        let full_epoch = cursor.unit == 0 && cursor.row == 0 && resume_offset == 0;
        let mut produced = false;

        for unit_index in cursor.unit as usize..units.len() {
            if !plan.reads_unit(unit_index) {
                continue;
            }
            let unit = units[unit_index];
            let shard = &source.shards[unit.shard];
            let first_row = if unit_index as u64 == cursor.unit { cursor.row } else { 0 };
            cursor.unit = unit_index as u64;
            cursor.row = first_row;

            // Reading ahead one row group overlaps its disk reads with decoding this one.
            shard.prefetch_row_group(unit.row_group);
            if let Some(next) = (unit_index + 1..units.len()).find(|&index| plan.reads_unit(index)) {
                source.shards[units[next].shard].prefetch_row_group(units[next].row_group);
            }
            let opened = match shard.read_token_pages(&source.name, unit.row_group) {
                Ok(Some(pages)) => Ok(RowGroupReader::Pages(pages)),
                Ok(None) => shard.read_row_group(&source.name, unit.row_group).map(RowGroupReader::Arrow),
                Err(error) => Err(error),
            };
            let mut reader = match opened {
                Ok(reader) => reader,
                Err(error) if task.skip_bad_shards => {
                    skip_row_group(source, &mut cursor, &error);
                    continue;
                }
                Err(error) => return Err(error),
            };

            let mut row_base = 0u64;
            loop {
                let origin = BatchOrigin { domain: &source.name, path: &shard.path, row_group: unit.row_group, first_row: row_base as usize };
                let decoded = {
                    let _permit = task.permits.acquire();
                    reader.next_rows(&source.reader, origin, &mut buffers, &mut rows)
                };
                match decoded {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error @ Error::Parquet { .. }) if task.skip_bad_shards => {
                        skip_row_group(source, &mut cursor, &error);
                        break;
                    }
                    Err(error) => return Err(error),
                }

                for index in 0..rows.len() {
                    let row = row_base + index as u64;
                    if row < first_row || !plan.reads_row(unit_index, row) {
                        continue;
                    }
                    cursor.row = row;
                    let document = rows.document(index);
                    if document.is_empty() {
                        if rows.is_null(index) {
                            cursor.null_rows += 1;
                        }
                        continue;
                    }
                    produced = true;

                    for sequence in spare.try_iter() {
                        packer.recycle(sequence);
                    }
                    let skip = std::mem::take(&mut resume_offset) as usize;
                    let mut flow = Flow::Continue;
                    packer.push(document, skip, |packed, consumed| {
                        if matches!(flow, Flow::Disconnected) {
                            return;
                        }
                        let end = DomainCursor { offset: consumed as u64, ..cursor };
                        if task.sender.send(Ok(Sequence { packed, end, spare: spare_sender.clone() })).is_err() {
                            flow = Flow::Disconnected;
                        }
                        sent += 1;
                        if task.panic_after.is_some_and(|limit| sent >= limit) {
                            panic!("injected reader panic after {sent} sequences");
                        }
                    });
                    if matches!(flow, Flow::Disconnected) {
                        return Ok(());
                    }
                }
                row_base += rows.len() as u64;
            }
            shard.release_pages();
        }

        if full_epoch && !produced {
            let reason = if task.partition.world_size > 1 {
                format!(
                    "rank {} of {} got no document in a whole epoch; every row of its share is null or empty, or the domain has fewer documents than ranks",
                    task.partition.rank, task.partition.world_size
                )
            } else {
                "every row is null or an empty document".to_string()
            };
            return Err(empty_domain(source, &reason));
        }
        cursor = DomainCursor { epoch: cursor.epoch + 1, unit: 0, row: 0, offset: 0, ..cursor };
        resume_offset = 0;
    }
}

/// One row group's document column, read either straight from its pages (token lists of
/// `INT32` or `INT64` ids) or through arrow record batches (everything else, text included).
enum RowGroupReader {
    Pages(TokenPages),
    Arrow(ParquetRecordBatchReader),
}

impl RowGroupReader {
    /// Decodes the next chunk of rows into `rows`; `Ok(false)` at the end of the row group.
    fn next_rows(&mut self, column: &ColumnReader, origin: BatchOrigin<'_>, buffers: &mut PageBuffers, rows: &mut DocumentRows) -> Result<bool> {
        let reader = match self {
            RowGroupReader::Pages(pages) => return pages.next_rows(origin, buffers, rows),
            RowGroupReader::Arrow(reader) => reader,
        };
        let Some(record_batch) = reader.next() else {
            return Ok(false);
        };
        let record_batch = record_batch.map_err(|source| Error::Parquet {
            domain: origin.domain.to_string(),
            path: origin.path.to_path_buf(),
            row_group: Some(origin.row_group),
            source: source.into(),
        })?;
        match column {
            ColumnReader::Tokens { .. } => decode_tokens(record_batch.column(0), origin, rows)?,
            ColumnReader::Text { tokenizer, .. } => decode_text(record_batch.column(0), tokenizer, origin, rows)?,
        }
        Ok(true)
    }
}

fn skip_row_group(source: &DomainSource, cursor: &mut DomainCursor, error: &Error) {
    cursor.skipped_row_groups += 1;
    tracing::warn!(domain = %source.name, error = %error.skipped_message(), skipped = cursor.skipped_row_groups, "skipping unreadable row group");
}

fn empty_domain(source: &DomainSource, reason: &str) -> Error {
    let reason = if source.skipped.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} ({} unreadable shards were skipped)", source.skipped.len())
    };
    Error::EmptyDomain { domain: source.name.clone(), reason }
}
