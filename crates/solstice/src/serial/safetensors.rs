//! safetensors checkpoints, keyed by tree paths, with ties stored once.
//!
//! **Tensor names.** A leaf's name is its key path with every step joined
//! by dots and no leading dot, as PyTorch's `state_dict` names parameters:
//! `.shared.pytree[1].weight` is `shared.pytree.1.weight`. A tree that is a
//! single leaf names it `<root>`. See [`safetensors_name`].
//!
//! **Leaves.** Arrays are stored with their dtype (`F32`, `F64`, `I64`,
//! `I32`, `U32`, `U8`) and shape. Scalar leaves are 0-d tensors: a bool as
//! `BOOL`, an integer as `I64`, a float as `F64`. Holes are not stored.
//!
//! **Ties.** A leaf tied through [`Shared`](crate::nn::Shared) is a
//! placeholder, so it is not stored: its value is the model's `get` of the
//! sources. Its name is listed in `__metadata__` under
//! `solstice.placeholder.<name>`, whose value is a JSON object naming the
//! tensors `get` reads and the name `get` was given with
//! [`Shared::named`](crate::nn::Shared::named), or `null`:
//! `{"get":"transpose","sources":["shared.pytree.0.weight"]}`. A reader
//! that knows what `get` does (the identity, for a tied embedding and
//! head) can restore the tie from it; [`SafetensorsFile::placeholders`]
//! reads it back. One array that sits at
//! two paths (the same array, [`Array::is`]) is almost always a mistake, so
//! saving it is refused unless the save runs inside
//! [`allow_aliasing`](crate::tree::allow_aliasing); then it is stored once, under the first
//! path, and the second is recorded as `solstice.tie.<second name>` with
//! the first name as its value; loading gives both paths the same array
//! again. `__metadata__` also holds `"format": "pt"`, which Hugging Face's
//! loaders ask for.
//!
//! **Loading** maps the file into memory (a file is read once, however
//! large). Every leaf of `like` must find a tensor of its dtype and shape,
//! and every tensor of the file must be used; anything else is an error
//! naming the file, the tensor and the key path. The `_with` variants take
//! a hook that renames and transforms, to read or write another library's
//! layout.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::atomic::write_atomically;
use super::bytes;
use crate::array::{Array, DType};
use crate::error::{Error, Result};
use crate::tree::{KeyPath, Leaf, LeafMut, PathKey, Scalar, ScalarLeaf, Tree};

const TIE: &str = "solstice.tie.";
const PLACEHOLDER: &str = "solstice.placeholder.";

