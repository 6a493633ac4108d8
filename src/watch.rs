//! Watched folders: new domain folders that appear under a root while a run goes on.
//!
//! A [`FolderWatcher`] polls a root folder. Each subfolder that is not yet a domain is a candidate;
//! it becomes a [`NewDomain`] once it holds at least one shard and every shard in it is complete:
//! its size and modification time are unchanged since the previous poll and its parquet footer
//! parses. The [`WatcherThread`] polls every `poll_interval_ms`, and a quarter of that while a
//! candidate folder is pending, so a complete folder is taken within about 1.25 intervals. Hidden files (the
//! temporary names writers use, such as `.part-0.parquet.tmp`) and files without the `.parquet`
//! extension are ignored, so a folder being copied in is taken only when the copy is done.
//!
//! ```
//! use chameleon::watch::FolderWatcher;
//!
//! let root = tempfile::tempdir().unwrap();
//! let mut watcher = FolderWatcher::new(root.path(), ["books".to_string()]);
//! assert!(watcher.poll().unwrap().is_empty());
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::source::is_shard_name;

/// A subfolder whose shards are complete, ready to become a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDomain {
    /// The subfolder's name, used as the domain's name.
    pub name: String,
    /// The subfolder.
    pub path: PathBuf,
    /// Its shards, sorted by name.
    pub shards: Vec<PathBuf>,
}

/// What one poll saw of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSighting {
    size: u64,
    modified: Option<SystemTime>,
}

/// Polls a root folder for new, complete domain folders.
#[derive(Debug)]
pub struct FolderWatcher {
    root: PathBuf,
    /// Subfolder names that are domains already (configured, or reported by an earlier poll).
    known: HashSet<String>,
    /// Per candidate subfolder, what the previous poll saw of each shard.
    sightings: BTreeMap<String, BTreeMap<PathBuf, FileSighting>>,
}

impl FolderWatcher {
    /// Watches `root`; subfolders named in `known` are domains already and never reported.
    pub fn new(root: impl Into<PathBuf>, known: impl IntoIterator<Item = String>) -> FolderWatcher {
        FolderWatcher { root: root.into(), known: known.into_iter().collect(), sightings: BTreeMap::new() }
    }

    /// The watched folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a candidate folder with shards has been seen and not yet reported.
    pub fn has_candidates(&self) -> bool {
        self.sightings.values().any(|shards| !shards.is_empty())
    }

    /// Marks a subfolder as a domain already, so that it is never reported.
    pub fn mark_known(&mut self, name: &str) {
        self.known.insert(name.to_string());
        self.sightings.remove(name);
    }

    /// Looks at the root once and returns the subfolders that became complete since the last
    /// poll, sorted by name. Each is reported once.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the root cannot be listed. Files that vanish or cannot be read between
    /// listing and checking are treated as incomplete, not as errors.
    pub fn poll(&mut self) -> Result<Vec<NewDomain>> {
        let entries = std::fs::read_dir(&self.root).map_err(|source| Error::io("cannot list watched folder", &self.root, source))?;
        let mut subfolders = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !self.known.contains(&name) && entry.path().is_dir() {
                subfolders.push((name, entry.path()));
            }
        }
        subfolders.sort();

        let mut ready = Vec::new();
        for (name, path) in subfolders {
            let now = sight_shards(&path);
            let before = self.sightings.insert(name.clone(), now.clone());
            if now.is_empty() || before.as_ref() != Some(&now) {
                continue;
            }
            if now.keys().all(|shard| has_valid_footer(shard)) {
                self.mark_known(&name);
                ready.push(NewDomain { name, path, shards: now.into_keys().collect() });
            }
        }
        Ok(ready)
    }
}

/// The size and modification time of every shard in `folder`; empty when it cannot be listed.
fn sight_shards(folder: &Path) -> BTreeMap<PathBuf, FileSighting> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|entry| is_shard_name(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let metadata = entry.metadata().ok().filter(|metadata| metadata.is_file())?;
            Some((entry.path(), FileSighting { size: metadata.len(), modified: metadata.modified().ok() }))
        })
        .collect()
}

