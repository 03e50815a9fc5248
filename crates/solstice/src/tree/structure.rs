//! [`Structure`]: a tree's shape without its data, and Equinox-style printing.
//!
//! A structure records everything about a tree except array contents: node
//! types, field names, static field values, sequence lengths, and for every
//! array slot its dtype and shape (or which hole it is). Two trees whose
//! structures are equal can be combined slot by slot; `Shared` demands equal
//! structures of the nodes it ties.

use std::fmt;

use crate::array::DType;

/// A tree's structure. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub enum Structure {
    /// An array slot holding a value or tracer.
    Array {
        /// The element type.
        dtype: DType,
        /// The shape.
        shape: Vec<usize>,
    },
    /// An absent slot (Equinox's `None`).
    Absent,
    /// A `Shared` placeholder (Equinox's `SharedNode`).
    Placeholder,
    /// A non-array leaf, such as an `f64` hyperparameter, with its value.
    Scalar(String),
    /// A static field's value, part of the structure (Equinox's
    /// `field(static=True)`).
    Static(String),
    /// `Option::None`: an empty node, as Python's `None` is in JAX.
    None,
    /// A struct: its name and fields in declaration order.
    Struct {
        /// The type's name.
        name: String,
        /// `(field name, structure)`, in declaration order. Tuple structs
        /// name fields `0`, `1`, ...
        fields: Vec<(String, Structure)>,
    },
    /// A tuple.
    Tuple(Vec<Structure>),
    /// A `Vec` or fixed-size array.
    List(Vec<Structure>),
    /// A node printed as an opaque item, such as `Shared`'s functions.
    Opaque(String),
}

impl Structure {
    /// Whether both have the same tree definition: equal except for the
    /// shapes, dtypes and values of leaves (what JAX calls the treedef).
    pub fn same_treedef(&self, other: &Structure) -> bool {
        use Structure as S;
        match (self, other) {
            (a, b) if a.is_slot() && b.is_slot() => true,
            (
                S::Struct {
                    name: a,
                    fields: fa,
                },
                S::Struct {
                    name: b,
                    fields: fb,
                },
            ) => {
                a == b
                    && fa.len() == fb.len()
                    && fa
                        .iter()
                        .zip(fb)
                        .all(|((na, sa), (nb, sb))| na == nb && sa.same_treedef(sb))
            }
            (S::Tuple(a), S::Tuple(b)) | (S::List(a), S::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_treedef(y))
            }
            (a, b) => a == b,
        }
    }

    /// Whether this is a leaf position: an array slot (value or hole) or a
    /// scalar.
    fn is_slot(&self) -> bool {
        matches!(
            self,
            Structure::Array { .. }
                | Structure::Absent
                | Structure::Placeholder
                | Structure::Scalar(_)
        )
    }

    /// Equinox's `tree_pformat`: one line where it fits in 80 columns,
    /// otherwise one child per line, indented by two.
    pub fn pformat(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, 0, 80);
        out
    }

    fn flat(&self) -> String {
        match self {
            Structure::Array { dtype, shape } => {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                format!("{}[{}]", dtype.short_name(), dims.join(","))
            }
            Structure::Absent | Structure::None => "None".to_string(),
            Structure::Placeholder => "SharedNode".to_string(),
            Structure::Scalar(v) | Structure::Static(v) | Structure::Opaque(v) => v.clone(),
            _ => {
                let (open, close, items) = self.parts();
                let parts: Vec<String> = items
                    .iter()
                    .map(|(label, s)| format!("{label}{}", s.flat()))
                    .collect();
                let trailing = if matches!(self, Structure::Tuple(t) if t.len() == 1) {
                    ","
                } else {
                    ""
                };
                format!("{open}{}{trailing}{close}", parts.join(", "))
            }
        }
    }

    /// Opening text, closing text, and labelled children of a composite.
    fn parts(&self) -> (String, &'static str, Vec<(String, &Structure)>) {
        match self {
            Structure::Struct { name, fields } => (
                format!("{name}("),
                ")",
                fields.iter().map(|(n, s)| (format!("{n}="), s)).collect(),
            ),
            Structure::Tuple(items) => (
                "(".to_string(),
                ")",
                items.iter().map(|s| (String::new(), s)).collect(),
            ),
            Structure::List(items) => (
                "[".to_string(),
                "]",
                items.iter().map(|s| (String::new(), s)).collect(),
            ),
            _ => (String::new(), "", Vec::new()),
        }
    }

    /// Writes this node where `used` columns of the current line are taken
    /// (indentation and a field label) and later lines start at `indent`.
    fn write(&self, out: &mut String, indent: usize, used: usize, width: usize) {
        let flat = self.flat();
        let (open, close, items) = self.parts();
        if used + flat.len() <= width || items.is_empty() {
            out.push_str(&flat);
            return;
        }
        let inner = indent + 2;
        // As Equinox does: first try the children on one indented line,
        // then one child per line.
        let children: Vec<String> = items
            .iter()
            .map(|(label, s)| format!("{label}{}", s.flat()))
            .collect();
        let one_line = children.join(", ");
        out.push_str(&open);
        out.push('\n');
        out.push_str(&" ".repeat(inner));
        if inner + one_line.len() <= width {
            out.push_str(&one_line);
        } else {
            for (i, (label, child)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                    out.push_str(&" ".repeat(inner));
                }
                out.push_str(label);
                child.write(out, inner, inner + label.len(), width);
            }
        }
        out.push('\n');
        out.push_str(&" ".repeat(indent));
        out.push_str(close);
    }
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pformat())
    }
}
