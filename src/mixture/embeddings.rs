//! Domain embeddings read from files: a folder of `.npy` files or one safetensors file.
//!
//! Each source contains one array per domain, `float32` or `float64`, of shape `[n, d]` (one row per
//! document) or `[d]` (the domain embedding itself). In a folder, the file `<domain>.npy` holds
//! domain `<domain>`; C and Fortran order and both byte orders are read. In a safetensors file,
//! the tensor named `<domain>` holds it (dtype `F32` or `F64`). The domain embedding is the mean
//! of the rows after exact duplicate rows are dropped, computed in `f64`.
//!
//! ```
//! use chameleon::mixture::embeddings::domain_embedding;
//!
//! // The duplicate of the first row is dropped before the mean is taken.
//! let rows = [1.0, 2.0, 1.0, 2.0, 3.0, 4.0];
//! let embedding = domain_embedding("web", std::path::Path::new("web.npy"), &rows, 3, 2).unwrap();
//! assert_eq!(embedding, vec![2.0, 3.0]);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// Domain embeddings by domain name.
pub type Embeddings = BTreeMap<String, Vec<f64>>;

/// Loads the domain embeddings in `path`: a folder of `<domain>.npy` files or a safetensors file.
///
/// Files in the folder without the `.npy` extension are skipped.
///
/// # Errors
///
/// [`Error::Io`] when the path cannot be read, [`Error::Input`] when a file is malformed, has an
/// unsupported dtype or shape, or the source contains no embedding, and
/// [`Error::NonFiniteEmbedding`] when a value is NaN or infinite.
pub fn load_embeddings(path: &Path) -> Result<Embeddings> {
    let metadata = std::fs::metadata(path).map_err(|source| Error::io("cannot read embeddings", path, source))?;
    if metadata.is_dir() {
        return load_npy_folder(path);
    }
    let bytes = std::fs::read(path).map_err(|source| Error::io("cannot read embeddings file", path, source))?;
    if path.extension().is_some_and(|extension| extension == "npy") {
        return Err(input(path, "a single .npy file holds one domain; put one <domain>.npy file per domain in a folder and pass the folder"));
    }
    load_safetensors(path, &bytes)
}

/// Loads every `<domain>.npy` file in `folder`.
///
/// # Errors
///
/// As for [`load_embeddings`].
pub fn load_npy_folder(folder: &Path) -> Result<Embeddings> {
    let entries = std::fs::read_dir(folder).map_err(|source| Error::io("cannot list embeddings folder", folder, source))?;
    let mut embeddings = Embeddings::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::io("cannot list embeddings folder", folder, source))?;
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "npy") {
            continue;
        }
        let Some(domain) = path.file_stem().and_then(|stem| stem.to_str()) else {
            return Err(input(&path, "the file name is not valid UTF-8, so it cannot name a domain; rename the file"));
        };
        let bytes = std::fs::read(&path).map_err(|source| Error::io("cannot read embeddings file", &path, source))?;
        let array = parse_npy(&path, &bytes)?;
        let embedding = domain_embedding(domain, &path, &array.values, array.rows, array.columns)?;
        embeddings.insert(domain.to_string(), embedding);
    }
    if embeddings.is_empty() {
        return Err(input(folder, "the folder has no .npy files; write one <domain>.npy file per domain"));
    }
    Ok(embeddings)
}

/// Loads every tensor of a safetensors file as a domain embedding, named by the tensor.
///
/// # Errors
///
/// As for [`load_embeddings`].
pub fn load_safetensors(path: &Path, bytes: &[u8]) -> Result<Embeddings> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|error| input(path, &format!("not a valid safetensors file ({error}); pass a folder of .npy files or a safetensors file")))?;
    let mut embeddings = Embeddings::new();
    for (name, view) in tensors.iter() {
        let context = |message: &str| input(path, &format!("tensor '{name}': {message}"));
        let element = match view.dtype() {
            Dtype::F32 => Element::F32,
            Dtype::F64 => Element::F64,
            other => return Err(context(&format!("dtype {other} is not supported, expected F32 or F64"))),
        };
        let (rows, columns) = match *view.shape() {
            [columns] => (1, columns),
            [rows, columns] => (rows, columns),
            ref shape => return Err(context(&format!("shape {shape:?} is not supported, expected [n, d] or [d]"))),
        };
        let values = decode(view.data(), element, Endian::Little);
        embeddings.insert(name.to_string(), domain_embedding(name, path, &values, rows, columns)?);
    }
    if embeddings.is_empty() {
        return Err(input(path, "the file has no tensors; write one tensor per domain, named by the domain"));
    }
    Ok(embeddings)
}

