//! Key paths: where a node sits in a tree, as `.shared.pytree[1].weight`.

use std::fmt;

/// One step of a [`KeyPath`]: a struct field or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathKey {
    /// A named field, printed `.name`.
    Field(&'static str),
    /// A position in a tuple, `Vec` or fixed array, printed `[i]`.
    Index(usize),
}

/// The path from a tree's root to one of its nodes.
///
/// # Examples
///
/// ```
/// use solstice::tree::{KeyPath, PathKey};
/// let mut path = KeyPath::root();
/// path.push(PathKey::Field("shared"));
/// path.push(PathKey::Index(1));
/// path.push(PathKey::Field("weight"));
/// assert_eq!(path.to_string(), ".shared[1].weight");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<PathKey>);

impl KeyPath {
    /// The empty path, naming the root.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// Descends one step.
    pub fn push(&mut self, key: PathKey) {
        self.0.push(key);
    }

    /// Goes back up one step.
    pub fn pop(&mut self) {
        self.0.pop();
    }

    /// The steps from the root.
    pub fn keys(&self) -> &[PathKey] {
        &self.0
    }

    /// The path of these steps from the root.
    pub fn from_keys(keys: &[PathKey]) -> Self {
        KeyPath(keys.to_vec())
    }
}

/// `path` without its trailing `tail`, if it ends so: the path of the node
/// that holds `tail`.
pub(crate) fn strip_suffix(path: &KeyPath, tail: &KeyPath) -> Option<KeyPath> {
    let (keys, tail) = (path.keys(), tail.keys());
    let head = keys.len().checked_sub(tail.len())?;
    (keys[head..] == *tail).then(|| KeyPath::from_keys(&keys[..head]))
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for key in &self.0 {
            match key {
                PathKey::Field(name) => write!(f, ".{name}")?,
                PathKey::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}
