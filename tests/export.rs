//! `chameleon export` and `chameleon inspect`: the exported shards contain the stream, survive
//! kill -9, reject a folder with other content, and read back with pyarrow and datasets.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int32Type, UInt32Type};
use chameleon::export::{self, ExportOptions, Manifest};
use chameleon::{Config, Loader};
use common::{fixtures, numbered_documents, temp_dir, write_tokens};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn chameleon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chameleon")).args(args).output().expect("the binary runs")
}

fn success(args: &[&str]) -> String {
    let output = chameleon(args);
    assert!(output.status.success(), "chameleon {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn failure(args: &[&str]) -> String {
    let output = chameleon(args);
    assert!(!output.status.success(), "chameleon {args:?} should fail");
    String::from_utf8(output.stderr).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&success(args)).unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The arguments of an export of the fixture mixture: `steps` batches of 8 rows x 513 tokens, in
/// shards of `shard_batches` batches.
fn fixture_export_args(output: &Path, steps: u64, shard_batches: u64) -> Vec<String> {
    let batch_tokens = 8 * 513;
    let config = fixtures().join("mix.toml");
    ["export", "--config", path_str(&config), "--output", path_str(output)]
        .iter()
        .map(ToString::to_string)
        .chain(["--tokens".to_string(), (steps * batch_tokens).to_string(), "--shard-tokens".to_string(), (shard_batches * batch_tokens).to_string()])
        .collect()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn read_manifest(folder: &Path) -> Manifest {
    serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap()).unwrap()
}

/// One row of a shard, as read back with the parquet crate.
#[derive(Debug, PartialEq)]
struct Row {
    tokens: Vec<u32>,
    domain: String,
    doc_starts: Vec<i32>,
}

fn read_shard(path: &Path) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let tokens = batch.column_by_name("tokens").unwrap().as_list::<i32>();
        let domains = batch.column_by_name("domain").unwrap().as_dictionary::<Int32Type>();
        let names = domains.values().as_string::<i32>();
        let doc_starts = batch.column_by_name("doc_starts").unwrap().as_list::<i32>();
        for row in 0..batch.num_rows() {
            rows.push(Row {
                tokens: tokens.value(row).as_primitive::<UInt32Type>().values().to_vec(),
                domain: names.value(domains.keys().value(row) as usize).to_string(),
                doc_starts: doc_starts.value(row).as_primitive::<Int32Type>().values().to_vec(),
            });
        }
    }
    rows
}

/// Every file of a folder, by name, with its bytes.
fn folder_files(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap())
        .map(|entry| (entry.file_name().into_string().unwrap(), std::fs::read(entry.path()).unwrap()))
        .collect()
}

fn assert_same_files(expected: &Path, actual: &Path, context: &str) {
    let expected = folder_files(expected);
    let actual = folder_files(actual);
    assert_eq!(expected.keys().collect::<Vec<_>>(), actual.keys().collect::<Vec<_>>(), "{context}: file names differ");
    for (name, bytes) in &expected {
        assert!(actual[name] == *bytes, "{context}: {name} differs");
    }
}

/// Two domains of numbered documents written as token shards by arrow-rs.
fn token_domains(root: &Path) -> Config {
    write_tokens(&root.join("a/shard-0.parquet"), &numbered_documents(0, 40, 30), 7);
    write_tokens(&root.join("a/shard-1.parquet"), &numbered_documents(40, 25, 30), 10);
    write_tokens(&root.join("b/shard-0.parquet"), &numbered_documents(100, 60, 12), 16);
    common::config(11, 16, 4, &[("a", &root.join("a"), 0.6), ("b", &root.join("b"), 0.4)])
}

