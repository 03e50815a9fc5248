//! `#[derive(Module)]` for solstice. Use it through `solstice::Module`.
//!
//! The derive runs in named stages:
//! - `attr` parses the `#[module(...)]` attributes of the struct and of each
//!   field;
//! - `check` rejects what cannot be a module (enums, unions);
//! - `expand` writes the `Tree`, `Clone` and `Debug` impls.
//!
//! Every mistake is reported at once, each at its own span. Generated code
//! names only `::solstice::__private`.

mod attr;
mod check;
mod expand;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `Tree`, `Clone` and `Debug` (Equinox-style pretty printing) for a
/// struct whose fields are trees.
///
/// Field options: `#[module(static)]` marks configuration, not leaves;
/// `#[module(name = "fn")]` prints (and keys) a field under another name.
/// Struct options: `#[module(name = "MLP")]` prints the struct under
/// Equinox's name; `#[module(no_clone)]` and `#[module(no_debug)]` leave
/// those impls to the user (a `Tree` must still be `Clone`).
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    check::module(&input)
        .and_then(|fields| expand::module(&input, &fields))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
