//! Parsing `#[module(...)]` field attributes.

use syn::{Field, spanned::Spanned};

/// What a field is to the tree.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A child tree whose arrays are leaves (the default).
    Child,
    /// Configuration that is part of the structure, not a leaf:
    /// Equinox's `field(static=True)`.
    Static,
}

/// Reads the role of `field` from its attributes.
///
/// Accepted forms:
/// - no attribute: a child;
/// - `#[module(static)]`: a static field.
pub(crate) fn field_role(field: &Field) -> syn::Result<Role> {
    let mut role = Role::Child;
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
            } else {
                Err(meta.error("unknown #[module(...)] option; the only field option is `static`"))
            }
        });
        if let Err(e) = parsed {
            push(e);
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(role),
    }
}