#[test]
fn export_digest_matches_stream() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    let summary = json(&as_strs(&[fixture_export_args(&output, 30, 7), vec!["--json".into()]].concat()));
    let stream = json(&["stream", "--config", path_str(&fixtures().join("mix.toml")), "--json", "--steps", "30"]);

    assert_eq!(summary["digest"], stream["digest"]);
    assert_eq!(summary["steps"], 30);
    assert_eq!(summary["shards"], 5, "30 steps in shards of 7 batches");
    let manifest = read_manifest(&output);
    assert_eq!(manifest.digest, stream["digest"].as_str().unwrap());
    assert_eq!(manifest.steps, 30);
    assert_eq!(manifest.tokens, 30 * 8 * 513);
    assert_eq!(manifest.mixture_versions.len(), 1);
    assert_eq!(manifest.mixture_versions[0].domains.len(), 6);
    let stream_tokens: Vec<u64> = stream["domains"].as_array().unwrap().iter().map(|domain| domain["tokens"].as_u64().unwrap()).collect();
    assert_eq!(manifest.domains.iter().map(|domain| domain.tokens).collect::<Vec<_>>(), stream_tokens);

    for shard in &manifest.shards {
        let path = output.join(&shard.file);
        let rows = read_shard(&path);
        assert_eq!(rows.len() as u64, shard.rows, "{}", shard.file);
        assert_eq!(rows.iter().map(|row| row.tokens.len() as u64).sum::<u64>(), shard.tokens, "{}", shard.file);
        assert_eq!(export::sha256_file(&path).unwrap(), shard.sha256, "{}", shard.file);
    }
    assert_eq!(manifest.shards.iter().map(|shard| shard.batches).collect::<Vec<_>>(), [7, 7, 7, 7, 2]);
    assert!(!output.join(".progress.json").exists(), "the progress file is removed at the end");
}

#[test]
fn export_rows_equal_loader_batches() {
    let dir = temp_dir();
    let config = token_domains(dir.path());
    let mut options = ExportOptions::new(dir.path().join("export"), 1000);
    options.shard_tokens = 200;
    options.threads = Some(2);
    let report = export::export(&config, &options, &mut |_| {}).unwrap();

    // 1000 tokens in batches of 4 x 17 = 68 tokens is 15 steps; 200 tokens per shard is 3 batches.
    assert_eq!(report.manifest.steps, 15);
    assert_eq!(report.manifest.shard_batches, 3);
    assert_eq!(report.manifest.shards.len(), 5);
    let rows: Vec<Row> = report.manifest.shards.iter().flat_map(|shard| read_shard(&options.output.join(&shard.file))).collect();
    let loader = Loader::builder(config.clone()).threads(1).build().unwrap();
    let expected: Vec<Row> = loader
        .take(15)
        .flat_map(|batch| {
            let batch = batch.unwrap();
            (0..batch.rows())
                .map(|row| Row {
                    tokens: batch.row(row).to_vec(),
                    domain: batch.domain_name(row).to_string(),
                    doc_starts: batch.doc_starts(row).iter().map(|&start| start as i32).collect(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rows, expected);

    let schema = ParquetRecordBatchReaderBuilder::try_new(File::open(options.output.join("shard-00000.parquet")).unwrap()).unwrap().schema().clone();
    assert!(matches!(schema.field_with_name("tokens").unwrap().data_type(), DataType::List(item) if item.data_type() == &DataType::UInt32));
    assert_eq!(schema.field_with_name("domain").unwrap().data_type(), &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)));
    assert!(matches!(schema.field_with_name("doc_starts").unwrap().data_type(), DataType::List(item) if item.data_type() == &DataType::Int32));

    let before = folder_files(&options.output);
    let again = export::export(&config, &options, &mut |_| {}).unwrap();
    assert!(again.already_complete);
    assert_eq!(folder_files(&options.output), before, "a rerun of a finished export changes nothing");
}

#[test]
fn interrupted_export_resumes_byte_identical() {
    let dir = temp_dir();
    let config = token_domains(dir.path());
    let mut options = ExportOptions::new(dir.path().join("whole"), 2000);
    options.shard_tokens = 300;
    export::export(&config, &options, &mut |_| {}).unwrap();

    // Shards hold 5 batches of 68 tokens. Stop inside the first shard, while its last batch is
    // written, just after it, and inside a later shard.
    for stopped_batches in [1u64, 5, 6, 17] {
        let stop_after_tokens = stopped_batches * 68;
        let mut interrupted = options.clone();
        interrupted.output = dir.path().join(format!("stopped-{stop_after_tokens}"));
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            export::export(&config, &interrupted, &mut |progress| {
                if progress.tokens_done >= stop_after_tokens {
                    panic!("stop the export");
                }
            })
        }));
        assert!(stopped.is_err(), "the export stopped after {stop_after_tokens} tokens");
        assert!(!interrupted.output.join("manifest.json").exists());

        let report = export::export(&config, &interrupted, &mut |_| {}).unwrap();
        assert_eq!(report.first_step, (stopped_batches - 1) / 5 * 5, "continues after the last complete shard");
        assert_same_files(&options.output, &interrupted.output, &format!("stopped after {stop_after_tokens} tokens"));
    }
}

