//! The one error type of solstice.
//!
//! Every fallible function returns [`Result<T>`]. An [`Error`] is one opaque
//! type, cheap to clone: ask what went wrong with the `is_*` predicates, read
//! the message with `Display`, and reach the underlying failure of the kernel
//! engine or of I/O through [`std::error::Error::source`], which keeps it as
//! it was rather than as text. Messages are lowercase, name the API item, and
//! say what to do where there is something to do.
//!
//! A tree path (such as `.shared.pytree[1].weight`) or an operation's name is
//! added as context where the failing array sits inside a tree. Context wraps
//! the error in a new link instead of copying it, so adding it costs the
//! context string and nothing else.

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
    /// A bug in solstice: an invariant it should have kept did not hold.
    Internal,
}

/// The underlying failure an [`Error`] keeps as its `source()`.
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every fallible solstice function: one opaque type, cheap
/// to clone. Ask what went wrong with the `is_*` predicates (`is_internal`
/// marks a bug in solstice rather than a mistake in its use), read the
/// message with `Display`, and reach a kernel or I/O failure, kept as it
/// was, through [`std::error::Error::source`]. [`Error::context`] wraps the
/// error without copying it.
///
/// # Examples
///
/// ```
/// use solstice::Array;
/// let a = Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let b = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
/// let err = a.add(&b).unwrap_err();
/// assert!(err.is_shape_mismatch() && !err.is_internal());
/// let err = err.context("in layer 2");
/// assert_eq!(err.to_string(), "in layer 2: add got shapes [2] and [3], which do not broadcast");
/// assert!(std::error::Error::source(&err).is_none());
/// ```
#[derive(Clone)]
pub struct Error(Arc<Repr>);

enum Repr {
    Root {
        kind: Kind,
        message: String,
        source: Option<Source>,
    },
    /// `context` around an inner error, printed before it.
    Context { context: String, inner: Error },
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error(Arc::new(Repr::Root {
            kind,
            message: message.into(),
            source: None,
        }))
    }

    /// An error of `kind` caused by `source`, which `source()` returns.
    pub(crate) fn caused_by(
        kind: Kind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error(Arc::new(Repr::Root {
            kind,
            message: message.into(),
            source: Some(Arc::new(source)),
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

    /// A broken invariant of solstice itself; the message says what and
    /// is reported as a bug.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            Kind::Internal,
            format!("{} (this is a bug in solstice)", message.into()),
        )
    }

    /// Adds where the error happened, for example the tree path of the
    /// array that failed. The outermost context is printed first. The error
    /// is wrapped, not copied.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error(Arc::new(Repr::Context {
            context: context.into(),
            inner: self,
        }))
    }

    /// The innermost error: the one that context was added to.
    fn root(&self) -> (&Kind, &str, Option<&Source>) {
        let mut e = self;
        loop {
            match &*e.0 {
                Repr::Root {
                    kind,
                    message,
                    source,
                } => return (kind, message, source.as_ref()),
                Repr::Context { inner, .. } => e = inner,
            }
        }
    }

    fn kind(&self) -> Kind {
        *self.root().0
    }

    /// The message without any context.
    pub fn message(&self) -> &str {
        self.root().1
    }

    /// Shapes that do not fit the operation.
    pub fn is_shape_mismatch(&self) -> bool {
        self.kind() == Kind::Shape
    }

    /// A dtype the operation does not accept.
    pub fn is_dtype_mismatch(&self) -> bool {
        self.kind() == Kind::DType
    }

    /// An absent value or a `Shared` placeholder used as a number.
    pub fn is_hole(&self) -> bool {
        self.kind() == Kind::Hole
    }

    /// Trees whose structures differ where they must agree.
    pub fn is_structure_mismatch(&self) -> bool {
        self.kind() == Kind::Structure
    }

    /// A transformation (`grad`, `vmap`, ...) used wrongly.
    pub fn is_transform(&self) -> bool {
        self.kind() == Kind::Transform
    }

    /// An invalid argument not covered by the other predicates.
    pub fn is_invalid(&self) -> bool {
        self.kind() == Kind::Invalid
    }

    /// The kernel engine failed; `source()` is its error.
    pub fn is_engine(&self) -> bool {
        self.kind() == Kind::Engine
    }

    /// Reading or writing a file or stream failed (not a malformed file:
    /// that is [`Error::is_invalid`]); `source()` is the I/O error.
    pub fn is_io(&self) -> bool {
        self.kind() == Kind::Io
    }

    /// A bug in solstice rather than a mistake in its use: an invariant it
    /// should have kept did not hold. Worth reporting.
    pub fn is_internal(&self) -> bool {
        self.kind() == Kind::Internal
    }

    /// Whether a buffer could not be allocated: the arrays asked for are
    /// larger than the memory available.
    pub fn is_out_of_memory(&self) -> bool {
        self.kind() == Kind::OutOfMemory
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Repr::Context { context, inner } => write!(f, "{context}: {inner}"),
            Repr::Root {
                message, source, ..
            } => match source {
                Some(source) => write!(f, "{message}: {source}"),
                None => f.write_str(message),
            },
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.root()
            .2
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl From<candle_core::Error> for Error {
    fn from(error: candle_core::Error) -> Self {
        Error::caused_by(Kind::Engine, "kernel engine failed", error)
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::caused_by(Kind::Io, "i/o failed", error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_wraps_and_keeps_the_kind_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::from(io).context("reading model.eqx");
        assert!(err.is_io() && !err.is_internal());
        assert_eq!(err.message(), "i/o failed");
        assert_eq!(
            err.to_string(),
            "reading model.eqx: i/o failed: no such file"
        );
        let source = std::error::Error::source(&err).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn kernel_errors_are_kept_as_the_source() {
        let err = Error::from(candle_core::Error::Msg("out of memory".into())).context("in exp");
        assert!(err.is_engine());
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<candle_core::Error>().is_some());
        assert_eq!(
            err.to_string(),
            "in exp: kernel engine failed: out of memory"
        );
    }

    #[test]
    fn internal_errors_say_so() {
        let err = Error::internal("a rule returned two outputs");
        assert!(err.is_internal() && !err.is_invalid());
        assert!(err.to_string().ends_with("(this is a bug in solstice)"));
    }
}
