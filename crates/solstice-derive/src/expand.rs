//! Writing the impls.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, Index, Type, WherePredicate, parse_quote};

use crate::attr::Role;
use crate::check::ModuleField;

pub(crate) fn module(
    input: &DeriveInput,
    (fields, named): &(Vec<ModuleField<'_>>, bool),
) -> syn::Result<TokenStream> {
    let p = quote!(::solstice::__private);
    let name = &input.ident;
    let options = crate::attr::container(&input.attrs)?;
    let name_str = options.name.clone().unwrap_or_else(|| name.to_string());

    let accessors: Vec<TokenStream> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.field.ident {
            Some(ident) => quote!(#ident),
            None => {
                let index = Index::from(i);
                quote!(#index)
            }
        })
        .collect();
    let labels: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| match (&f.name, &f.field.ident) {
            (Some(name), _) => name.clone(),
            (None, Some(ident)) => ident.to_string().trim_start_matches("r#").to_string(),
            (None, None) => i.to_string(),
        })
        .collect();

    let mut visit = Vec::new();
    let mut visit_mut = Vec::new();
    let mut structure = Vec::new();
    for ((f, access), label) in fields.iter().zip(&accessors).zip(&labels) {
        let key = if *named {
            quote!(#p::PathKey::Field(#label))
        } else {
            let i: usize = label.parse().unwrap_or_default();
            quote!(#p::PathKey::Index(#i))
        };
        match f.role {
            Role::Child => {
                // Spanned at the field's type, so a type that is not a tree
                // is reported at the field, not at the derive.
                let ty = &f.field.ty;
                visit.push(quote_spanned! {ty.span()=>
                    path.push(#key);
                    <#ty as #p::Tree>::visit_leaves(&self.#access, path, f);
                    path.pop();
                });
                visit_mut.push(quote! {
                    path.push(#key);
                    #p::Tree::visit_leaves_mut(&mut self.#access, path, f);
                    path.pop();
                });
                structure.push(quote! {
                    (::std::string::String::from(#label), #p::Tree::structure(&self.#access))
                });
            }
            Role::Static => structure.push(quote! {
                (
                    ::std::string::String::from(#label),
                    #p::Structure::Static(::std::format!("{:?}", &self.#access)),
                )
            }),
        }
    }

    let clone_body = if *named {
        quote!(#name { #(#accessors: ::std::clone::Clone::clone(&self.#accessors)),* })
    } else {
        quote!(#name ( #(::std::clone::Clone::clone(&self.#accessors)),* ))
    };

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let params: Vec<Ident> = input
        .generics
        .type_params()
        .map(|t| t.ident.clone())
        .collect();
    // Bound the field types that mention a type parameter, as serde does:
    // children must be trees, static fields printable and clonable.
    let mut bounds: Vec<WherePredicate> = where_clause
        .map(|w| w.predicates.iter().cloned().collect())
        .unwrap_or_default();
    for f in fields {
        let ty = &f.field.ty;
        if !mentions(ty, &params) {
            continue;
        }
        bounds.push(match f.role {
            Role::Child => parse_quote!(#ty: #p::Tree),
            Role::Static => parse_quote!(#ty: ::std::fmt::Debug + ::std::clone::Clone),
        });
    }
    let where_tokens = quote!(where #(#bounds,)*);

    let clone_impl = if options.clone {
        quote! {
            #[automatically_derived]
            impl #impl_generics ::std::clone::Clone for #name #ty_generics #where_tokens {
                fn clone(&self) -> Self {
                    #clone_body
                }
            }
        }
    } else {
        TokenStream::new()
    };
    let debug_impl = if options.debug {
        quote! {
            #[automatically_derived]
            impl #impl_generics ::std::fmt::Debug for #name #ty_generics #where_tokens {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    #p::tree_fmt(self, f)
                }
            }
        }
    } else {
        TokenStream::new()
    };

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #p::Tree for #name #ty_generics #where_tokens {
            #[allow(unused_variables)]
            fn visit_leaves(
                &self,
                path: &mut #p::KeyPath,
                f: &mut dyn ::std::ops::FnMut(&#p::KeyPath, #p::Leaf<'_>),
            ) {
                #(#visit)*
            }

            #[allow(unused_variables)]
            fn visit_leaves_mut(
                &mut self,
                path: &mut #p::KeyPath,
                f: &mut dyn ::std::ops::FnMut(&#p::KeyPath, #p::LeafMut<'_>),
            ) {
                #(#visit_mut)*
            }

            fn structure(&self) -> #p::Structure {
                #p::Structure::Struct {
                    name: ::std::string::String::from(#name_str),
                    fields: ::std::vec![#(#structure),*],
                }
            }
        }

        #clone_impl

        #debug_impl
    })
}

/// Whether `ty` names any of `params`.
fn mentions(ty: &Type, params: &[Ident]) -> bool {
    fn walk(tokens: TokenStream, params: &[Ident]) -> bool {
        tokens.into_iter().any(|t| match t {
            TokenTree::Ident(i) => params.contains(&i),
            TokenTree::Group(g) => walk(g.stream(), params),
            _ => false,
        })
    }
    walk(quote!(#ty), params)
}
