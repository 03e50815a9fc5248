//! Checks across the whole input: what may derive `Module`.

use syn::{Data, DeriveInput, Field, Fields};

use crate::attr::{Role, field_role};

/// A field with its parsed role.
pub(crate) struct ModuleField<'a> {
    pub(crate) field: &'a Field,
    pub(crate) role: Role,
    /// The name it prints under, if `#[module(name = ...)]` gave one.
    pub(crate) name: Option<String>,
}

/// The fields of a struct that may derive `Module`, with their roles, or
/// every error found.
pub(crate) fn module(input: &DeriveInput) -> syn::Result<(Vec<ModuleField<'_>>, bool)> {
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span,
                "#[derive(Module)] supports structs only; a module is a tree with fixed fields",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "#[derive(Module)] supports structs only; a module is a tree with fixed fields",
            ));
        }
    };
    let named = matches!(fields, Fields::Named(_));
    let mut out = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for field in fields.iter() {
        match field_role(field) {
            Ok((role, name)) => out.push(ModuleField { field, role, name }),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok((out, named)),
    }
}
