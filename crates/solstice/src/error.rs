//! The one error type of solstice.
//!
//! Every fallible function returns [`Result<T>`]. An [`Error`] is cheap to
//! clone and opaque: ask what went wrong with the `is_*` predicates, and read
//! the message with `Display`. Messages are lowercase, name the API item, and
//! say what to do where there is something to do. A tree path (such as
//! `.shared.pytree[1].weight`) is added as context where the failing array sits
//! inside a tree.

use std::fmt;
use std::sync::Arc;

/// `Result` with solstice's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of mistake an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Shapes that do not fit the operation.
    Shape,
    /// A dtype the operation does not accept.
    DType,
    /// An absent value or a `Shared` placeholder used as a number.
    Hole,
    /// Trees whose structures differ where they must agree.
    Structure,
    /// A transformation used wrongly (escaped tracer, non-scalar loss, ...).
    Transform,
    /// Any other invalid argument.
    Invalid,
    /// The kernel engine failed.
    Engine,
    /// Reading or writing a file or stream failed.
    Io,
    /// A buffer could not be allocated.
    OutOfMemory,
}

/// The error of every fallible solstice function.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

struct Inner {
    kind: Kind,
    message: String,
    /// Outermost last: each `context` call pushes one.
    context: Vec<String>,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error(Arc::new(Inner {
            kind,
            message: message.into(),
            context: Vec::new(),
        }))
    }

    pub(crate) fn shape(message: impl Into<String>) -> Self {
        Self::new(Kind::Shape, message)
    }

    pub(crate) fn dtype(message: impl Into<String>) -> Self {
        Self::new(Kind::DType, message)
    }

    pub(crate) fn structure(message: impl Into<String>) -> Self {
        Self::new(Kind::Structure, message)
    }

    pub(crate) fn transform(message: impl Into<String>) -> Self {
        Self::new(Kind::Transform, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }

    pub(crate) fn out_of_memory(message: impl Into<String>) -> Self {
        Self::new(Kind::OutOfMemory, message)
    }

    /// Adds where the error happened, for example the tree path of the
    /// array that failed. The outermost context is printed first.
    pub fn context(self, context: impl Into<String>) -> Self {
        let mut inner = Inner {
            kind: self.0.kind,
            message: self.0.message.clone(),
            context: self.0.context.clone(),
        };
        inner.context.push(context.into());
        Error(Arc::new(inner))
    }

    /// The message without any context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Shapes that do not fit the operation.
    pub fn is_shape_mismatch(&self) -> bool {
        self.0.kind == Kind::Shape
    }

    /// A dtype the operation does not accept.
    pub fn is_dtype_mismatch(&self) -> bool {
        self.0.kind == Kind::DType
    }

    /// An absent value or a `Shared` placeholder used as a number.
    pub fn is_hole(&self) -> bool {
        self.0.kind == Kind::Hole
    }

    /// Trees whose structures differ where they must agree.
    pub fn is_structure_mismatch(&self) -> bool {
        self.0.kind == Kind::Structure
    }

    /// A transformation (`grad`, `vmap`, ...) used wrongly.
    pub fn is_transform(&self) -> bool {
        self.0.kind == Kind::Transform
    }

    /// An invalid argument not covered by the other predicates.
    pub fn is_invalid(&self) -> bool {
        self.0.kind == Kind::Invalid
    }

    /// The kernel engine failed.
    pub fn is_engine(&self) -> bool {
        self.0.kind == Kind::Engine
    }

    /// Reading or writing a file or stream failed (not a malformed file:
    /// that is [`Error::is_invalid`]).
    pub fn is_io(&self) -> bool {
        self.0.kind == Kind::Io
    }

    /// Whether a buffer could not be allocated: the arrays asked for are
    /// larger than the memory available.
    pub fn is_out_of_memory(&self) -> bool {
        self.0.kind == Kind::OutOfMemory
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for context in self.0.context.iter().rev() {
            write!(f, "{context}: ")?;
        }
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<candle_core::Error> for Error {
    fn from(error: candle_core::Error) -> Self {
        Error::new(Kind::Engine, format!("kernel engine failed: {error}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::new(Kind::Io, format!("i/o failed: {error}"))
    }
}
