//! The output folder: what it holds, whether an export continues in it, and cleaning it.
//!
//! An export folder holds `manifest.json` and `shard-NNNNN.parquet` once finished. While an
//! export runs, it also holds the hidden progress file and at most one hidden temporary file per
//! shard, manifest or progress file being written.

use std::path::{Path, PathBuf};

use super::manifest::{is_shard_name, ExportShape, Manifest, ManifestIdentity, Progress, ShardEntry, MANIFEST_FORMAT, MANIFEST_NAME, PROGRESS_NAME};
use super::shard::{sha256_file, write_error};
use crate::error::{Error, Result};
use crate::pipeline::Fingerprint;

/// What a run finds in its output folder.
#[derive(Debug)]
pub(crate) enum Start {
    /// Nothing of this export: start at step 0.
    Fresh,
    /// An unfinished run of this export: continue after its last complete shard.
    Resume(Box<Progress>),
    /// A finished run of this export, with every shard matching its hash.
    Complete(Box<Manifest>),
}

/// What identifies the export a run makes.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub fingerprint: &'a Fingerprint,
    pub shape: ExportShape,
    pub version: &'a str,
}

/// The files of an output folder, by role.
#[derive(Debug, Default)]
struct Listing {
    manifest: bool,
    progress: bool,
    shards: Vec<String>,
    temporaries: Vec<String>,
    others: Vec<String>,
}

/// Creates the output folder if needed and decides how the run starts in it.
///
/// NOTE: nothing stops two runs from exporting into the same folder at the same time; their files
/// would mix.
///
/// With `overwrite`, the files of another export (manifest, shards, progress and temporary files)
/// are removed and other files are kept; a matching unfinished export still continues.
///
/// # Errors
///
/// [`Error::Output`] when the folder cannot be created or listed, when it holds another export or
/// other files and `overwrite` is off, and when a file cannot be removed.
pub(crate) fn prepare(output: &Path, expected: &Expected<'_>, overwrite: bool) -> Result<Start> {
    if output.exists() && !output.is_dir() {
        return Err(Error::Output { path: output.to_path_buf(), message: "exists and is not a folder; choose a folder for --output".into() });
    }
    std::fs::create_dir_all(output).map_err(|source| Error::Output {
        path: output.to_path_buf(),
        message: format!("cannot create output folder: {source}; choose a writable folder for --output"),
    })?;
    let listing = list(output)?;

    if !listing.others.is_empty() && !overwrite {
        return Err(Error::Output {
            path: output.to_path_buf(),
            message: format!(
                "holds files that are not part of this export ({}); choose an empty folder, or pass --overwrite to export into it anyway (export files are replaced, other files are kept)",
                preview(&listing.others)
            ),
        });
    }
    if !listing.others.is_empty() {
        tracing::warn!(folder = %output.display(), files = %preview(&listing.others), "keeping files that are not part of the export");
    }

    let found = if listing.manifest {
        check_manifest(output, expected)?
    } else if listing.progress {
        check_progress(output, expected)?
    } else if listing.shards.is_empty() && listing.temporaries.is_empty() {
        Ok(Start::Fresh)
    } else {
        Err(Rejection::Other("it has shards but no manifest.json or progress file".to_string()))
    };

    match found {
        Ok(start) => {
            // Shards past the progress file's last one were renamed into place just before a stop;
            // they are written again, with the same bytes.
            match &start {
                Start::Fresh => clean(output, &listing, &[], false, false)?,
                Start::Resume(progress) => clean(output, &listing, &progress.shards, false, true)?,
                Start::Complete(manifest) => clean(output, &listing, &manifest.shards, true, false)?,
            }
            Ok(start)
        }
        Err(Rejection::Other(reason) | Rejection::Damaged(reason)) if overwrite => {
            tracing::warn!(folder = %output.display(), reason = %reason, "replacing the export in the folder");
            clean(output, &listing, &[], false, false)?;
            Ok(Start::Fresh)
        }
        Err(Rejection::Other(reason)) => Err(Error::Output {
            path: output.to_path_buf(),
            message: format!("holds another export: {reason}; choose an empty folder, or pass --overwrite to replace it"),
        }),
        Err(Rejection::Damaged(reason)) => Err(Error::Output {
            path: output.to_path_buf(),
            message: format!("contains this export, but {reason}; pass --overwrite to write the export again"),
        }),
    }
}

fn list(output: &Path) -> Result<Listing> {
    let list_error = |source: std::io::Error| Error::Output { path: output.to_path_buf(), message: format!("cannot list output folder: {source}") };
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(output).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map_err(list_error)?.is_file();
        match name.as_str() {
            _ if !is_file => listing.others.push(name),
            MANIFEST_NAME => listing.manifest = true,
            PROGRESS_NAME => listing.progress = true,
            _ if is_shard_name(&name) => listing.shards.push(name),
            _ if is_temporary_name(&name) => listing.temporaries.push(name),
            _ => listing.others.push(name),
        }
    }
    listing.shards.sort();
    listing.others.sort();
    Ok(listing)
}

/// Whether `name` is the temporary name of a shard, the manifest or the progress file.
fn is_temporary_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|rest| rest.strip_suffix(".tmp")) else {
        return false;
    };
    inner == MANIFEST_NAME || inner == PROGRESS_NAME || is_shard_name(inner)
}

/// The reason an export already in the folder cannot be continued or kept.
enum Rejection {
    /// The folder contains a different export, or one this build cannot read.
    Other(String),
    /// The folder contains this export, but one of its shards is missing or fails its check.
    Damaged(String),
}

