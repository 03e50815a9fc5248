//! Parsing `#[module(...)]` attributes: on fields and on the struct.

use syn::{Attribute, Field, LitStr, spanned::Spanned};

/// What a field is to the tree.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A child tree whose arrays are leaves (the default).
    Child,
    /// Configuration that is part of the structure, not a leaf:
    /// Equinox's `field(static=True)`.
    Static,
}

/// What the struct's own `#[module(...)]` attribute asks for.
pub(crate) struct Container {
    /// The name printed for the struct, if not its Rust name.
    pub(crate) name: Option<String>,
    /// Whether to write `Clone`.
    pub(crate) clone: bool,
    /// Whether to write `Debug`.
    pub(crate) debug: bool,
}

/// Reads the struct's options.
///
/// Accepted forms, combinable:
/// - `#[module(name = "MLP")]`: print as `MLP(...)`, Equinox's name;
/// - `#[module(no_clone)]`, `#[module(no_debug)]`: write no `Clone` or
///   `Debug` impl, for a struct that has its own (`Tree` needs `Clone`).
pub(crate) fn container(attrs: &[Attribute]) -> syn::Result<Container> {
    let mut out = Container {
        name: None,
        clone: true,
        debug: true,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                out.name = Some(name.value());
                Ok(())
            } else if meta.path.is_ident("no_clone") {
                out.clone = false;
                Ok(())
            } else if meta.path.is_ident("no_debug") {
                out.debug = false;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[module(...)] option on a struct; struct options are \
                     `name = \"...\"`, `no_clone` and `no_debug`",
                ))
            }
        })?;
    }
    Ok(out)
}

/// Reads the role of `field` and the name it prints under (if not its
/// own) from its attributes.
///
/// Accepted forms:
/// - no attribute: a child;
/// - `#[module(static)]`: a static field;
/// - `#[module(name = "fn")]`: printed and keyed as `fn`, for a field whose
///   Equinox name is a Rust keyword.
pub(crate) fn field_role(field: &Field) -> syn::Result<(Role, Option<String>)> {
    let mut role = Role::Child;
    let mut name = None;
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        if matches!(attr.meta, syn::Meta::Path(_)) {
            push(syn::Error::new(
                attr.span(),
                "expected #[module(static)], found a bare #[module]",
            ));
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            // #[module(static)]
            if meta.path.is_ident("static") {
                if role == Role::Static {
                    return Err(meta.error("duplicate `static` in #[module(...)]"));
                }
                role = Role::Static;
                Ok(())
            } else if meta.path.is_ident("name") {
                let label: LitStr = meta.value()?.parse()?;
                name = Some(label.value());
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[module(...)] option; field options are `static` and `name = \"...\"`",
                ))
            }
        });
        if let Err(e) = parsed {
            push(e);
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok((role, name)),
    }
}
