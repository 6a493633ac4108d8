//! Mid-run mixture changes: domains added and removed through a handle, new weights, ramps, the
//! online policy, watched folders, and exact resume after a change.

mod common;

use std::path::Path;
use std::time::Duration;

use chameleon::config::WatchConfig;
use chameleon::pipeline::{DomainSpec, EmbeddingInput};
use chameleon::{Batch, Config, Loader};
use common::{config, numbered_documents, temp_dir, within, write_tokens};

fn take(loader: &mut Loader, steps: usize) -> Vec<Batch> {
    (0..steps).map(|_| loader.next().unwrap().unwrap()).collect()
}

/// Two configured domains and one spare folder, `extra`, to add later.
fn two_domains(root: &Path) -> Config {
    write_tokens(&root.join("a/0.parquet"), &numbered_documents(0, 80, 60), 16);
    write_tokens(&root.join("b/0.parquet"), &numbered_documents(100, 80, 60), 16);
    write_tokens(&root.join("spare/extra/0.parquet"), &numbered_documents(200, 80, 60), 16);
    config(4, 16, 8, &[("a", &root.join("a"), 1.0), ("b", &root.join("b"), 1.0)])
}

/// The share of rows drawn from domain `name` in `batches`.
fn share(batches: &[Batch], name: &str) -> f64 {
    let rows: usize = batches.iter().map(Batch::rows).sum();
    let hits: usize = batches.iter().map(|batch| (0..batch.rows()).filter(|&row| batch.domain_name(row) == name).count()).sum();
    hits as f64 / rows as f64
}

#[test]
fn added_domain_is_drawn_at_its_weight() {
    let root = temp_dir();
    let mut loader = Loader::new(two_domains(root.path())).unwrap();
    let handle = loader.handle();
    take(&mut loader, 10);

    let ticket = handle.add_domain(DomainSpec::new("extra", root.path().join("spare/extra")).with_weight(2.0)).unwrap();
    let after = take(&mut loader, 1000);
    assert_eq!(ticket.wait().unwrap(), 1);

    let version = loader.mixture();
    assert_eq!((version.version, version.step), (1, 10));
    assert_eq!(version.domains, ["a", "b", "extra"]);
    assert_eq!(version.weights, [0.25, 0.25, 0.5]);
    // 8,000 rows: three standard deviations of a share of 0.5 is about 0.017.
    assert!((share(&after, "extra") - 0.5).abs() < 0.02, "share {}", share(&after, "extra"));
    assert!(after.iter().flat_map(|batch| (0..batch.rows()).map(move |row| batch.row(row)[0])).any(|token| (200_000..281_000).contains(&token)));
}

#[test]
fn resume_after_change_matches_the_run() {
    let root = temp_dir();
    let config = two_domains(root.path());
    let mut loader = Loader::new(config.clone()).unwrap();
    let handle = loader.handle();
    take(&mut loader, 5);
    let _added = handle.add_domain(DomainSpec::new("extra", root.path().join("spare/extra")).with_weight(1.0)).unwrap();
    take(&mut loader, 20);
    let _removed = handle.remove_domain("a").unwrap();
    take(&mut loader, 7);
    let state = loader.state();
    let expected = take(&mut loader, 60);

    let state: chameleon::LoaderState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let mut resumed = Loader::builder(config).resume(state).build().unwrap();
    assert_eq!(take(&mut resumed, 60), expected);
    assert_eq!(resumed.mixture_versions().len(), 3);
}

#[test]
fn removed_domain_is_never_drawn_again() {
    let root = temp_dir();
    let mut loader = Loader::new(two_domains(root.path())).unwrap();
    let _removed = loader.handle().remove_domain("a").unwrap();
    let batches = take(&mut loader, 100);
    assert_eq!(share(&batches, "a"), 0.0);
    assert_eq!(loader.mixture().domains, ["b"]);
}

#[test]
fn bad_changes_are_rejected_with_reasons() {
    let root = temp_dir();
    let mut loader = Loader::new(two_domains(root.path())).unwrap();
    let handle = loader.handle();
    let same_name = handle.add_domain(DomainSpec::new("a", root.path().join("spare/extra"))).unwrap();
    let same_folder = handle.add_domain(DomainSpec::new("again", root.path().join("b"))).unwrap();
    let missing = handle.add_domain(DomainSpec::new("ghost", root.path().join("nope"))).unwrap();
    let unknown = handle.set_weights([("zzz", 1.0)]).unwrap();
    take(&mut loader, 1);

    assert!(same_name.wait().unwrap_err().to_string().contains("'a': a domain of that name is already present"));
    let error = same_folder.wait().unwrap_err().to_string();
    assert!(error.contains("already domain 'b'"), "{error}");
    assert!(missing.wait().unwrap_err().to_string().contains("domain 'ghost'"));
    assert!(unknown.wait().unwrap_err().to_string().contains("'zzz'"));
    assert_eq!(loader.mixture().version, 0, "no rejected change makes a version");

    drop(loader);
    assert!(matches!(handle.report_loss("a", 1.0), Err(chameleon::Error::LoaderClosed)));
}