/// Computes a domain embedding from `rows × columns` values in row-major order: the mean of the
/// rows after exact duplicate rows are dropped.
///
/// # Errors
///
/// [`Error::Input`] when there are no rows or columns, [`Error::NonFiniteEmbedding`] naming the
/// row and column of the first NaN or infinite value.
pub fn domain_embedding(domain: &str, path: &Path, values: &[f64], rows: usize, columns: usize) -> Result<Vec<f64>> {
    if rows == 0 || columns == 0 {
        return Err(input(path, &format!("domain '{domain}': the embedding array has shape [{rows}, {columns}]; it needs at least one row and one column")));
    }
    debug_assert_eq!(values.len(), rows * columns, "the caller passes rows × columns values");
    if let Some(index) = values.iter().position(|value| !value.is_finite()) {
        return Err(Error::NonFiniteEmbedding { domain: domain.to_string(), row: Some(index / columns), column: index % columns, value: values[index] });
    }

    // `+ 0.0` turns -0.0 into +0.0, so the two zeros compare equal as bit patterns.
    let mut seen: HashSet<Vec<u64>> = HashSet::with_capacity(rows);
    let mut sum = vec![0.0; columns];
    let mut unique_rows = 0usize;
    for row in values.chunks_exact(columns) {
        let bits: Vec<u64> = row.iter().map(|value| (value + 0.0).to_bits()).collect();
        if !seen.insert(bits) {
            continue;
        }
        unique_rows += 1;
        for (total, value) in sum.iter_mut().zip(row) {
            *total += value;
        }
    }
    if unique_rows < rows {
        tracing::debug!(domain, path = %path.display(), rows, duplicates = rows - unique_rows, "dropped duplicate embedding rows");
    }
    Ok(sum.into_iter().map(|total| total / unique_rows as f64).collect())
}

/// A 1-D or 2-D floating-point array read from an `.npy` file, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The values as `f64`, row after row.
    pub values: Vec<f64>,
    /// The number of rows (1 for a 1-D array).
    pub rows: usize,
    /// The number of columns.
    pub columns: usize,
}

#[derive(Debug, Clone, Copy)]
enum Element {
    F32,
    F64,
}

#[derive(Debug, Clone, Copy)]
enum Endian {
    Little,
    Big,
}