/// Whether `path` ends with a parquet footer that parses: the `PAR1` magic, and file metadata of
/// the length the footer states.
pub fn has_valid_footer(path: &Path) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let Ok(length) = file.seek(SeekFrom::End(0)) else {
        return false;
    };
    if length < 12 {
        return false;
    }
    let mut tail = [0u8; 8];
    if file.seek(SeekFrom::End(-8)).is_err() || file.read_exact(&mut tail).is_err() || &tail[4..] != b"PAR1" {
        return false;
    }
    let metadata_length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if metadata_length + 12 > length {
        return false;
    }
    let mut footer = vec![0u8; metadata_length as usize + 8];
    if file.seek(SeekFrom::End(-(metadata_length as i64) - 8)).is_err() || file.read_exact(&mut footer).is_err() {
        return false;
    }
    parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer[..metadata_length as usize]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_shard(path: &Path) {
        use std::sync::Arc;

        use arrow::array::{RecordBatch, UInt32Array};
        use arrow::datatypes::{DataType, Field, Schema};

        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::UInt32, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(UInt32Array::from(vec![1, 2, 3]))]).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn folder_is_taken_after_one_stable_poll() {
        let root = tempfile::tempdir().unwrap();
        let mut watcher = FolderWatcher::new(root.path(), []);
        std::fs::create_dir(root.path().join("web")).unwrap();
        write_shard(&root.path().join("web/0.parquet"));

        assert!(watcher.poll().unwrap().is_empty(), "first sighting");
        let ready = watcher.poll().unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].name, "web");
        assert!(watcher.poll().unwrap().is_empty(), "reported once");
    }

    #[test]
    fn temporary_and_truncated_files_wait() {
        let root = tempfile::tempdir().unwrap();
        let mut watcher = FolderWatcher::new(root.path(), []);
        std::fs::create_dir(root.path().join("web")).unwrap();
        write_shard(&root.path().join("web/.0.parquet.tmp"));
        assert!(watcher.poll().unwrap().is_empty());
        assert!(watcher.poll().unwrap().is_empty(), "a folder of temporary files only is not a domain");

        write_shard(&root.path().join("web/0.parquet"));
        let bytes = std::fs::read(root.path().join("web/0.parquet")).unwrap();
        std::fs::write(root.path().join("web/0.parquet"), &bytes[..bytes.len() - 3]).unwrap();
        assert!(watcher.poll().unwrap().is_empty());
        assert!(watcher.poll().unwrap().is_empty(), "a shard without a valid footer waits");

        std::fs::write(root.path().join("web/0.parquet"), &bytes).unwrap();
        assert!(watcher.poll().unwrap().is_empty(), "the size changed");
        assert_eq!(watcher.poll().unwrap().len(), 1);
    }

    #[test]
    fn known_domains_are_never_reported() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("books")).unwrap();
        write_shard(&root.path().join("books/0.parquet"));
        let mut watcher = FolderWatcher::new(root.path(), ["books".to_string()]);
        assert!(watcher.poll().unwrap().is_empty());
        assert!(watcher.poll().unwrap().is_empty());
    }
}

/// A thread that polls a watched folder and adds each complete new subfolder to a loader's
/// mixture through its handle. Dropping it stops the thread.
#[derive(Debug)]
pub struct WatcherThread {
    stop: Option<crossbeam_channel::Sender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl WatcherThread {
    /// Starts watching `watch.root`; subfolders named in `known` are never added.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the root is not a readable folder or the thread cannot start.
    pub fn spawn(watch: crate::config::WatchConfig, known: Vec<String>, handle: crate::pipeline::MixtureHandle) -> Result<WatcherThread> {
        let mut watcher = FolderWatcher::new(&watch.root, known);
        watcher.poll()?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let interval = std::time::Duration::from_millis(watch.poll_interval_ms.max(1));
        // A folder seen with shards is looked at again sooner, so a complete folder is taken
        // about a quarter interval after it is first seen rather than a whole interval.
        let recheck = interval / 4;
        let root = watch.root.clone();
        let worker = std::thread::Builder::new()
            .name("chameleon-watcher".into())
            .spawn(move || {
                // A message or a disconnect on `stopped` ends the loop; a timeout is a poll.
                let mut wait = interval;
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    let ready = match watcher.poll() {
                        Ok(ready) => ready,
                        Err(error) => {
                            tracing::warn!(%error, "cannot poll the watched folder; trying again at the next poll");
                            continue;
                        }
                    };
                    for domain in ready {
                        tracing::info!(domain = %domain.name, shards = domain.shards.len(), "new domain folder is complete");
                        let spec = crate::pipeline::DomainSpec { config: watch.domain(&domain.name, &domain.path), embedding: crate::pipeline::EmbeddingInput::Hashed };
                        if handle.add_domain(spec).is_err() {
                            return;
                        }
                    }
                    wait = if watcher.has_candidates() { recheck } else { interval };
                }
            })
            .map_err(|source| Error::io("cannot start the watcher thread for", root, source))?;
        Ok(WatcherThread { stop: Some(stop), worker: Some(worker) })
    }
}

impl Drop for WatcherThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