/// A leaf's tensor name: its key path joined by dots, without a leading
/// dot (`shared.pytree.1.weight`); `<root>` for the root.
///
/// # Examples
///
/// ```
/// use solstice::{serial::safetensors_name, tree::{KeyPath, PathKey}};
/// let mut path = KeyPath::root();
/// for key in [PathKey::Field("blocks"), PathKey::Index(2), PathKey::Field("weight")] {
///     path.push(key);
/// }
/// assert_eq!(safetensors_name(&path), "blocks.2.weight");
/// assert_eq!(safetensors_name(&KeyPath::root()), "<root>");
/// ```
pub fn safetensors_name(path: &KeyPath) -> String {
    if path.keys().is_empty() {
        return "<root>".to_string();
    }
    let parts: Vec<String> = path
        .keys()
        .iter()
        .map(|k| match k {
            PathKey::Field(name) => name.to_string(),
            PathKey::Index(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

/// A tensor left out because it is a [`Shared`](crate::nn::Shared)
/// placeholder, as [`SafetensorsFile::placeholders`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placeholder<'a> {
    /// The placeholder's tensor name.
    pub name: &'a str,
    /// The name `get` was given with
    /// [`Shared::named`](crate::nn::Shared::named), if any.
    pub get: Option<String>,
    /// The tensors `get` reads, by their stored names.
    pub sources: Vec<String>,
}

/// Saves `tree` to a safetensors file, replacing it atomically. See the
/// [module docs](self) for the names, dtypes and ties.
///
/// # Examples
///
/// ```
/// use solstice::{nn::{Embedding, Linear, Shared}, random::Key, serial};
/// # fn main() -> solstice::Result<()> {
/// let dir = std::env::temp_dir().join(format!("solstice-doc-st-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let [k1, k2] = Key::new(0).split();
/// let pair = (Embedding::new(5, 3, k1)?, Linear::new(3, 5, k2)?);
/// let tied = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
/// let path = dir.join("model.safetensors");
/// serial::save_safetensors(&path, &tied)?;
/// let file = serial::SafetensorsFile::open(&path)?;
/// assert_eq!(file.names(), ["pytree.0.weight", "pytree.1.bias"]); // the tied weight once
/// let loaded = serial::load_safetensors(&path, &tied)?;
/// let (embedding, linear) = loaded.call()?;
/// assert!(embedding.weight.is(&linear.weight));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
pub fn save_safetensors<T: Tree>(path: impl AsRef<Path>, tree: &T) -> Result<()> {
    save_safetensors_with(path, tree, |_, name, a| {
        Ok(Some((name.to_string(), a.clone())))
    })
}

/// Saves `tree` to a safetensors file with `hook` deciding, for each array
/// leaf (path, default name, array), the name and array to store, or
/// `None` to leave it out. Scalars are stored under their default names.
/// This is how another library's layout is written: rename, transpose,
/// drop a tied head.
pub fn save_safetensors_with<T: Tree>(
    path: impl AsRef<Path>,
    tree: &T,
    hook: impl FnMut(&KeyPath, &str, &Array) -> Result<Option<(String, Array)>>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = safetensors_bytes_with(tree, hook)
        .map_err(|e| e.context(format!("writing {}", path.display())))?;
    write_atomically(path, |w| Ok(std::io::Write::write_all(w, &bytes)?))
}

/// The bytes of the safetensors file [`save_safetensors`] writes.
pub fn safetensors_bytes<T: Tree>(tree: &T) -> Result<Vec<u8>> {
    safetensors_bytes_with(tree, |_, name, a| Ok(Some((name.to_string(), a.clone()))))
}

/// The bytes of the safetensors file [`save_safetensors_with`] writes.
pub fn safetensors_bytes_with<T: Tree>(
    tree: &T,
    mut hook: impl FnMut(&KeyPath, &str, &Array) -> Result<Option<(String, Array)>>,
) -> Result<Vec<u8>> {
    crate::tree::ties::check_aliasing(tree, "save_safetensors")?;
    let tie_sources = placeholder_sources(tree)?;
    // Default name -> stored name, for sources the hook renamed or dropped.
    let mut stored_names: HashMap<String, String> = HashMap::new();
    let mut placeholders: Vec<(String, Option<TieSource>)> = Vec::new();
    let mut tensors: Vec<Entry> = Vec::new();
    let mut stored: Vec<(Array, String)> = Vec::new();
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let mut error = None;
    tree.visit_leaves(&mut KeyPath::root(), &mut |path, leaf| {
        if error.is_some() {
            return;
        }
        let name = safetensors_name(path);
        let result = (|| -> Result<()> {
            match leaf {
                Leaf::Array(a) if a.is_placeholder() => {
                    placeholders.push((name, tie_sources.get(path).cloned()));
                }
                Leaf::Array(a) if a.is_hole() => {}
                Leaf::Array(a) => {
                    let default = name;
                    let Some((name, a)) = hook(path, &default, a)? else {
                        return Ok(());
                    };
                    stored_names.insert(default, name.clone());
                    if let Some((_, first)) = stored.iter().find(|(b, _)| b.is(&a)) {
                        metadata.insert(format!("{TIE}{name}"), first.clone());
                        return Ok(());
                    }
                    tensors.push(Entry {
                        dtype: st_dtype(a.dtype()),
                        shape: a.shape().to_vec(),
                        data: bytes::to_le_bytes(&a)?,
                        name: name.clone(),
                    });
                    stored.push((a, name));
                }
                Leaf::Scalar(s) => tensors.push(scalar_entry(name, s.get())?),
            }
            Ok(())
        })();
        if let Err(e) = result {
            error = Some(e.context(format!("at {path}")));
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    for (name, tie) in placeholders {
        let value = match tie {
            Some((get, sources)) => {
                let sources: Vec<&str> = sources
                    .iter()
                    .filter_map(|s| stored_names.get(s).map(String::as_str))
                    .collect();
                serde_json::json!({ "get": get, "sources": sources }).to_string()
            }
            None => serde_json::json!({ "get": null, "sources": [] }).to_string(),
        };
        metadata.insert(format!("{PLACEHOLDER}{name}"), value);
    }
    encode(tensors, &metadata)
}

/// The name a tie's `get` was given, and the default names of the tensors
/// it reads.
type TieSource = (Option<String>, Vec<String>);

/// For every placeholder slot of `tree`, the name `get` was given and the
/// default tensor names of the leaves `get` reads.
fn placeholder_sources<T: Tree>(tree: &T) -> Result<HashMap<KeyPath, TieSource>> {
    let mut out = HashMap::new();
    for group in crate::tree::tie_groups(tree)? {
        let sources: Vec<String> = group
            .sources
            .iter()
            .map(|s| safetensors_name(&s.path))
            .collect();
        for node in &group.tied {
            for slot in &node.slots {
                out.insert(slot.path.clone(), (group.name.clone(), sources.clone()));
            }
        }
    }
    Ok(out)
}

/// Saves named arrays, not a tree, to a safetensors file, replacing it
/// atomically: for a layout that is not one tensor per leaf (another
/// library's fused or transposed weights, assembled by the caller).
/// `__metadata__` holds `"format": "pt"`; two arrays under one name are an
/// error.
///
/// # Examples
///
/// ```
/// use solstice::{Array, serial};
/// # fn main() -> solstice::Result<()> {
/// let dir = std::env::temp_dir().join(format!("solstice-doc-st-named-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("named.safetensors");
/// let w = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// serial::save_safetensors_named(&path, &[("h.0.w".to_string(), w.clone())])?;
/// let file = serial::SafetensorsFile::open(&path)?;
/// assert_eq!(file.names(), ["h.0.w"]);
/// assert_eq!(file.array("h.0.w")?.to_vec::<f32>()?, w.to_vec::<f32>()?);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
pub fn save_safetensors_named(path: impl AsRef<Path>, tensors: &[(String, Array)]) -> Result<()> {
    let path = path.as_ref();
    let bytes = safetensors_named_bytes(tensors)
        .map_err(|e| e.context(format!("writing {}", path.display())))?;
    write_atomically(path, |w| Ok(std::io::Write::write_all(w, &bytes)?))
}

/// The bytes of the safetensors file [`save_safetensors_named`] writes.
pub fn safetensors_named_bytes(tensors: &[(String, Array)]) -> Result<Vec<u8>> {
    let mut entries = Vec::with_capacity(tensors.len());
    for (name, a) in tensors {
        if a.is_hole() {
            return Err(Error::new(
                crate::error::Kind::Hole,
                format!(
                    "the tensor {name:?} is a hole (absent or a placeholder), which has no data"
                ),
            ));
        }
        entries.push(Entry {
            dtype: st_dtype(a.dtype()),
            shape: a.shape().to_vec(),
            data: bytes::to_le_bytes(a).map_err(|e| e.context(format!("tensor {name:?}")))?,
            name: name.clone(),
        });
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    encode(entries, &metadata)
}

/// Loads a tree shaped like `like` from a safetensors file, memory-mapped.
/// See the [module docs](self).
pub fn load_safetensors<T: Tree>(path: impl AsRef<Path>, like: &T) -> Result<T> {
    let file = SafetensorsFile::open(path)?;
    file.load(like)
}

/// Loads a tree shaped like `like` from a safetensors file with `hook`
/// finding each array leaf's value: it gets the leaf's path, its default
/// name and the file, and returns the array (which must match the leaf's
/// dtype and shape), or `None` to keep `like`'s value. Scalars are read
/// under their default names. Tensors the hook does not use are not an
/// error here.
///
/// # Examples
///
/// Reading a file whose names and layout differ (`[in, out]` weights, as
/// Hugging Face's `Conv1D` stores them):
///
/// ```
/// use solstice::{nn::Linear, random::Key, serial};
/// # fn main() -> solstice::Result<()> {
/// let dir = std::env::temp_dir().join(format!("solstice-doc-st-hook-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("other.safetensors");
/// let model = Linear::new(3, 2, Key::new(0))?;
/// // Write it as the other library would: `proj.w` holds the transpose.
/// serial::save_safetensors_with(&path, &model, |_, name, a| {
///     Ok(Some(match name {
///         "weight" => ("proj.w".to_string(), a.t()?),
///         _ => (format!("proj.{name}"), a.clone()),
///     }))
/// })?;
/// let loaded = serial::load_safetensors_with(&path, &model, |_, name, file| {
///     Ok(Some(match name {
///         "weight" => file.array("proj.w")?.t()?,
///         _ => file.array(&format!("proj.{name}"))?,
///     }))
/// })?;
/// assert!(solstice::tree::tree_equal(&loaded, &model)?);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
pub fn load_safetensors_with<T: Tree>(
    path: impl AsRef<Path>,
    like: &T,
    hook: impl FnMut(&KeyPath, &str, &SafetensorsFile) -> Result<Option<Array>>,
) -> Result<T> {
    let file = SafetensorsFile::open(path)?;
    file.load_with(like, hook)
}

/// An open safetensors file: its header checked, its data memory-mapped
/// (or held, for [`SafetensorsFile::from_bytes`]).
pub struct SafetensorsFile {
    data: Data,
    name: String,
    /// Tensor names in file order, and where their bytes start.
    header_len: usize,
    info: HashMap<String, TensorInfo>,
    order: Vec<String>,
    metadata: BTreeMap<String, String>,
    /// The names read so far, so that `load` can refuse unused tensors.
    used: RefCell<HashSet<String>>,
}

enum Data {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl SafetensorsFile {
    /// Opens and memory-maps a file and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let in_file = |e: Error| e.context(format!("reading {name}"));
        let file = std::fs::File::open(path).map_err(|e| in_file(e.into()))?;
        // SAFETY: the map is read-only and private to this value. As with
        // every memory-mapped reader (safetensors' own, candle's), another
        // process truncating the file while it is open is not defended
        // against; savers here replace files by renaming, never in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| in_file(e.into()))?;
        Self::new(Data::Mapped(map), name)
    }

    /// Reads a file held in memory (named `<memory>` in errors).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::new(Data::Owned(bytes), "<memory>".to_string())
    }

    fn new(data: Data, name: String) -> Result<Self> {
        let in_file = |e: Error| e.context(format!("reading {name}"));
        let buffer: &[u8] = match &data {
            Data::Mapped(m) => m,
            Data::Owned(v) => v,
        };
        let (header_len, meta) = SafeTensors::read_metadata(buffer)
            .map_err(|e| in_file(Error::invalid(format!("not a valid safetensors file: {e}"))))?;
        let mut info = HashMap::new();
        let mut order: Vec<(usize, String)> = Vec::new();
        for (tensor, i) in meta.tensors() {
            order.push((i.data_offsets.0, tensor.clone()));
            info.insert(tensor, (i.dtype, i.shape.clone(), i.data_offsets));
        }
        order.sort();
        let metadata = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(SafetensorsFile {
            data,
            name,
            header_len,
            info,
            order: order.into_iter().map(|(_, n)| n).collect(),
            metadata,
            used: RefCell::new(HashSet::new()),
        })
    }

    /// The tensor names, in the order their data sits in the file.
    pub fn names(&self) -> Vec<&str> {
        self.order.iter().map(String::as_str).collect()
    }

    /// The `__metadata__` entries.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The `Shared` placeholders recorded in `__metadata__`: each tied
    /// tensor's name, the name of its `get` (if it was given one) and the
    /// names of the tensors `get` reads. A file written before sources were
    /// recorded lists a placeholder with no sources.
    pub fn placeholders(&self) -> Vec<Placeholder<'_>> {
        self.metadata
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(PLACEHOLDER)?;
                let parsed: serde_json::Value = serde_json::from_str(v).unwrap_or_default();
                let get = parsed.get("get").and_then(|g| g.as_str()).map(String::from);
                let sources = parsed
                    .get("sources")
                    .and_then(|s| s.as_array())
                    .map(|s| {
                        s.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(Placeholder { name, get, sources })
            })
            .collect()
    }

    /// The ties recorded in `__metadata__`: `(tied name, source name)`.
    pub fn ties(&self) -> Vec<(&str, &str)> {
        self.metadata
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(TIE)?, v.as_str())))
            .collect()
    }

    /// The tensor `name` as an array. A name recorded as a tie gives its
    /// source's tensor.
    pub fn array(&self, name: &str) -> Result<Array> {
        let (dtype, shape, data) = self.tensor(name)?;
        let dtype =
            from_st_dtype(dtype).map_err(|e| self.err(e.context(format!("tensor {name:?}"))))?;
        bytes::from_le_bytes(data, dtype, &shape)
            .map_err(|e| self.err(e.context(format!("tensor {name:?}"))))
    }

    fn tensor(&self, name: &str) -> Result<(Dtype, Vec<usize>, &[u8])> {
        let name = match self.info.get(name) {
            Some(_) => name,
            None => self
                .metadata
                .get(&format!("{TIE}{name}"))
                .map_or(name, String::as_str),
        };
        let Some((dtype, shape, (start, end))) = self.info.get(name) else {
            return Err(self.err(Error::structure(format!(
                "the file has no tensor {name:?}; it holds {}",
                preview(&self.order)
            ))));
        };
        let buffer: &[u8] = match &self.data {
            Data::Mapped(m) => m,
            Data::Owned(v) => v,
        };
        self.used.borrow_mut().insert(name.to_string());
        // The crate checked the offsets against the buffer's length.
        let base = 8 + self.header_len;
        Ok((*dtype, shape.clone(), &buffer[base + start..base + end]))
    }

    fn err(&self, e: Error) -> Error {
        e.context(format!("reading {}", self.name))
    }

    /// Loads a tree shaped like `like`, as [`load_safetensors`] does.
    pub fn load<T: Tree>(&self, like: &T) -> Result<T> {
        let out = self.load_with(like, |_, name, file| Ok(Some(file.array(name)?)))?;
        let unused = self.unused();
        if !unused.is_empty() {
            let unused: Vec<String> = unused.iter().map(|n| n.to_string()).collect();
            return Err(self.err(Error::structure(format!(
                "the file holds tensors `like` has no leaf for: {}; load it into the tree it \
                 was saved from, or pick tensors with load_safetensors_with",
                preview(&unused)
            ))));
        }
        Ok(out)
    }

    /// Loads a tree shaped like `like` with a hook, as
    /// [`load_safetensors_with`] does.
    pub fn load_with<T: Tree>(
        &self,
        like: &T,
        mut hook: impl FnMut(&KeyPath, &str, &SafetensorsFile) -> Result<Option<Array>>,
    ) -> Result<T> {
        self.used.borrow_mut().clear();
        self.fill(like, &mut hook)
    }

    /// The tensors the last load (or, before any, no read) did not use, in
    /// file order: after [`SafetensorsFile::load_with`], what a hook left
    /// out, for a caller that wants to refuse or report it.
    pub fn unused(&self) -> Vec<&str> {
        let used = self.used.borrow();
        self.order
            .iter()
            .filter(|n| !used.contains(*n))
            .map(String::as_str)
            .collect()
    }

    fn fill<T: Tree>(&self, like: &T, hook: &mut LoadHook<'_>) -> Result<T> {
        let mut out = like.clone();
        let mut error = None;
        // Arrays already loaded, by stored name, so that ties come back as
        // one array.
        let mut loaded: HashMap<String, Array> = HashMap::new();
        out.visit_leaves_mut(&mut KeyPath::root(), &mut |path, leaf| {
            if error.is_some() {
                return;
            }
            let name = safetensors_name(path);
            let result = (|| -> Result<()> {
                match leaf {
                    LeafMut::Array(a) if a.is_hole() => Ok(()),
                    LeafMut::Array(a) => {
                        let source = self
                            .metadata
                            .get(&format!("{TIE}{name}"))
                            .cloned()
                            .unwrap_or_else(|| name.clone());
                        let value = match loaded.get(&source) {
                            Some(v) => Some(v.clone()),
                            None => hook(path, &name, self)?,
                        };
                        let Some(value) = value else { return Ok(()) };
                        check_like(&value, a)?;
                        loaded.insert(source, value.clone());
                        *a = value;
                        Ok(())
                    }
                    LeafMut::Scalar(s) => {
                        let (dtype, shape, data) = self.tensor(&name)?;
                        read_scalar(dtype, &shape, data, s)
                    }
                }
            })();
            if let Err(e) = result {
                error = Some(self.err(e.context(format!("at {path} (tensor {name:?})"))));
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// A tensor's dtype, shape and data offsets.
type TensorInfo = (Dtype, Vec<usize>, (usize, usize));

type LoadHook<'a> = dyn FnMut(&KeyPath, &str, &SafetensorsFile) -> Result<Option<Array>> + 'a;

struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn st_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::U32 => Dtype::U32,
        DType::U8 => Dtype::U8,
    }
}

fn from_st_dtype(dtype: Dtype) -> Result<DType> {
    Ok(match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::U32 => DType::U32,
        Dtype::U8 => DType::U8,
        other => {
            return Err(Error::dtype(format!(
                "the dtype {other:?} has no solstice array dtype (F32, F64, I64, I32, U32, U8)"
            )));
        }
    })
}

fn check_like(value: &Array, like: &Array) -> Result<()> {
    if value.dtype() != like.dtype() || value.shape() != like.shape() {
        let what = if value.dtype() != like.dtype() {
            Error::dtype
        } else {
            Error::shape
        };
        return Err(what(format!(
            "the tensor is {} but `like` has {}; solstice does not convert on load",
            value.short_description(),
            like.short_description()
        )));
    }
    Ok(())
}

fn scalar_entry(name: String, value: Scalar) -> Result<Entry> {
    let (dtype, data) = match value {
        Scalar::Bool(b) => (Dtype::BOOL, vec![u8::from(b)]),
        Scalar::Int(i) => {
            let i = i64::try_from(i).map_err(|_| {
                Error::invalid(format!(
                    "the integer {i} does not fit the I64 it is stored as"
                ))
            })?;
            (Dtype::I64, i.to_le_bytes().to_vec())
        }
        Scalar::Float(x) => (Dtype::F64, x.to_le_bytes().to_vec()),
    };
    Ok(Entry {
        name,
        dtype,
        shape: Vec::new(),
        data,
    })
}

fn read_scalar(
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
    leaf: &mut dyn ScalarLeaf,
) -> Result<()> {
    if !shape.is_empty() {
        return Err(Error::shape(format!(
            "the tensor has shape {shape:?} but `like` has a {} scalar here, which needs a 0-d \
             tensor",
            leaf.type_name()
        )));
    }
    let b = |n: usize| -> Result<&[u8]> {
        data.get(..n)
            .filter(|_| data.len() == n)
            .ok_or_else(|| Error::invalid("the scalar tensor's data has the wrong length"))
    };
    let value = match dtype {
        Dtype::BOOL => match b(1)?[0] {
            0 => Scalar::Bool(false),
            1 => Scalar::Bool(true),
            x => {
                return Err(Error::invalid(format!(
                    "the bool tensor holds the byte {x}"
                )));
            }
        },
        Dtype::U8 => Scalar::Int(i128::from(b(1)?[0])),
        Dtype::I8 => Scalar::Int(i128::from(b(1)?[0] as i8)),
        Dtype::I32 => Scalar::Int(i128::from(i32::from_le_bytes(b(4)?.try_into().unwrap()))),
        Dtype::U32 => Scalar::Int(i128::from(u32::from_le_bytes(b(4)?.try_into().unwrap()))),
        Dtype::I64 => Scalar::Int(i128::from(i64::from_le_bytes(b(8)?.try_into().unwrap()))),
        Dtype::U64 => Scalar::Int(i128::from(u64::from_le_bytes(b(8)?.try_into().unwrap()))),
        Dtype::F32 => Scalar::Float(f64::from(f32::from_le_bytes(b(4)?.try_into().unwrap()))),
        Dtype::F64 => Scalar::Float(f64::from_le_bytes(b(8)?.try_into().unwrap())),
        other => {
            return Err(Error::dtype(format!(
                "the tensor's dtype {other:?} is not a scalar solstice reads into a {} leaf",
                leaf.type_name()
            )));
        }
    };
    leaf.set(value)
}

/// The file bytes: safetensors' layout (an 8-byte little-endian header
/// length, a JSON header padded with spaces to 8 bytes, the data), with
/// tensors ordered as the safetensors crate orders them (by dtype
/// alignment, then name). The header is written here, rather than by the
/// crate, so that `__metadata__` comes out in a fixed order: the crate
/// writes a hash map, whose order changes from run to run.
fn encode(mut tensors: Vec<Entry>, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| b.dtype.cmp(&a.dtype).then(a.name.cmp(&b.name)));
    for w in tensors.windows(2) {
        if w[0].name == w[1].name {
            return Err(Error::invalid(format!(
                "two leaves are saved under the name {:?}; rename one in the hook",
                w[0].name
            )));
        }
    }
    let json = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let mut header = String::from("{");
    let meta: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("{}:{}", json(k), json(v)))
        .collect();
    header.push_str(&format!("\"__metadata__\":{{{}}}", meta.join(",")));
    let mut offset = 0usize;
    for t in &tensors {
        let dtype = serde_json::to_string(&t.dtype).expect("dtypes serialise");
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":{dtype},\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json(&t.name),
            shape.join(","),
            offset,
            offset + t.data.len()
        ));
        offset += t.data.len();
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in &tensors {
        out.extend_from_slice(&t.data);
    }
    Ok(out)
}

/// Up to eight names, for messages.
fn preview(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("{n:?}")).collect();
    let more = names.len().saturating_sub(8);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else if shown.is_empty() {
        "no tensors".to_string()
    } else {
        shown.join(", ")
    }
}