#[test]
fn ramp_moves_weights_step_by_step() {
    let root = temp_dir();
    let mut loader = Loader::new(two_domains(root.path())).unwrap();
    let handle = loader.handle();
    let _ramp = handle.set_ramp(4).unwrap();
    let _weights = handle.set_weights([("a", 3.0), ("b", 1.0)]).unwrap();
    take(&mut loader, 1);
    // Stats give the weights of the next batch: steps 1 to 5 here.
    let mut target = Vec::new();
    for _ in 0..5 {
        target.push(loader.stats()[0].target_weight);
        take(&mut loader, 1);
    }
    // From 0.5 to 0.75 over four batches: 0.5625 at step 0, the batch of the change, then on.
    let expected = [0.625, 0.6875, 0.75, 0.75, 0.75];
    for (actual, expected) in target.iter().zip(expected) {
        assert!((actual - expected).abs() < 1e-12, "{target:?}");
    }
}

#[test]
fn online_policy_raises_a_hard_domain() {
    let root = temp_dir();
    let mut config = two_domains(root.path());
    write_tokens(&root.path().join("c/0.parquet"), &numbered_documents(300, 80, 60), 16);
    config.domains.push(chameleon::config::DomainConfig { name: "c".into(), path: root.path().join("c"), ..config.domains[0].clone() });
    config.mixture.policy = chameleon::mixture::PolicyName::OnlineExp3;
    let mut loader = Loader::new(config).unwrap();
    let handle = loader.handle();
    let start = loader.stats()[1].target_weight;

    // A synthetic loss signal: domain b's loss stays high, the others' fall.
    for step in 0..400 {
        let batch = loader.next().unwrap().unwrap();
        for row in 0..batch.rows() {
            let domain = batch.domain_name(row);
            let loss = if domain == "b" { 4.0 } else { 4.0 / (1.0 + step as f64 / 20.0) };
            handle.report_loss(domain, loss).unwrap();
        }
    }
    let weights: Vec<f64> = loader.stats().iter().map(|domain| domain.target_weight).collect();
    assert!(weights[1] > start + 0.05, "b rises from {start}: {weights:?}");
    assert!(weights[1] > weights[0] && weights[1] > weights[2], "{weights:?}");
    assert!(loader.state().mixture.online.is_some());
}

#[test]
fn watched_folder_becomes_a_domain() {
    let root = temp_dir();
    let mut config = two_domains(root.path());
    std::fs::create_dir_all(root.path().join("watched")).unwrap();
    config.watch = Some(WatchConfig { poll_interval_ms: 20, weight: Some(2.0), ..WatchConfig::new(root.path().join("watched")) });
    let spare = root.path().join("spare/extra/0.parquet");
    let watched = root.path().join("watched");
    within(Duration::from_secs(120), move || {
        let mut loader = Loader::new(config).unwrap();
        take(&mut loader, 3);
        std::fs::create_dir_all(watched.join("web")).unwrap();
        std::fs::copy(&spare, watched.join("web/0.parquet")).unwrap();

        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while loader.mixture().domains.len() < 3 {
            assert!(std::time::Instant::now() < deadline, "the watched domain was not taken in");
            take(&mut loader, 1);
            std::thread::sleep(Duration::from_millis(5));
        }
        let after = take(&mut loader, 1000);
        assert_eq!(loader.mixture().change, "added domain web");
        assert!((share(&after, "web") - 0.5).abs() < 0.02, "share {}", share(&after, "web"));
    });
}

#[test]
fn chameleon_policy_uses_hashed_embeddings() {
    let mut config = Config::from_file(common::fixtures().join("mix.toml")).unwrap();
    config.mixture.policy = chameleon::mixture::PolicyName::ChameleonPretrain;
    config.mixture.embeddings = Some("hashed".into());
    config.mixture.embed_documents = 16;
    let mut loader = Loader::new(config).unwrap();
    let version = loader.mixture().clone();
    assert_eq!(version.policy, "chameleon-pretrain");
    let scores = version.scores.expect("the Chameleon policy reports scores");
    assert_eq!(scores.len(), 6);
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(version.effective_dimension.unwrap() > 0.0);
    take(&mut loader, 2);

    // A domain added mid-run is embedded from its own documents and the scores recomputed.
    let root = temp_dir();
    std::fs::create_dir_all(root.path().join("books2")).unwrap();
    std::fs::copy(common::fixtures().join("domains/books/shard-00000.parquet"), root.path().join("books2/0.parquet")).unwrap();
    let mut spec = DomainSpec::new("books2", root.path().join("books2")).with_embedding(EmbeddingInput::Hashed);
    spec.config.text_column = Some("text".into());
    let ticket = loader.handle().add_domain(spec).unwrap();
    take(&mut loader, 1);
    assert_eq!(ticket.wait().unwrap(), 1);
    assert_eq!(loader.mixture().scores.as_ref().unwrap().len(), 7);
}
