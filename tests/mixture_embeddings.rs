//! Loading domain embeddings from `.npy` folders and safetensors files.

use std::path::{Path, PathBuf};

use chameleon::mixture::embeddings::{load_embeddings, parse_npy};
use chameleon::Error;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/npy").join(name)
}

/// The mean of the rows of `0.5 * arange(12).reshape(3, 4)`, the values of every fixture.
const FIXTURE_MEAN: [f64; 4] = [2.0, 2.5, 3.0, 3.5];

/// Writes an `.npy` file (format 1.0) the way `numpy.save` does.
fn write_npy(path: &Path, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|value| value.to_le_bytes()).collect()
}

#[test]
fn numpy_fixtures_parse() {
    for name in ["float32_c.npy", "float64_fortran.npy", "float64_big_endian.npy"] {
        let path = fixture(name);
        let array = parse_npy(&path, &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((array.rows, array.columns), (3, 4), "{name}");
        let expected: Vec<f64> = (0..12).map(|i| 0.5 * i as f64).collect();
        assert_eq!(array.values, expected, "{name}");
    }
    let path = fixture("float32_vector.npy");
    let vector = parse_npy(&path, &std::fs::read(&path).unwrap()).unwrap();
    assert_eq!((vector.rows, vector.columns), (1, 4));
    assert_eq!(vector.values, vec![2.0, 2.5, 3.0, 3.5]);
}

#[test]
fn unsupported_dtypes_named() {
    for (name, dtype) in [("int64.npy", "int64"), ("float16.npy", "float16")] {
        let path = fixture(name);
        let error = parse_npy(&path, &std::fs::read(&path).unwrap()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&format!("{dtype} is not supported, expected float32 or float64")), "{message}");
        assert!(message.contains(name), "the message names the file: {message}");
    }
}

#[test]
fn npy_folder_loads_each_domain() {
    let folder = tempfile::tempdir().unwrap();
    for name in ["float32_c.npy", "float64_fortran.npy", "float64_big_endian.npy", "float32_vector.npy"] {
        std::fs::copy(fixture(name), folder.path().join(name)).unwrap();
    }
    std::fs::write(folder.path().join("README.txt"), "not an embedding").unwrap();
    let embeddings = load_embeddings(folder.path()).unwrap();
    let names: Vec<&str> = embeddings.keys().map(String::as_str).collect();
    assert_eq!(names, ["float32_c", "float32_vector", "float64_big_endian", "float64_fortran"]);
    for (name, embedding) in &embeddings {
        assert_eq!(embedding, &FIXTURE_MEAN, "domain {name}");
    }
}

#[test]
fn duplicate_rows_are_dropped() {
    let folder = tempfile::tempdir().unwrap();
    let rows = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 4.0, 8.0, -0.0, 0.0, 0.0, -0.0];
    write_npy(&folder.path().join("web.npy"), "<f8", false, &[6, 2], &f64_bytes(&rows));
    let embeddings = load_embeddings(folder.path()).unwrap();
    // Unique rows: [1, 2], [4, 8], [0, 0] (the zeros differ only in sign).
    assert_eq!(embeddings["web"], vec![5.0 / 3.0, 10.0 / 3.0]);
}

#[test]
fn nan_row_is_named() {
    let folder = tempfile::tempdir().unwrap();
    write_npy(&folder.path().join("code.npy"), "<f8", false, &[3, 2], &f64_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN]));
    let error = load_embeddings(folder.path()).unwrap_err();
    assert!(matches!(error, Error::NonFiniteEmbedding { ref domain, row: Some(2), column: 1, .. } if domain == "code"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("domain 'code'"), "{message}");
    assert!(message.contains("row 2"), "{message}");
}

#[test]
fn infinity_in_fortran_array_is_named() {
    let folder = tempfile::tempdir().unwrap();
    // Column-major [2, 3]: the infinity is row 1, column 0.
    write_npy(&folder.path().join("books.npy"), "<f8", true, &[2, 3], &f64_bytes(&[1.0, f64::INFINITY, 3.0, 4.0, 5.0, 6.0]));
    let error = load_embeddings(folder.path()).unwrap_err();
    assert!(matches!(error, Error::NonFiniteEmbedding { row: Some(1), column: 0, .. }), "{error:?}");
}

#[test]
fn malformed_npy_files_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("not_npy.npy", b"hello world, not numpy".to_vec(), "magic string"),
        ("truncated.npy", Vec::new(), "magic string"),
        ("three_d.npy", Vec::new(), "shape [2, 2, 2] is not supported"),
    ];
    for (name, bytes, expected) in cases {
        let path = folder.path().join(name);
        if name == "three_d.npy" {
            write_npy(&path, "<f8", false, &[2, 2, 2], &f64_bytes(&[0.0; 8]));
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
        let error = parse_npy(&path, &std::fs::read(&path).unwrap()).unwrap_err();
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }

    let short = folder.path().join("short.npy");
    write_npy(&short, "<f8", false, &[3, 2], &f64_bytes(&[1.0; 5]));
    let error = parse_npy(&short, &std::fs::read(&short).unwrap()).unwrap_err();
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn empty_folder_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let error = load_embeddings(folder.path()).unwrap_err();
    assert!(error.to_string().contains("no .npy files"), "{error}");
    let missing = folder.path().join("missing");
    assert!(matches!(load_embeddings(&missing).unwrap_err(), Error::Io { .. }));
}

#[test]
fn safetensors_file_loads_each_domain() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("embeddings.safetensors");
    let matrix: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 1.0, 2.0, 5.0, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let vector = f64_bytes(&[0.25, 0.75]);
    let tensors = [
        ("web", TensorView::new(Dtype::F32, vec![4, 2], &matrix).unwrap()),
        ("code", TensorView::new(Dtype::F64, vec![2], &vector).unwrap()),
    ];
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();

    let embeddings = load_embeddings(&path).unwrap();
    assert_eq!(embeddings["code"], vec![0.25, 0.75]);
    // Rows [1, 2], [3, 4], [5, 0] once the duplicate [1, 2] is dropped.
    assert_eq!(embeddings["web"], vec![3.0, 2.0]);
}

#[test]
fn safetensors_rejects_integer_tensor() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("embeddings.safetensors");
    let data: Vec<u8> = [1i64, 2, 3, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [("ids", TensorView::new(Dtype::I64, vec![2, 2], &data).unwrap())];
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let message = load_embeddings(&path).unwrap_err().to_string();
    assert!(message.contains("tensor 'ids'"), "{message}");
    assert!(message.contains("I64 is not supported, expected F32 or F64"), "{message}");

    std::fs::write(&path, b"garbage").unwrap();
    let message = load_embeddings(&path).unwrap_err().to_string();
    assert!(message.contains("not a valid safetensors file"), "{message}");
}
