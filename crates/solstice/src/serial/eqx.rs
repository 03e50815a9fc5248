//! Equinox's `.eqx` format: `eqx.tree_serialise_leaves` and
//! `eqx.tree_deserialise_leaves`, byte for byte.
//!
//! A file is one numpy `.npy` record per leaf, in leaf order, nothing
//! between and nothing around. Array leaves are written with their dtype and
//! shape. Scalar leaves are 0-d records as numpy writes Python's: a bool as
//! `|b1`, an integer as `<i8`, a float (`f32` or `f64`) as `<f8`. Holes
//! (absent values and `Shared` placeholders) and static fields write
//! nothing, so a tied weight is stored once. A `Key` writes its `u32[2]`
//! words, as a JAX `PRNGKey` does.
//!
//! Loading is stricter than Equinox's: each record must have the kind,
//! dtype and shape of the leaf of `like` it fills (Equinox casts an f64
//! record into an f32 leaf silently; here it is an error), and a file with
//! records left over, or one that ends early, is an error.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::atomic::write_atomically;
use super::bytes;
use super::npy::{self, NpyHeader};
use crate::array::Array;
use crate::error::{Error, Result};
use crate::tree::{KeyPath, Leaf, LeafMut, Scalar, ScalarLeaf, Tree};

/// Saves the leaves of `tree` to `path` in Equinox's `.eqx` format, as
/// `eqx.tree_serialise_leaves(path, tree)` does. As there, a path without
/// an extension gets `.eqx`. The file is replaced atomically
/// ([`write_atomically`]).
///
/// # Examples
///
/// ```
/// use solstice::{nn::Linear, random::Key, serial, tree::tree_equal};
/// # fn main() -> solstice::Result<()> {
/// let dir = std::env::temp_dir().join(format!("solstice-doc-eqx-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let model = Linear::new(3, 2, Key::new(0))?;
/// serial::tree_serialise_leaves(dir.join("model"), &model)?; // writes model.eqx
/// let like = Linear::new(3, 2, Key::new(1))?;
/// let loaded = serial::tree_deserialise_leaves(dir.join("model.eqx"), &like)?;
/// assert!(tree_equal(&loaded, &model)?);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
pub fn tree_serialise_leaves<T: Tree>(path: impl AsRef<Path>, tree: &T) -> Result<()> {
    let path = with_suffix(path.as_ref());
    write_atomically(&path, |w| tree_serialise_leaves_to(w, tree))
}

/// Writes the leaves of `tree` to a stream in Equinox's `.eqx` format.
///
/// # Examples
///
/// ```
/// use solstice::{Array, serial};
/// # fn main() -> solstice::Result<()> {
/// let mut bytes = Vec::new();
/// serial::tree_serialise_leaves_to(&mut bytes, &(Array::scalar(1.0f32)?, 0.5f64, true))?;
/// assert_eq!(bytes.len(), 3 * 128 + 4 + 8 + 1); // three records, each a 128-byte header
/// assert!(bytes.starts_with(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'"));
/// # Ok(()) }
/// ```
pub fn tree_serialise_leaves_to<T: Tree>(writer: impl Write, tree: &T) -> Result<()> {
    tree_serialise_leaves_with(writer, tree, |w, _, leaf| {
        default_serialise_filter_spec(w, leaf)
    })
}

