//! What a precompiled file's native code assumes, read from wasmtime's own record inside it (the
//! `.wasmtime.engine` ELF section: a version byte, the wasmtime version string, then postcard:
//! target triple, shared compiler flags, ISA flags). Only read for `inspect`; wasmtime checks the
//! same record itself before it loads the code.

use object::{Object, ObjectSection};

/// The target triple and the optional CPU features (ISA flags that are on) the code assumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeInfo {
    pub triple: String,
    pub cpu_features: Vec<String>,
}

pub fn read(elf: &[u8]) -> Option<NativeInfo> {
    let file = object::File::parse(elf).ok()?;
    let data = file.section_by_name(".wasmtime.engine")?.data().ok()?;
    let (&version, rest) = data.split_first()?;
    if version != 0 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let mut r = Postcard(rest.get(len as usize..)?);
    let triple = r.str()?.to_string();
    skip_flags(&mut r)?;
    let mut cpu_features = Vec::new();
    for _ in 0..r.varint()? {
        let name = r.str()?;
        if let Some(true) = r.flag_bool()? {
            cpu_features.push(name.strip_prefix("has_").unwrap_or(name).to_string());
        }
    }
    Some(NativeInfo { triple, cpu_features })
}

fn skip_flags(r: &mut Postcard<'_>) -> Option<()> {
    for _ in 0..r.varint()? {
        r.str()?;
        r.flag_bool()?;
    }
    Some(())
}

struct Postcard<'a>(&'a [u8]);

impl<'a> Postcard<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        std::str::from_utf8(bytes).ok()
    }

    /// wasmtime's `FlagValue`: `Enum(str)`, `Num(u8)` or `Bool(bool)`; the bool, if it is one.
    fn flag_bool(&mut self) -> Option<Option<bool>> {
        let variant = self.varint()?;
        if variant == 0 {
            return self.str().map(|_| None);
        }
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        match variant {
            1 => Some(None),
            2 => Some(Some(b == 1)),
            _ => None,
        }
    }
}
