//! The `chameleon` binary: stream on the committed fixtures, tokenize, save and resume.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixtures, numbered_documents, temp_dir, write_tokens};
use serde_json::Value;

fn chameleon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chameleon")).args(args).output().expect("the binary runs")
}

fn success(args: &[&str]) -> String {
    let output = chameleon(args);
    assert!(output.status.success(), "chameleon {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn stream_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["stream", "--config", config.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&success(&args)).unwrap()
}

#[test]
fn stream_on_fixtures_reports_every_field() {
    let summary = stream_json(&fixtures().join("mix.toml"), &["--steps", "20"]);
    assert_eq!(summary["batches"], 20);
    assert_eq!(summary["tokens"], 20 * 8 * 513);
    assert_eq!(summary["digest"].as_str().unwrap().len(), 32);
    assert!(summary["tokens_per_second"].as_f64().unwrap() > 0.0);
    let domains = summary["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 6);
    for domain in domains {
        for field in ["name", "target_weight", "realized_share", "tokens", "epochs"] {
            assert!(!domain[field].is_null(), "missing {field} in {domain}");
        }
    }
}

#[test]
fn stream_digest_does_not_depend_on_threads() {
    let config = fixtures().join("mix.toml");
    let one = stream_json(&config, &["--steps", "15", "--threads", "1"]);
    let four = stream_json(&config, &["--steps", "15", "--threads", "4"]);
    assert_eq!(one["digest"], four["digest"]);
}

#[test]
fn resume_continues_hashes_and_digest() {
    let dir = temp_dir();
    let config = fixtures().join("mix.toml");
    let all_hashes = dir.path().join("all.tsv");
    let first_hashes = dir.path().join("first.tsv");
    let rest_hashes = dir.path().join("rest.tsv");
    let state = dir.path().join("state.json");
    stream_json(&config, &["--steps", "30", "--batch-hashes", all_hashes.to_str().unwrap()]);
    stream_json(&config, &["--steps", "12", "--batch-hashes", first_hashes.to_str().unwrap(), "--save-state", state.to_str().unwrap()]);
    let resumed = stream_json(&config, &["--steps", "18", "--resume", state.to_str().unwrap(), "--batch-hashes", rest_hashes.to_str().unwrap()]);

    let all = std::fs::read_to_string(all_hashes).unwrap();
    let joined = std::fs::read_to_string(first_hashes).unwrap() + &std::fs::read_to_string(rest_hashes).unwrap();
    assert_eq!(all, joined);
    assert!(all.lines().nth(12).unwrap().starts_with("12\t"));
    assert_eq!(resumed["first_step"], 12);
}

#[test]
fn resume_from_another_working_directory() {
    let dir = temp_dir();
    let state = dir.path().join("state.json");
    let fixtures = fixtures();
    let run = |cwd: &Path, config: &str, extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_chameleon"))
            .current_dir(cwd)
            .args(["stream", "--config", config, "--json"])
            .args(extra)
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "stream failed:\n{}", String::from_utf8_lossy(&output.stderr));
    };

    let parent = fixtures.parent().unwrap();
    run(parent, "fixtures/mix.toml", &["--steps", "3", "--save-state", state.to_str().unwrap()]);
    run(&fixtures, "mix.toml", &["--steps", "2", "--resume", state.to_str().unwrap()]);
}