/// Shard files in `folder` under their final names.
fn finished_shards(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries.filter(|entry| export::is_shard_name(&entry.as_ref().unwrap().file_name().to_string_lossy())).count()
}

#[test]
fn kill_at_three_moments_resumes_byte_identical() {
    let seed: u64 = std::env::var("CHAMELEON_TEST_SEED").ok().and_then(|value| value.parse().ok()).unwrap_or(20_240_607);
    println!("kill moment seed {seed} (set CHAMELEON_TEST_SEED to change it)");
    // Shards of 48 batches take long enough that a kill at most 80 ms after the 18th shard still
    // lands before the 20th: about 100 ms each in a debug build, estimated from 25 ms for 12 batches.
    let (steps, shard_batches) = (960, 48);
    let dir = temp_dir();
    let whole = dir.path().join("whole");
    success(&as_strs(&fixture_export_args(&whole, steps, shard_batches)));
    assert_eq!(read_manifest(&whole).shards.len(), 20);

    // Each kill waits for a seeded number of finished shards (none, some, most), then a seeded
    // delay of up to 80 ms, so that it lands before the first shard, inside a shard, or between a
    // shard's rename and the progress file that records it. A kill that comes too late on a fast
    // machine is tried again with half the delay.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let targets = [0, rng.random_range(1..10), rng.random_range(10..19)];
    let mut resumed_later = 0;
    for (trial, target) in targets.into_iter().enumerate() {
        let output = dir.path().join(format!("killed-{trial}"));
        let mut delay = Duration::from_millis(rng.random_range(0..80));
        for attempt in 0.. {
            assert!(attempt < 4, "trial {trial}: every kill came after the export finished");
            let _ = std::fs::remove_dir_all(&output);
            if kill_export(&dir, &output, trial, target, delay, steps, shard_batches) {
                break;
            }
            delay /= 2;
        }

        let summary = json(&as_strs(&[fixture_export_args(&output, steps, shard_batches), vec!["--json".into()]].concat()));
        if summary["first_step"].as_u64().unwrap() > 0 {
            resumed_later += 1;
        }
        assert_same_files(&whole, &output, &format!("trial {trial}, killed {delay:?} after {target} shards"));
    }
    assert!(resumed_later >= 2, "the later kills came after complete shards, so their reruns continued from them");
}

/// Starts an export, kills it `delay` after `target` shards are finished, and returns whether
/// the kill came before the export finished.
fn kill_export(dir: &tempfile::TempDir, output: &Path, trial: usize, target: usize, delay: Duration, steps: u64, shard_batches: u64) -> bool {
    let stderr_path = dir.path().join(format!("killed-{trial}.stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_chameleon"))
        .args(fixture_export_args(output, steps, shard_batches))
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !output.join(".progress.json").exists() || finished_shards(output) < target {
        assert!(Instant::now() < deadline, "trial {trial}: the export did not reach {target} shards within 120 s");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    println!("trial {trial}: killed {delay:?} after {target} shards were finished: {status}, {} shards on disk", finished_shards(output));
    if !status.success() && status.code().is_some() {
        panic!("trial {trial}: the export failed: {}", std::fs::read_to_string(&stderr_path).unwrap());
    }
    !output.join("manifest.json").exists()
}

#[test]
fn damaged_shard_named_on_rerun() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    success(&as_strs(&fixture_export_args(&output, 6, 3)));
    let shard = output.join(&read_manifest(&output).shards[1].file);
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();

    let error = failure(&as_strs(&fixture_export_args(&output, 6, 3)));
    assert!(error.contains("contains this export, but its shard"), "{error}");
    assert!(error.contains("fails its size or SHA-256 check"), "{error}");
    assert!(!error.contains("another export"), "{error}");
    success(&as_strs(&[fixture_export_args(&output, 6, 3), vec!["--overwrite".into()]].concat()));
    assert_eq!(std::fs::read(&shard).unwrap(), bytes, "--overwrite writes the same shard again");
}

