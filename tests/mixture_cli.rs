//! `chameleon weights` run as a process on `.npy` files written by the test.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Writes a float64 `.npy` file (format 1.0) of shape `[rows, values.len() / rows]`.
fn write_npy(path: &Path, rows: usize, values: &[f64]) {
    let columns = values.len() / rows;
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(values.iter().flat_map(|value| value.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// Writes four domains: `web` and `news` close together, `code` apart, `books` in between.
fn write_domains(folder: &Path) {
    write_npy(&folder.join("web.npy"), 2, &[1.0, 0.0, 0.2, 1.2, 0.1, 0.0]);
    write_npy(&folder.join("news.npy"), 1, &[1.0, 0.2, 0.1]);
    write_npy(&folder.join("code.npy"), 2, &[-3.0, 2.0, 1.0, -3.2, 2.0, 1.4]);
    write_npy(&folder.join("books.npy"), 1, &[0.0, 0.5, 0.5]);
}

fn weights(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chameleon")).arg("weights").args(args).output().unwrap()
}

fn json_of(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn json_output_sorted_by_name() {
    let folder = tempfile::tempdir().unwrap();
    write_domains(folder.path());
    let path = folder.path().to_str().unwrap();
    let json = json_of(&weights(&["--embeddings", path, "--json"]));

    assert_eq!(json["mode"], "pretrain");
    assert_eq!(json["lambda"], 10.0);
    assert_eq!(json["temperature"], 5.0);
    assert!(json["effective_dimension"].as_f64().unwrap() > 0.0);
    let domains = json["domains"].as_array().unwrap();
    let names: Vec<&str> = domains.iter().map(|domain| domain["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["books", "code", "news", "web"]);

    let scores: Vec<f64> = domains.iter().map(|domain| domain["score"].as_f64().unwrap()).collect();
    let weights: Vec<f64> = domains.iter().map(|domain| domain["weight"].as_f64().unwrap()).collect();
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{scores:?}");
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{weights:?}");
    // `code` is the distinctive domain: the highest score, so the lowest pretraining weight.
    for other in [0, 2, 3] {
        assert!(scores[1] > scores[other], "code's score is not above domain {other}'s: {scores:?}");
        assert!(weights[1] < weights[other], "code's weight is not below domain {other}'s: {weights:?}");
    }
}

#[test]
fn finetune_mode_favours_distinctive_domain() {
    let folder = tempfile::tempdir().unwrap();
    write_domains(folder.path());
    let path = folder.path().to_str().unwrap();
    let json = json_of(&weights(&["--embeddings", path, "--mode", "finetune", "--lambda", "0.5", "--json"]));
    assert_eq!(json["mode"], "finetune");
    assert_eq!(json["lambda"], 0.5);
    assert_eq!(json["temperature"], 0.2);
    let weights: Vec<f64> = json["domains"].as_array().unwrap().iter().map(|domain| domain["weight"].as_f64().unwrap()).collect();
    let max = weights.iter().copied().fold(0.0, f64::max);
    assert_eq!(weights[1], max, "code gets the largest finetuning weight: {weights:?}");
}

#[test]
fn table_has_bar_per_domain() {
    let folder = tempfile::tempdir().unwrap();
    write_domains(folder.path());
    let output = weights(&["--embeddings", folder.path().to_str().unwrap(), "--temperature", "2"]);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("effective dimension"), "{table}");
    assert!(table.contains("temperature 2"), "{table}");
    let mut bars = Vec::new();
    for name in ["books", "code", "news", "web"] {
        let line = table.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("no line for {name}: {table}"));
        bars.push(line.chars().filter(|c| *c == '█').count());
    }
    // The bar is scaled so that the largest weight fills 40 characters.
    assert_eq!(bars.iter().max(), Some(&40), "{table}");
}

#[test]
fn missing_embeddings_flag_is_an_error() {
    let output = weights(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--embeddings"), "{stderr}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let folder = tempfile::tempdir().unwrap();
    write_domains(folder.path());
    let path = folder.path().to_str().unwrap();

    let output = weights(&["--embeddings", path, "--lambda", "-1"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lambda = -1"), "{}", String::from_utf8_lossy(&output.stderr));

    write_npy(&folder.path().join("wide.npy"), 1, &[1.0, 2.0, 3.0, 4.0]);
    let output = weights(&["--embeddings", path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("domain 'wide'"), "{stderr}");
    assert!(stderr.contains("dimension 4"), "{stderr}");
}