/// Writes the leaves of `tree` with `filter_spec` deciding how each leaf
/// is written: Equinox's `filter_spec` argument. It is called once per leaf
/// in order, with the stream, the leaf's path and the leaf, and may write
/// nothing, a record of its own, or delegate to
/// [`default_serialise_filter_spec`].
///
/// # Examples
///
/// Skip the arrays under `.0` (a frozen backbone, say):
///
/// ```
/// use solstice::{Array, serial, tree::PathKey};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let mut bytes = Vec::new();
/// serial::tree_serialise_leaves_with(&mut bytes, &tree, |w, path, leaf| {
///     if path.keys().first() == Some(&PathKey::Index(0)) {
///         return Ok(());
///     }
///     serial::default_serialise_filter_spec(w, leaf)
/// })?;
/// assert_eq!(bytes.len(), 128 + 4);
/// # Ok(()) }
/// ```
pub fn tree_serialise_leaves_with<T: Tree>(
    mut writer: impl Write,
    tree: &T,
    mut filter_spec: impl FnMut(&mut dyn Write, &KeyPath, Leaf<'_>) -> Result<()>,
) -> Result<()> {
    crate::tree::ties::check_aliasing(tree, "tree_serialise_leaves")?;
    let mut error = None;
    tree.visit_leaves(&mut KeyPath::root(), &mut |path, leaf| {
        if error.is_some() {
            return;
        }
        if let Err(e) = filter_spec(&mut writer, path, leaf) {
            error = Some(e.context(format!("at {path}")));
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    writer.flush().map_err(Error::from)
}

/// How a leaf is written by default, as Equinox's
/// `default_serialise_filter_spec`: an array as a record of its dtype and
/// shape, a scalar as a 0-d record (`|b1`, `<i8` or `<f8`), a hole as
/// nothing.
///
/// Fails on a tracer (save outside `grad`/`vmap`) and on an integer
/// scalar that does not fit `i64`.
pub fn default_serialise_filter_spec(writer: &mut dyn Write, leaf: Leaf<'_>) -> Result<()> {
    match leaf {
        Leaf::Array(a) if a.is_hole() => Ok(()),
        Leaf::Array(a) => write_array(writer, a),
        Leaf::Scalar(s) => write_scalar(writer, s.get()),
    }
}

/// Loads a tree shaped like `like` from an `.eqx` file written by
/// [`tree_serialise_leaves`] or by Equinox: `eqx.tree_deserialise_leaves`.
/// A path without an extension gets `.eqx`.
///
/// `like` gives the structure and, for each leaf, the kind, dtype and shape
/// expected; its values are not used. Holes in `like` are left as they are,
/// so loading into a model with `Shared` ties gives a model whose ties
/// hold. Every mismatch, a file that ends early and records left over are
/// errors naming the file and the leaf's path.
pub fn tree_deserialise_leaves<T: Tree>(path: impl AsRef<Path>, like: &T) -> Result<T> {
    let path = with_suffix(path.as_ref());
    let in_file = |e: Error| e.context(format!("reading {}", path.display()));
    let file = File::open(&path).map_err(|e| in_file(e.into()))?;
    tree_deserialise_leaves_from(BufReader::new(file), like).map_err(in_file)
}

/// Loads a tree shaped like `like` from a stream holding exactly its
/// records, as [`tree_deserialise_leaves`] does from a file. Bytes after
/// the last leaf's record are an error.
pub fn tree_deserialise_leaves_from<T: Tree>(mut reader: impl Read, like: &T) -> Result<T> {
    let (out, records) = deserialise(&mut reader, like, &mut |r, _, leaf| {
        default_deserialise_filter_spec(r, leaf)
    })?;
    match npy::read_header(&mut reader) {
        Ok(None) => Ok(out),
        Ok(Some(h)) => Err(Error::structure(format!(
            "the file holds more records than `like` has leaves: record {} ({}) is left \
             over; load it into the tree it was saved from",
            records,
            describe(&h)
        ))),
        Err(e) => Err(e.context(format!(
            "after the last leaf (record {records}), where the file should end"
        ))),
    }
}

/// Loads a tree shaped like `like` with `filter_spec` deciding how each
/// leaf is read: Equinox's `filter_spec` argument. It is called once per
/// leaf in order, with the stream, the leaf's path and the leaf of (a copy
/// of) `like` to fill, and may read a record of its own, leave the leaf as
/// it is and read nothing, or delegate to
/// [`default_deserialise_filter_spec`].
///
/// It reads only the records the leaves ask for and leaves the rest of the
/// stream unread, so that a stream can hold more than one tree.
///
/// # Examples
///
/// ```
/// use solstice::{Array, serial, tree::PathKey};
/// # fn main() -> solstice::Result<()> {
/// let tree = (Array::scalar(1.0f32)?, Array::scalar(2.0f32)?);
/// let mut bytes = Vec::new();
/// serial::tree_serialise_leaves_to(&mut bytes, &tree.1)?; // only the second leaf
/// let loaded = serial::tree_deserialise_leaves_with(&bytes[..], &tree, |r, path, leaf| {
///     if path.keys().first() == Some(&PathKey::Index(0)) {
///         return Ok(()); // keep `like`'s value, read nothing
///     }
///     serial::default_deserialise_filter_spec(r, leaf)
/// })?;
/// assert_eq!(loaded.1.to_scalar::<f32>()?, 2.0);
/// # Ok(()) }
/// ```
pub fn tree_deserialise_leaves_with<T: Tree>(
    mut reader: impl Read,
    like: &T,
    mut filter_spec: impl FnMut(&mut dyn Read, &KeyPath, LeafMut<'_>) -> Result<()>,
) -> Result<T> {
    deserialise(&mut reader, like, &mut filter_spec).map(|(out, _)| out)
}

/// How a leaf is read by default, as Equinox's
/// `default_deserialise_filter_spec`: an array or scalar leaf reads one
/// record, which must match it, and a hole reads nothing.
///
/// An array record must have the leaf's dtype and shape exactly (no
/// casts). A bool leaf takes a 0-d `|b1` record, an integer leaf a 0-d
/// integer record whose value fits it, a float leaf a 0-d float record
/// (into an `f32` only if the value is exactly an `f32`).
pub fn default_deserialise_filter_spec(reader: &mut dyn Read, leaf: LeafMut<'_>) -> Result<()> {
    match leaf {
        LeafMut::Array(a) if a.is_hole() => Ok(()),
        LeafMut::Array(a) => {
            *a = read_array_like(reader, a)?;
            Ok(())
        }
        LeafMut::Scalar(s) => read_scalar_into(reader, s),
    }
}

/// Equinox's `_with_suffix`: `.eqx` is added where the path has no
/// extension.
fn with_suffix(path: &Path) -> PathBuf {
    if path.extension().is_none() {
        path.with_extension("eqx")
    } else {
        path.to_path_buf()
    }
}

type ReadSpec<'a> = dyn FnMut(&mut dyn Read, &KeyPath, LeafMut<'_>) -> Result<()> + 'a;

/// Fills a copy of `like` leaf by leaf; also returns how many leaves were
/// visited, for messages.
fn deserialise<T: Tree>(
    reader: &mut dyn Read,
    like: &T,
    spec: &mut ReadSpec<'_>,
) -> Result<(T, usize)> {
    let mut out = like.clone();
    let mut error = None;
    let mut count = 0;
    out.visit_leaves_mut(&mut KeyPath::root(), &mut |path, leaf| {
        if error.is_some() {
            return;
        }
        let is_record = !matches!(&leaf, LeafMut::Array(a) if a.is_hole());
        match spec(reader, path, leaf) {
            Ok(()) => count += usize::from(is_record),
            Err(e) => error = Some(e.context(format!("at {path} (record {count})"))),
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok((out, count)),
    }
}

fn write_array(w: &mut dyn Write, a: &Array) -> Result<()> {
    let data = bytes::to_le_bytes(a)?;
    npy::write_header(w, npy::dtype_descr(a.dtype()), a.shape())?;
    w.write_all(&data)?;
    Ok(())
}

fn write_scalar(w: &mut dyn Write, value: Scalar) -> Result<()> {
    let (descr, data): (&str, Vec<u8>) = match value {
        Scalar::Bool(b) => ("|b1", vec![u8::from(b)]),
        Scalar::Int(i) => {
            let i = i64::try_from(i).map_err(|_| {
                Error::invalid(format!(
                    "the integer {i} does not fit numpy's int64, which Python integers are \
                     saved as"
                ))
            })?;
            ("<i8", i.to_le_bytes().to_vec())
        }
        Scalar::Float(x) => ("<f8", x.to_le_bytes().to_vec()),
    };
    npy::write_header(w, descr, &[])?;
    w.write_all(&data)?;
    Ok(())
}

fn next_record(r: &mut dyn Read, wanted: &str) -> Result<NpyHeader> {
    npy::read_header(r)?.ok_or_else(|| {
        Error::structure(format!(
            "the file ends where a record for {wanted} should be: it holds fewer leaves than \
             `like`; load it into the tree it was saved from"
        ))
    })
}

fn read_array_like(r: &mut dyn Read, like: &Array) -> Result<Array> {
    let wanted = like.short_description();
    let h = next_record(r, &format!("the array {wanted}"))?;
    let descr = npy::dtype_descr(like.dtype());
    if h.descr != descr {
        let hint = if h.descr == "<f8" && descr == "<f4" {
            " (Equinox would cast it silently; solstice does not lose precision behind your \
             back: load into an f64 `like` and cast)"
        } else {
            ""
        };
        return Err(Error::dtype(format!(
            "the record is {} but `like` has {wanted}{hint}",
            describe(&h)
        )));
    }
    if h.shape != like.shape() {
        return Err(Error::shape(format!(
            "the record is {} but `like` has {wanted}",
            describe(&h)
        )));
    }
    let data = npy::read_data(r, h.data_len()?)?;
    bytes::from_le_bytes(&data, like.dtype(), like.shape())
}

fn read_scalar_into(r: &mut dyn Read, leaf: &mut dyn ScalarLeaf) -> Result<()> {
    let wanted = format!("the {} scalar", leaf.type_name());
    let h = next_record(r, &wanted)?;
    if !h.shape.is_empty() {
        return Err(Error::shape(format!(
            "the record is {} but `like` has {wanted} here, which needs a 0-d record",
            describe(&h)
        )));
    }
    let data = npy::read_data(r, h.data_len()?)?;
    let value = match h.descr.as_str() {
        "|b1" => match data[0] {
            0 => Scalar::Bool(false),
            1 => Scalar::Bool(true),
            b => {
                return Err(Error::invalid(format!(
                    "the bool record holds the byte {b}"
                )));
            }
        },
        "|i1" => Scalar::Int(i128::from(data[0] as i8)),
        "|u1" => Scalar::Int(i128::from(data[0])),
        "<i2" => Scalar::Int(i128::from(i16::from_le_bytes([data[0], data[1]]))),
        "<u2" => Scalar::Int(i128::from(u16::from_le_bytes([data[0], data[1]]))),
        "<i4" => Scalar::Int(i128::from(i32::from_le_bytes(arr(&data)))),
        "<u4" => Scalar::Int(i128::from(u32::from_le_bytes(arr(&data)))),
        "<i8" => Scalar::Int(i128::from(i64::from_le_bytes(arr(&data)))),
        "<u8" => Scalar::Int(i128::from(u64::from_le_bytes(arr(&data)))),
        "<f4" => Scalar::Float(f64::from(f32::from_le_bytes(arr(&data)))),
        "<f8" => Scalar::Float(f64::from_le_bytes(arr(&data))),
        _ => {
            return Err(Error::dtype(format!(
                "the record is {} but `like` has {wanted} here",
                describe(&h)
            )));
        }
    };
    leaf.set(value)
        .map_err(|e| e.context(format!("the record is {}", describe(&h))))
}

fn arr<const N: usize>(data: &[u8]) -> [u8; N] {
    data[..N]
        .try_into()
        .expect("the record's length was checked")
}

/// A record as Equinox prints arrays: `f32[3,4] (<f4)`.
fn describe(h: &NpyHeader) -> String {
    let name = match h.descr.as_str() {
        "<f4" => "f32",
        "<f8" => "f64",
        "<f2" => "f16",
        "<V2" => "bf16",
        "<i8" => "i64",
        "<i4" => "i32",
        "<i2" => "i16",
        "|i1" => "i8",
        "<u8" => "u64",
        "<u4" => "u32",
        "<u2" => "u16",
        "|u1" => "u8",
        "|b1" => "bool",
        _ => "?",
    };
    let dims: Vec<String> = h.shape.iter().map(|d| d.to_string()).collect();
    format!("{name}[{}] ({})", dims.join(","), h.descr)
}