#[test]
fn other_export_needs_overwrite() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    success(&as_strs(&fixture_export_args(&output, 6, 3)));

    let error = failure(&as_strs(&fixture_export_args(&output, 9, 3)));
    assert!(error.contains("holds another export"), "{error}");
    assert!(error.contains("6 steps"), "{error}");
    assert!(error.contains("--overwrite"), "{error}");
    assert!(error.contains(path_str(&output)), "{error}");
    let replaced = json(&as_strs(&[fixture_export_args(&output, 9, 3), vec!["--overwrite".into(), "--json".into()]].concat()));
    assert_eq!(replaced["steps"], 9);
    assert_eq!(read_manifest(&output).steps, 9);
    assert_eq!(folder_files(&output).len(), 4, "manifest and three shards, no leftovers");

    let other_seed = dir.path().join("seed.toml");
    let text = std::fs::read_to_string(fixtures().join("mix.toml")).unwrap().replace("seed = 1234", "seed = 99").replace("path = \"domains/", &format!("path = \"{}/domains/", fixtures().display()));
    std::fs::write(&other_seed, text).unwrap();
    let mut args = fixture_export_args(&output, 9, 3);
    args[2] = path_str(&other_seed).to_string();
    let error = failure(&as_strs(&args));
    assert!(error.contains("`seed`"), "the error names the differing field: {error}");
}

#[test]
fn folder_with_other_files_needs_overwrite() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(output.join("notes.txt"), "keep me").unwrap();

    let error = failure(&as_strs(&fixture_export_args(&output, 4, 2)));
    assert!(error.contains("not part of this export"), "{error}");
    assert!(error.contains("notes.txt"), "{error}");
    assert!(!output.join("manifest.json").exists());
    success(&as_strs(&[fixture_export_args(&output, 4, 2), vec!["--overwrite".into()]].concat()));
    assert_eq!(std::fs::read_to_string(output.join("notes.txt")).unwrap(), "keep me");
    assert_eq!(read_manifest(&output).shards.len(), 2);
}

#[test]
fn changed_shard_is_detected_on_resume() {
    let dir = temp_dir();
    let config = token_domains(dir.path());
    let mut options = ExportOptions::new(dir.path().join("export"), 2000);
    options.shard_tokens = 300;
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        export::export(&config, &options, &mut |progress| {
            if progress.tokens_done >= 12 * 68 {
                panic!("stop the export");
            }
        })
    }));
    assert!(stopped.is_err());
    std::fs::write(options.output.join("shard-00001.parquet"), b"not parquet").unwrap();

    let error = export::export(&config, &options, &mut |_| {}).unwrap_err().to_string();
    assert!(error.contains("shard-00001.parquet fails its size or SHA-256 check"), "{error}");
    assert!(error.contains("contains this export"), "{error}");
    assert!(error.contains("--overwrite"), "{error}");
    options.overwrite = true;
    let report = export::export(&config, &options, &mut |_| {}).unwrap();
    assert_eq!(report.first_step, 0, "--overwrite starts again");
}

#[test]
fn unwritable_output_is_clear_error() {
    let dir = temp_dir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();

    // Permission bits do not bind root, so the folder is made impossible to create instead.
    let below_file = file.join("export");
    let error = failure(&as_strs(&fixture_export_args(&below_file, 2, 1)));
    assert!(error.contains(path_str(&below_file)), "{error}");
    assert!(error.contains("cannot create output folder"), "{error}");
    assert!(error.contains("--output"), "{error}");

    let error = failure(&as_strs(&fixture_export_args(&file, 2, 1)));
    assert!(error.contains(path_str(&file)), "{error}");
    assert!(error.contains("not a folder"), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// A mounted tmpfs, unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_is_clear_error() {
    let dir = temp_dir();
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&small).stderr(Stdio::null()).status();
    if !matches!(mounted, Ok(status) if status.success()) {
        println!("skipping: cannot mount a 1 MiB tmpfs (mounting needs root)");
        return;
    }
    let _mount = Mount(small.clone());

    // A shard of 100 fixture batches takes about 0.6 MB, so the second shard fills the disk.
    let output = small.join("export");
    let error = failure(&as_strs(&fixture_export_args(&output, 400, 100)));
    assert!(error.contains("No space left on device"), "{error}");
    assert!(error.contains("free disk space"), "{error}");
    assert!(error.contains(path_str(&output)), "{error}");
    let names: Vec<String> = folder_files(&output).into_keys().collect();
    assert_eq!(names, [".progress.json", "shard-00000.parquet"], "the unfinished shard is removed and no partial shard has a final name");
}

#[test]
fn zero_tokens_is_rejected() {
    let dir = temp_dir();
    let config = fixtures().join("mix.toml");
    let output = dir.path().join("export");
    let error = failure(&["export", "--config", path_str(&config), "--output", path_str(&output), "--tokens", "0"]);
    assert!(error.contains("--tokens"), "{error}");
}