/// Parses an `.npy` file (format versions 1 to 3) holding a `float32` or `float64` array of
/// shape `[n, d]` or `[d]`, in C or Fortran order.
///
/// # Errors
///
/// [`Error::Input`] naming the problem: a bad magic string or header, an unsupported dtype (by its
/// NumPy name) or shape, or a data section of the wrong length.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(input(path, "not an .npy file (the magic string \\x93NUMPY is missing); write it with numpy.save"));
    }
    let major = bytes[6];
    let (header_length, header_start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        _ => return Err(input(path, &format!(".npy format version {major} is not supported, expected 1, 2 or 3"))),
    };
    let header_end = header_start + header_length;
    let Some(header) = bytes.get(header_start..header_end).and_then(|header| std::str::from_utf8(header).ok()) else {
        return Err(input(path, "the .npy header is truncated or not text; the file is damaged, write it again"));
    };

    let descr = header_value(header, "descr").ok_or_else(|| input(path, &format!("the .npy header has no 'descr' key: {header}")))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (element, endian) = parse_descr(path, descr)?;
    let fortran = match header_value(header, "fortran_order") {
        Some("True") => true,
        Some("False") => false,
        _ => return Err(input(path, &format!("the .npy header has no valid 'fortran_order' key: {header}"))),
    };
    let shape = parse_shape(path, header)?;
    let (rows, columns) = match shape[..] {
        [columns] => (1, columns),
        [rows, columns] => (rows, columns),
        _ => return Err(input(path, &format!("shape {shape:?} is not supported, expected [n, d] (one row per document) or [d]"))),
    };

    let width = match element {
        Element::F32 => 4,
        Element::F64 => 8,
    };
    let expected = rows.checked_mul(columns).and_then(|count| count.checked_mul(width));
    let data = &bytes[header_end..];
    if expected != Some(data.len()) {
        return Err(input(path, &format!("shape [{rows}, {columns}] of {width}-byte values needs {} data bytes but the file has {}; the file is truncated or damaged", rows * columns * width, data.len())));
    }

    let decoded = decode(data, element, endian);
    let values = if fortran && rows > 1 { (0..rows * columns).map(|index| decoded[(index % columns) * rows + index / columns]).collect() } else { decoded };
    Ok(NpyArray { values, rows, columns })
}

/// Maps an `.npy` dtype string such as `<f4` to an element type, naming rejected dtypes as NumPy
/// does.
fn parse_descr(path: &Path, descr: &str) -> Result<(Element, Endian)> {
    let (order, code) = descr.split_at(descr.len().min(1));
    let endian = match order {
        "<" | "|" | "=" => Endian::Little,
        ">" => Endian::Big,
        _ => return Err(input(path, &format!("dtype '{descr}' is not supported, expected float32 or float64"))),
    };
    let element = match code {
        "f4" => Element::F32,
        "f8" => Element::F64,
        other => {
            let name = match other {
                "f2" => "float16".to_string(),
                "f16" => "float128".to_string(),
                "b1" => "bool".to_string(),
                "c8" => "complex64".to_string(),
                "c16" => "complex128".to_string(),
                _ if other.starts_with('i') => format!("int{}", 8 * other[1..].parse::<usize>().unwrap_or(0)),
                _ if other.starts_with('u') => format!("uint{}", 8 * other[1..].parse::<usize>().unwrap_or(0)),
                _ => format!("'{descr}'"),
            };
            return Err(input(path, &format!("{name} is not supported, expected float32 or float64; convert with array.astype(numpy.float32)")));
        }
    };
    Ok((element, endian))
}

/// Finds the text of `key`'s value in a Python dict literal header, up to the next `,` or `}` at
/// the top level (the shape tuple is read by [`parse_shape`]).
fn header_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted.iter().find_map(|needle| header.find(needle.as_str()).map(|at| at + needle.len()))?;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn parse_shape(path: &Path, header: &str) -> Result<Vec<usize>> {
    let malformed = || input(path, &format!("the .npy header has no valid 'shape' key: {header}"));
    let start = header.find("'shape'").or_else(|| header.find("\"shape\"")).ok_or_else(malformed)?;
    let rest = &header[start..];
    let open = rest.find('(').ok_or_else(malformed)?;
    let close = rest.find(')').ok_or_else(malformed)?;
    rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.trim_end_matches('L').parse::<usize>().map_err(|_| malformed()))
        .collect()
}

fn decode(data: &[u8], element: Element, endian: Endian) -> Vec<f64> {
    match (element, endian) {
        (Element::F32, Endian::Little) => data.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect(),
        (Element::F32, Endian::Big) => data.chunks_exact(4).map(|b| f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]]))).collect(),
        (Element::F64, Endian::Little) => data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("chunks_exact(8) yields 8 bytes"))).collect(),
        (Element::F64, Endian::Big) => data.chunks_exact(8).map(|b| f64::from_be_bytes(b.try_into().expect("chunks_exact(8) yields 8 bytes"))).collect(),
    }
}

fn input(path: &Path, message: &str) -> Error {
    Error::Input { path: path.to_path_buf(), message: message.to_string() }
}