/// Checks a manifest against the expected export; `Err` gives the reason it cannot be kept.
fn check_manifest(output: &Path, expected: &Expected<'_>) -> Result<Result<Start, Rejection>> {
    let path = output.join(MANIFEST_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::io("cannot read manifest", &path, source))?;
    let identity: ManifestIdentity = match serde_json::from_str(&text) {
        Ok(identity) => identity,
        Err(error) => return Ok(Err(Rejection::Other(format!("{MANIFEST_NAME} is not a chameleon export manifest ({error})")))),
    };
    let shape = ExportShape { steps: identity.steps, shard_batches: identity.shard_batches };
    if let Some(reason) = difference(identity.format, &identity.version, &identity.fingerprint, shape, expected) {
        return Ok(Err(Rejection::Other(reason)));
    }
    if let Some(reason) = verify_shards(output, &identity.shards)? {
        return Ok(Err(Rejection::Damaged(reason)));
    }
    match serde_json::from_str::<Manifest>(&text) {
        Ok(manifest) => Ok(Ok(Start::Complete(Box::new(manifest)))),
        Err(error) => Ok(Err(Rejection::Other(format!("{MANIFEST_NAME} cannot be read ({error})")))),
    }
}

/// Checks a progress file against the expected export; `Err` gives the reason it cannot be
/// continued.
fn check_progress(output: &Path, expected: &Expected<'_>) -> Result<Result<Start, Rejection>> {
    let path = output.join(PROGRESS_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::io("cannot read progress file", &path, source))?;
    let progress: Progress = match serde_json::from_str(&text) {
        Ok(progress) => progress,
        Err(error) => return Ok(Err(Rejection::Other(format!("its progress file {PROGRESS_NAME} cannot be read ({error})")))),
    };
    if let Some(reason) = difference(progress.format, &progress.version, &progress.state.fingerprint, progress.shape, expected) {
        return Ok(Err(Rejection::Other(reason)));
    }
    if let Some(reason) = verify_shards(output, &progress.shards)? {
        return Ok(Err(Rejection::Damaged(reason)));
    }
    Ok(Ok(Start::Resume(Box::new(progress))))
}

/// Why an export of this format, version, fingerprint and shape is not the expected one.
fn difference(format: u32, version: &str, fingerprint: &Fingerprint, shape: ExportShape, expected: &Expected<'_>) -> Option<String> {
    if format != MANIFEST_FORMAT {
        return Some(format!("its format is {format}, this build writes format {MANIFEST_FORMAT}"));
    }
    if version != expected.version {
        return Some(format!("it was written by chameleon {version}, this is chameleon {}", expected.version));
    }
    let keys: std::collections::BTreeSet<&String> = fingerprint.0.keys().chain(expected.fingerprint.0.keys()).collect();
    for key in keys {
        let found = fingerprint.0.get(key);
        let current = expected.fingerprint.0.get(key);
        if found != current {
            let show = |value: Option<&String>| value.map_or_else(|| "nothing".to_string(), |value| format!("{value:?}"));
            return Some(format!("`{key}` is {} in the folder's export and {} in this configuration", show(found), show(current)));
        }
    }
    if shape != expected.shape {
        return Some(format!(
            "it has {} steps in shards of {} batches, this command makes {} steps in shards of {} batches",
            shape.steps, shape.shard_batches, expected.shape.steps, expected.shape.shard_batches
        ));
    }
    None
}

/// Checks that every listed shard exists with its recorded size and SHA-256; `Some` says which
/// one does not.
fn verify_shards(output: &Path, shards: &[ShardEntry]) -> Result<Option<String>> {
    for shard in shards {
        let path = output.join(&shard.file);
        let Ok(metadata) = std::fs::metadata(&path) else {
            return Ok(Some(format!("its shard {} is missing", shard.file)));
        };
        if metadata.len() != shard.bytes || sha256_file(&path)? != shard.sha256 {
            return Ok(Some(format!("its shard {} fails its size or SHA-256 check (damaged or changed after it was written)", shard.file)));
        }
    }
    Ok(None)
}

/// Removes the temporary files and every export file that is not kept: shards not in `shards`,
/// and the manifest and progress file unless kept.
fn clean(output: &Path, listing: &Listing, shards: &[ShardEntry], keep_manifest: bool, keep_progress: bool) -> Result<()> {
    let mut doomed: Vec<PathBuf> = listing.temporaries.iter().map(|name| output.join(name)).collect();
    let kept = |name: &String| shards.iter().any(|shard| shard.file == *name);
    doomed.extend(listing.shards.iter().filter(|name| !kept(name)).map(|name| output.join(name)));
    if listing.manifest && !keep_manifest {
        doomed.push(output.join(MANIFEST_NAME));
    }
    if listing.progress && !keep_progress {
        doomed.push(output.join(PROGRESS_NAME));
    }
    for path in doomed {
        std::fs::remove_file(&path).map_err(|source| write_error("cannot remove a file of an earlier export", &path, &source))?;
    }
    Ok(())
}

/// The first few names of a list, for a message.
fn preview(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::shard::temporary_path;

    #[test]
    fn temporary_names_of_export_files_are_recognised() {
        for name in [MANIFEST_NAME, PROGRESS_NAME, "shard-00000.parquet", "shard-123456.parquet"] {
            let temporary = temporary_path(Path::new(name));
            assert!(is_temporary_name(&temporary.to_string_lossy()), "{}", temporary.display());
        }
        for name in ["notes.txt", ".notes.txt.tmp", ".shard-x.parquet.tmp", "shard-00000.parquet.tmp"] {
            assert!(!is_temporary_name(name), "{name}");
        }
    }
}