#[test]
fn tokenize_jsonl_then_stream_it() {
    let dir = temp_dir();
    let input = dir.path().join("input/web");
    std::fs::create_dir_all(&input).unwrap();
    let lines: Vec<String> = (0..50).map(|index| format!("{{\"doc_id\": \"web-{index}\", \"text\": \"Document number {index} talks about parquet.\"}}")).collect();
    std::fs::write(input.join("part-0.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(input.join("part-1.jsonl"), "{\"doc_id\": \"x\", \"text\": null}\n{\"doc_id\": \"y\", \"text\": \"Hello world\"}\n").unwrap();
    let output = dir.path().join("tokens");

    let report: Value = serde_json::from_str(&success(&[
        "tokenize", "--input", dir.path().join("input").to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2", "--json",
    ]))
    .unwrap();
    assert_eq!(report["files"], 2);
    assert_eq!(report["rows"], 52);
    assert_eq!(report["null_rows"], 1);
    let written: Vec<_> = std::fs::read_dir(output.join("web")).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    let mut written = written;
    written.sort();
    assert_eq!(written, ["part-0.parquet", "part-1.parquet"], "no temporary file is left");

    let config = dir.path().join("mix.toml");
    std::fs::write(&config, "seq_len = 16\nbatch_size = 2\neos_token = 50256\n[[domains]]\nname = 'web'\npath = 'tokens/web'\nweight = 1\n").unwrap();
    // 40 steps of 34 tokens pass the whole domain (about 600 tokens) at least once.
    let summary = stream_json(&config, &["--steps", "40"]);
    assert!(summary["domains"][0]["epochs"].as_u64().unwrap() >= 2);
    assert!(summary["domains"][0]["null_rows"].as_u64().unwrap() >= 1, "{summary}");
}

/// Copies the first shard of the fixtures' text domain `books` into `folder/books` and returns
/// that folder.
fn copy_books(folder: &Path) -> PathBuf {
    let books = folder.join("books");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::copy(fixtures().join("domains/books/shard-00000.parquet"), books.join("shard-00000.parquet")).unwrap();
    books
}

#[test]
fn tokenize_parquet_keeps_other_columns() {
    let dir = temp_dir();
    let input = copy_books(dir.path());
    let output = dir.path().join("out");
    success(&["tokenize", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2"]);

    let file = std::fs::File::open(output.join("shard-00000.parquet")).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let names: Vec<_> = builder.schema().fields().iter().map(|field| field.name().clone()).collect();
    assert_eq!(names, ["tokens", "source", "doc_id"]);
}

#[test]
fn tokenize_records_its_tokenizer() {
    let dir = temp_dir();
    let input = copy_books(dir.path());
    let output = dir.path().join("out");
    success(&["tokenize", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2"]);

    let file = std::fs::File::open(output.join("shard-00000.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let metadata = parquet::file::reader::FileReader::metadata(&reader).file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let tokenizer = metadata.iter().find(|entry| entry.key == chameleon::tokenize::TOKENIZER_KEY).and_then(|entry| entry.value.clone());
    assert_eq!(tokenizer.as_deref(), Some("gpt2"));
}

#[test]
fn tokenize_rejects_output_inside_input() {
    let dir = temp_dir();
    let input = copy_books(dir.path());
    let shard = input.join("shard-00000.parquet");
    let before = std::fs::read(&shard).unwrap();

    for output in [input.clone(), input.join("tokens"), input.join("..").join("books")] {
        let run = chameleon(&["tokenize", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2"]);
        assert!(!run.status.success(), "output {}", output.display());
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("is the input or inside it"), "{stderr}");
        assert!(stderr.contains("choose an output folder outside the input"), "{stderr}");
    }
    let single = chameleon(&["tokenize", "--input", shard.to_str().unwrap(), "--output", input.to_str().unwrap(), "--tokenizer", "gpt2"]);
    assert!(!single.status.success(), "a shard must not replace its own input file");
    assert_eq!(std::fs::read(&shard).unwrap(), before, "the input shard is untouched");
    assert!(!input.join("tokens").exists(), "no output folder is created inside the input");
}

#[test]
fn tokenize_keeps_existing_shards_unless_overwrite() {
    let dir = temp_dir();
    let input = copy_books(dir.path());
    let output = dir.path().join("out");
    let args = ["tokenize", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2"];
    success(&args);
    let written = output.join("shard-00000.parquet");
    std::fs::write(&written, b"placeholder").unwrap();

    let again = chameleon(&args);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("1 of 1 shard to write already exists"), "{stderr}");
    assert!(stderr.contains("pass --overwrite"), "{stderr}");
    assert_eq!(std::fs::read(&written).unwrap(), b"placeholder", "the existing file is kept");

    success(&[&args[..], &["--overwrite"]].concat());
    assert_ne!(std::fs::read(&written).unwrap(), b"placeholder", "--overwrite replaces the file");
}

#[test]
fn tokenize_names_a_missing_text_column() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("a.jsonl"), "{\"body\": \"hello\"}\n").unwrap();
    let output = chameleon(&["tokenize", "--input", dir.path().join("a.jsonl").to_str().unwrap(), "--output", dir.path().join("out").to_str().unwrap(), "--tokenizer", "gpt2"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("text column 'text' not found") && stderr.contains("[body]"), "{stderr}");
    assert!(stderr.contains("a.jsonl: text column"), "the message names the file: {stderr}");
    assert!(!stderr.contains("domain ''"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "the output folder this run created is left behind");
}

#[test]
fn failed_tokenize_keeps_existing_output() {
    let dir = temp_dir();
    let input = dir.path().join("corpus/books");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.jsonl"), "{\"body\": \"hello\"}\n").unwrap();
    let output = dir.path().join("out");
    std::fs::create_dir_all(&output).unwrap();

    let run = chameleon(&["tokenize", "--input", dir.path().join("corpus").to_str().unwrap(), "--output", output.to_str().unwrap(), "--tokenizer", "gpt2"]);

    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("books/a.jsonl: text column 'text' not found"), "{stderr}");
    assert!(output.is_dir(), "a folder that existed before the run is kept");
}

#[test]
fn verbose_log_plain_with_stop_line() {
    let config = fixtures().join("mix.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_chameleon"))
        .args(["-v", "stream", "--config", config.to_str().unwrap(), "--steps", "3"])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loader started"), "{stderr}");
    assert!(stderr.contains("mixture computed"), "{stderr}");
    assert!(stderr.contains("loader stopped step=3"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "stderr is not a terminal, so the log must have no ANSI codes: {stderr:?}");
}

#[test]
fn skipped_shard_warning_has_no_skip_hint() {
    let dir = temp_dir();
    let folder = dir.path().join("a");
    write_tokens(&folder.join("0.parquet"), &numbered_documents(0, 50, 10), 10);
    let cut = folder.join("1-cut.parquet");
    write_tokens(&cut, &numbered_documents(100, 50, 10), 10);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let config = dir.path().join("mix.toml");
    std::fs::write(&config, "seq_len = 8\nbatch_size = 2\neos_token = 0\nskip_bad_shards = true\n\n[[domains]]\nname = \"a\"\npath = \"a\"\nweight = 1.0\n").unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_chameleon"))
        .args(["stream", "--config", config.to_str().unwrap(), "--steps", "5"])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skipping unreadable shard"), "{stderr}");
    assert!(stderr.contains("1-cut.parquet"), "{stderr}");
    assert!(!stderr.contains("set skip_bad_shards"), "skipping is already on: {stderr}");
}

#[test]
fn stream_rejects_zero_steps() {
    let config = fixtures().join("mix.toml");
    let output = chameleon(&["stream", "--config", config.to_str().unwrap(), "--steps", "0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--steps must be at least 1"), "{stderr}");
}

#[test]
fn stream_rejects_saving_every_zero_steps() {
    let config = fixtures().join("mix.toml");
    let dir = temp_dir();
    let state = dir.path().join("state.json");
    let output = chameleon(&["stream", "--config", config.to_str().unwrap(), "--save-state", state.to_str().unwrap(), "--save-every", "0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--save-every must be at least 1"), "{stderr}");
    assert!(!state.exists(), "nothing runs after a rejected argument");
}

#[test]
fn stream_checks_state_folder_first() {
    let config = fixtures().join("mix.toml");
    let output = chameleon(&["stream", "--config", config.to_str().unwrap(), "--steps", "5", "--save-state", "/nonexistent/folder/state.json"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot save the state to /nonexistent/folder/state.json"), "{stderr}");
    assert!(stderr.contains("the folder /nonexistent/folder does not exist"), "{stderr}");
    assert!(output.stdout.is_empty(), "no batch is streamed before the check");
}

#[test]
fn world_size_without_rank_is_named() {
    let config = fixtures().join("mix.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_chameleon"))
        .args(["stream", "--config", config.to_str().unwrap(), "--steps", "1"])
        .env("WORLD_SIZE", "2")
        .env_remove("RANK")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a world size is set (--world-size or WORLD_SIZE) but no rank"), "{stderr}");

    let zero = chameleon(&["stream", "--config", config.to_str().unwrap(), "--rank", "0", "--world-size", "0"]);
    assert!(String::from_utf8_lossy(&zero.stderr).contains("world size 0 is invalid"));
}

#[test]
fn zero_threads_are_rejected() {
    let config = fixtures().join("mix.toml");
    let output = chameleon(&["stream", "--config", config.to_str().unwrap(), "--threads", "0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--threads must be at least 1"), "{stderr}");
}

#[test]
fn missing_config_is_a_clear_error() {
    let output = chameleon(&["stream", "--config", "/nonexistent/mix.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read configuration file /nonexistent/mix.toml"), "{stderr}");
}

#[test]
fn kill_while_saving_keeps_a_whole_state() {
    let dir = temp_dir();
    let config = fixtures().join("mix.toml");
    let config = config.to_str().unwrap();
    let state = dir.path().join("state.json");
    let seed = 77u64;
    println!("kill delay seed {seed}");
    let mut delays = [3u64, 40, 170];
    delays.rotate_left((seed % 3) as usize);

    for delay in delays {
        // Save after every step, so a kill at any moment is likely to land inside a save.
        let mut child = Command::new(env!("CARGO_BIN_EXE_chameleon"))
            .args(["stream", "--config", config, "--steps", "1000000", "--save-state", state.to_str().unwrap(), "--save-every", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until this run is saving (its state file appears or changes), then kill it
        // `delay` ms later, at whatever point of a save it is.
        let before = std::fs::metadata(&state).and_then(|metadata| metadata.modified()).ok();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::fs::metadata(&state).and_then(|metadata| metadata.modified()).ok() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();

        // The state file is whole, and resuming from it continues the uninterrupted stream.
        let saved: chameleon::LoaderState = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).expect("the state file is whole");
        let step = saved.step;
        let rest = dir.path().join("rest.tsv");
        let all = dir.path().join("all.tsv");
        success(&["stream", "--config", config, "--json", "--steps", "3", "--resume", state.to_str().unwrap(), "--batch-hashes", rest.to_str().unwrap()]);
        success(&["stream", "--config", config, "--json", "--steps", &(step + 3).to_string(), "--batch-hashes", all.to_str().unwrap()]);
        let all = std::fs::read_to_string(all).unwrap();
        let tail: Vec<&str> = all.lines().skip(step as usize).collect();
        assert_eq!(std::fs::read_to_string(rest).unwrap().lines().collect::<Vec<_>>(), tail, "kill after {delay} ms, state at step {step}");
    }
}

#[test]
fn watch_flag_fills_a_table_without_root() {
    let dir = temp_dir();
    let base = std::fs::read_to_string(fixtures().join("mix.toml")).unwrap().replace("\"domains/", &format!("\"{}/domains/", fixtures().display()));
    let config = dir.path().join("watch.toml");
    std::fs::write(&config, format!("{base}\n[watch]\nweight = 0.2\ntext_column = \"text\"\n")).unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();

    let without = chameleon(&["stream", "--config", config.to_str().unwrap(), "--steps", "2"]);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("has no `root`"), "{}", String::from_utf8_lossy(&without.stderr));

    let summary = stream_json(&config, &["--steps", "2", "--watch", incoming.to_str().unwrap()]);
    assert_eq!(summary["batches"], 2);
}

#[test]
fn watch_text_column_flag_takes_text_folder() {
    let dir = temp_dir();
    let base = std::fs::read_to_string(fixtures().join("mix.toml")).unwrap().replace("\"domains/", &format!("\"{}/domains/", fixtures().display()));
    let config = dir.path().join("watch.toml");
    std::fs::write(&config, format!("{base}\n[watch]\npoll_interval_ms = 20\n")).unwrap();
    let incoming = dir.path().join("incoming/books2");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::copy(fixtures().join("domains/books/shard-00000.parquet"), incoming.join("shard-00000.parquet")).unwrap();
    let root = dir.path().join("incoming");
    let watch = ["--watch", root.to_str().unwrap(), "--watch-weight", "0.5"];

    let without = stream_json(&config, &[&["--steps", "400"], &watch[..]].concat());
    let versions = without["mixture_versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "a text folder without a text column is not added: {without}");

    let with = stream_json(&config, &[&["--steps", "400", "--watch-text-column", "text"], &watch[..]].concat());
    let versions = with["mixture_versions"].as_array().unwrap();
    assert!(versions.iter().any(|version| version["change"].as_str().unwrap().contains("books2")), "{with}");

    let alone = chameleon(&["stream", "--config", fixtures().join("mix.toml").to_str().unwrap(), "--watch-text-column", "text"]);
    assert!(String::from_utf8_lossy(&alone.stderr).contains("pass --watch FOLDER or add a [watch] table"));
}

#[test]
fn closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chameleon"))
        .args(["inspect", fixtures().join("domains/books").to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Close the reading end before the binary prints, as `| head -0` would.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