/// A python3 that can import pyarrow, or `None`.
fn python_with_pyarrow() -> Option<PathBuf> {
    let probe = Command::new("python3").args(["-c", "import pyarrow"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    matches!(probe, Ok(status) if status.success()).then(|| PathBuf::from("python3"))
}

#[test]
fn readback_with_pyarrow_and_datasets() {
    let Some(python) = python_with_pyarrow() else {
        println!("skipping: python3 with pyarrow not found");
        return;
    };
    let dir = temp_dir();
    let output = dir.path().join("export");
    success(&as_strs(&fixture_export_args(&output, 12, 5)));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_readback.py");
    let cache = dir.path().join("hf-cache");
    let result = Command::new(python)
        .arg(&script)
        .arg(&output)
        .env("HF_DATASETS_CACHE", &cache)
        .env("HF_HOME", &cache)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "readback failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    let totals: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(totals["rows"], 12 * 8);
    assert_eq!(totals["tokens"], 12 * 8 * 513);
    if totals["datasets_rows"].is_null() {
        println!("skipping datasets: not installed");
    } else {
        assert_eq!(totals["datasets_rows"], 12 * 8);
    }
}

#[test]
fn inspect_fails_on_a_replaced_shard() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    success(&as_strs(&fixture_export_args(&output, 10, 4)));
    std::fs::copy(output.join("shard-00000.parquet"), output.join("shard-00002.parquet")).unwrap();

    let run = Command::new(env!("CARGO_BIN_EXE_chameleon")).args(["inspect", path_str(&output)]).output().unwrap();
    assert!(!run.status.success(), "a shard that differs from the manifest fails inspect");
    let table = String::from_utf8_lossy(&run.stdout);
    let row = table.lines().find(|line| line.starts_with("shard-00002.parquet")).unwrap();
    assert!(row.ends_with("differs from the manifest"), "{table}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("differ from the manifest in shard-00002.parquet"), "{stderr}");
    assert!(stderr.contains("--overwrite"), "{stderr}");
}

#[test]
fn inspect_export_and_domain_folder() {
    let dir = temp_dir();
    let output = dir.path().join("export");
    success(&as_strs(&fixture_export_args(&output, 10, 4)));
    let manifest = read_manifest(&output);

    let summary = json(&["inspect", path_str(&output), "--json"]);
    assert_eq!(summary["kind"], "export");
    assert_eq!(summary["steps"], 10);
    assert_eq!(summary["digest"], manifest.digest.as_str());
    assert_eq!(summary["domains"].as_array().unwrap().len(), 6);
    let shards = summary["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    for shard in shards {
        assert_eq!(shard["matches_manifest"], true, "{shard}");
    }
    assert_eq!(shards.iter().map(|shard| shard["tokens"].as_u64().unwrap()).sum::<u64>(), 10 * 8 * 513);
    let schema: Vec<&str> = summary["schema"].as_array().unwrap().iter().map(|column| column.as_str().unwrap()).collect();
    assert_eq!(schema.len(), 3);
    assert!(schema[1].starts_with("domain: Dictionary(Int32, Utf8)"), "{schema:?}");
    let table = success(&["inspect", path_str(&output)]);
    assert!(table.contains(&manifest.digest), "{table}");
    assert!(table.contains("shard-00002.parquet"), "{table}");

    let tokens = dir.path().join("tokens");
    let documents = numbered_documents(0, 50, 20);
    write_tokens(&tokens.join("shard-0.parquet"), &documents[..30], 8);
    write_tokens(&tokens.join("shard-1.parquet"), &documents[30..], 8);
    let domain = json(&["inspect", path_str(&tokens), "--json"]);
    assert_eq!(domain["kind"], "domain");
    assert_eq!(domain["rows"], 50);
    assert_eq!(domain["row_groups"], 4 + 3);
    assert_eq!(domain["tokens"], documents.iter().map(Vec::len).sum::<usize>() as u64);
    assert_eq!(domain["shards"].as_array().unwrap().len(), 2);

    let text = json(&["inspect", path_str(&fixtures().join("domains/books")), "--json"]);
    assert_eq!(text["rows"], 48);
    assert!(text["tokens"].is_null(), "a text domain has no token column");
    let table = success(&["inspect", path_str(&fixtures().join("domains/books")), "--column", "text"]);
    assert!(table.contains("column 'text' is not a list of token ids"), "{table}");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = failure(&["inspect", path_str(&empty)]);
    assert!(error.contains("no manifest.json and no .parquet files"), "{error}");
}
