//! `#[derive(Module)]` rejects what cannot be a module, pointing at the
//! mistake. The expected messages are in `tests/ui/*.stderr`; regenerate
//! them with `TRYBUILD=overwrite cargo test --test derive_ui`.

#[test]
fn derive_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
