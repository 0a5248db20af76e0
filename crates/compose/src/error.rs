//! Why a composition failed, in terms of the parts as the user named them.

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A part is not a component (a core module, or not Wasm).
    #[error("{part} is not a WebAssembly component: {reason}")]
    NotAComponent { part: String, reason: String },
    /// An import of `part` that no dependency exports and wasmbox does not provide.
    #[error("{part} imports `{import}`, which no --plug dependency exports and wasmbox does not provide")]
    Unsatisfied { part: String, import: String },
    /// A dependency exports the interface, but with another type.
    #[error("{0}")]
    Incompatible(Box<Mismatch>),
    /// Two dependencies export one interface that a part imports.
    #[error("`{import}` (imported by {part}) is exported by both {first} and {second}: plug only one of them")]
    Ambiguous { part: String, import: String, first: String, second: String },
    /// A dependency that satisfies nothing: most likely the wrong file.
    #[error("{dep} exports nothing that {app} or another dependency imports (it exports: {exports})")]
    Unused { dep: String, app: String, exports: String },
    /// A `[dependencies]` entry whose component does not provide the interface it is listed for.
    #[error("{dep} is listed for `{key}` in [dependencies] but provides {provides}")]
    WrongProvider { dep: String, key: String, provides: String },
    /// Dependencies that import each other.
    #[error("the dependencies import each other in a cycle ({parts}): a composition must be acyclic")]
    Cycle { parts: String },
    /// The encoder or the validator refused the result (a bug, or parts wasmbox cannot join).
    #[error("the composed component is invalid: {0}")]
    Invalid(String),
}

/// Where an export and the import it would satisfy differ.
#[derive(Debug, thiserror::Error)]
#[error(
    "{dep} exports `{import}` with an incompatible type for {part}: {detail}; {part} expects `{expected}`, {dep} has `{found}`"
)]
pub struct Mismatch {
    pub part: String,
    pub dep: String,
    pub import: String,
    pub detail: String,
    pub expected: String,
    pub found: String,
}
