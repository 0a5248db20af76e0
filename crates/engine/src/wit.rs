//! `inspect --wit`: a component's world as WIT text — its imports, exports and the types they
//! use — decoded and printed the way `wasm-tools component wit` does (the same crate and
//! version, wit-component 0.262 = wasm-tools 1.262), so the text is byte-identical.

/// The WIT of `component` (its world first, then the packages it uses).
#[cfg(feature = "wit")]
pub fn world_text(component: &[u8]) -> Result<String, String> {
    use wit_component::WitPrinter;

    let decoded = wit_component::decode(component).map_err(|e| format!("{e:#}"))?;
    let resolve = decoded.resolve();
    let main = decoded.package();
    let others: Vec<_> = resolve.packages.iter().map(|(id, _)| id).filter(|id| *id != main).collect();
    let mut printer = WitPrinter::default();
    printer.emit_docs(true);
    printer.print(resolve, main, &others).map_err(|e| format!("{e:#}"))?;
    Ok(printer.output.to_string())
}

/// Builds without the `wit` feature (the edge build) leave the decoder out.
#[cfg(not(feature = "wit"))]
pub fn world_text(_: &[u8]) -> Result<String, String> {
    Err("this wasmbox was built without WIT support (the `wit` feature); use a full build".into())
}
