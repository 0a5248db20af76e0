//! `inspect --wit`: a component's world as WIT text — its imports, exports and the types they
//! use — decoded and printed the way `wasm-tools component wit` does (the same crate and
//! version, wit-component 0.262 = wasm-tools 1.262), so the text is byte-identical.

use wit_component::WitPrinter;

/// The WIT of `component` (its world first, then the packages it uses).
pub fn world_text(component: &[u8]) -> Result<String, String> {
    let decoded = wit_component::decode(component).map_err(|e| format!("{e:#}"))?;
    let resolve = decoded.resolve();
    let main = decoded.package();
    let others: Vec<_> = resolve.packages.iter().map(|(id, _)| id).filter(|id| *id != main).collect();
    let mut printer = WitPrinter::default();
    printer.emit_docs(true);
    printer.print(resolve, main, &others).map_err(|e| format!("{e:#}"))?;
    Ok(printer.output.to_string())
}
