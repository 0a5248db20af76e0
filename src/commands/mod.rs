//! One file per subcommand: each parses its flags into library types and calls a crate.

pub mod compile;
pub mod inspect;
pub mod run;

use std::path::Path;

use wasmbox_engine::{Artifact, CompileCache, CompileSource, Compiled, Runtime};

use crate::home::wasmbox_home;

/// The compile cache under `$WASMBOX_HOME/cache`, unless disabled.
pub fn compile_cache(no_cache: bool) -> anyhow::Result<Option<CompileCache>> {
    if no_cache {
        return Ok(None);
    }
    Ok(Some(CompileCache::new(&wasmbox_home()?.join("cache"))))
}

/// Reads `path` and compiles it (through the cache when given).
pub fn load_and_compile(
    rt: &Runtime,
    path: &Path,
    cache: Option<&CompileCache>,
    allow_precompiled: bool,
) -> anyhow::Result<(Artifact, Compiled, CompileSource)> {
    let artifact = wasmbox_engine::artifact::load(path)?;
    let (compiled, source) = wasmbox_engine::compile(rt, &artifact, cache, allow_precompiled)?;
    Ok((artifact, compiled, source))
}
