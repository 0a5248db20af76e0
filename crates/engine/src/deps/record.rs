//! The record a composition leaves in its output: each plugged dependency, what it provides,
//! its digest, and what it was granted. Stored as JSON in the custom section [`SECTION`] of the
//! composed component, so the grants travel with the component to wherever it runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The custom section's name.
pub const SECTION: &str = "dev.wasmbox.deps.v1";

/// In `net` and `http`: every rule of the app's.
pub const ALL: &str = "*";

/// The bound on the section a host will read (a record lists a few dependencies).
const MAX_SECTION: usize = 1 << 20;

/// The most dependencies a record may list: each gets a WASI context (and the directories shared
/// with it opened) at every start and every request, so a component cannot make the host hold
/// thousands of them.
pub const MAX_DEPS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Dependency `i` of this list is the one whose isolated imports carry index `i`.
    pub deps: Vec<DepRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepRecord {
    /// The path or image reference the dependency was given as.
    pub source: String,
    /// `sha256:…` of the component, or the image's manifest digest.
    pub digest: String,
    /// The interfaces of it the composition uses.
    pub provides: Vec<String>,
    /// The capability-bearing WASI interfaces it imports (its own copies, see `names`).
    #[serde(default)]
    pub isolated: Vec<String>,
    #[serde(default)]
    pub grants: DepGrants,
}

/// What a dependency may use of what the app is granted. Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepGrants {
    /// Guest paths of the app's directories the dependency sees too (`/data`, or `/data:ro` to
    /// see it read-only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    /// Names of the app's environment variables the dependency sees too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Variables set for the dependency alone (configuration, not a host capability).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_set: BTreeMap<String, String>,
    /// The app's `--net-allow` rules (as written) the dependency's sockets may use; `*`: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<String>,
    /// `--http-allow` rules for the dependency's outbound HTTP (`serve`), within the app's own;
    /// `*`: all of the app's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// WASI-NN models (by name) of the app's the dependency may load too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nn: Vec<String>,
}

impl DepGrants {
    pub fn is_empty(&self) -> bool {
        *self == DepGrants::default()
    }

    /// Adds one grant in the `--grant DEP=KIND:VALUE` form's `KIND:VALUE` part.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (kind, value) = spec.split_once(':').unwrap_or((spec, ""));
        let need = |what: &str| {
            if value.is_empty() { Err(format!("grant `{spec}` needs a value: `{kind}:{what}`")) } else { Ok(()) }
        };
        match kind {
            "dir" => {
                need("/GUEST-PATH")?;
                if !value.starts_with('/') {
                    return Err(format!(
                        "grant `{spec}`: a directory is named by the app's guest path (e.g. `dir:/data`)"
                    ));
                }
                self.dirs.push(value.to_string());
            }
            "env" => {
                need("NAME")?;
                match value.split_once('=') {
                    Some((name, v)) => self.env_set.insert(name.to_string(), v.to_string()).map(drop).unwrap_or(()),
                    None => self.env.push(value.to_string()),
                }
            }
            "net" if value.is_empty() => self.net.push(ALL.into()),
            "net" => {
                value.parse::<crate::net::NetRule>()?;
                self.net.push(value.to_string());
            }
            "http" if value.is_empty() => self.http.push(ALL.into()),
            "http" => {
                value.parse::<crate::http::HttpRule>()?;
                self.http.push(value.to_string());
            }
            "nn" => {
                need("MODEL")?;
                self.nn.push(value.to_string());
            }
            _ => {
                return Err(format!(
                    "unknown grant `{spec}` (expected dir:/GUEST, env:NAME, env:NAME=VALUE, net[:RULE], http[:RULE] or nn:MODEL)"
                ));
            }
        }
        Ok(())
    }

    /// One line per grant, in `--grant` syntax (for `inspect`).
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.dirs.iter().map(|d| format!("dir:{d}")).collect();
        out.extend(self.env.iter().map(|e| format!("env:{e}")));
        out.extend(self.env_set.iter().map(|(k, v)| format!("env:{k}={v}")));
        let rules = |kind: &str, rules: &[String]| -> Vec<String> {
            rules.iter().map(|r| if r == ALL { kind.to_string() } else { format!("{kind}:{r}") }).collect()
        };
        out.extend(rules("net", &self.net));
        out.extend(rules("http", &self.http));
        out.extend(self.nn.iter().map(|m| format!("nn:{m}")));
        out
    }
}

impl Record {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }
}

/// The record in `component`'s custom section, if it has one. Reads only the top level of the
/// component (nested modules and components are skipped, not parsed).
pub fn read_record(component: &[u8]) -> Result<Option<Record>, String> {
    use wasmparser::{Chunk, Parser, Payload};
    // Only the component's own sections are read: nested modules and components (the parts,
    // most of the bytes) are stepped over unparsed, since `run` reads this at every start, and a
    // nested component's record (a dependency that was itself composed) is not this one's.
    // Damaged Wasm has no record to read: compiling it reports what is wrong (126).
    let mut parser = Parser::new(0);
    let mut data = component;
    loop {
        let Ok(Chunk::Parsed { payload, consumed }) = parser.parse(data, true) else { return Ok(None) };
        data = &data[consumed..];
        match payload {
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                let Some(rest) = data.get(unchecked_range.len()..) else { return Ok(None) };
                data = rest;
            }
            Payload::CustomSection(s) if s.name() == SECTION => {
                if s.data().len() > MAX_SECTION {
                    return Err(format!("the `{SECTION}` section is larger than {MAX_SECTION} bytes"));
                }
                let record: Record = serde_json::from_slice(s.data())
                    .map_err(|e| format!("the `{SECTION}` section is malformed: {e}"))?;
                if record.deps.len() > MAX_DEPS {
                    return Err(format!(
                        "the `{SECTION}` section lists {} dependencies; at most {MAX_DEPS} are allowed",
                        record.deps.len()
                    ));
                }
                return Ok(Some(record));
            }
            Payload::End(_) => return Ok(None),
            _ => {}
        }
    }
}

/// The bytes of the custom section holding `record`, to append to a component.
pub fn section_bytes(record: &Record) -> Vec<u8> {
    let name = SECTION.as_bytes();
    let data = record.to_json();
    let mut body = Vec::new();
    leb(&mut body, name.len() as u64);
    body.extend_from_slice(name);
    body.extend_from_slice(data.as_bytes());
    let mut out = vec![0u8];
    leb(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_too_many_dependencies_is_refused() {
        let dep = DepRecord {
            source: "d.wasm".into(),
            digest: "sha256:0".into(),
            provides: vec![],
            isolated: vec![],
            grants: DepGrants::default(),
        };
        let component = |n: usize| {
            let record = Record { deps: vec![dep.clone(); n] };
            let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
            bytes.extend(section_bytes(&record));
            bytes
        };
        assert_eq!(read_record(&component(MAX_DEPS)).unwrap().unwrap().deps.len(), MAX_DEPS);
        assert!(read_record(&component(MAX_DEPS + 1)).unwrap_err().contains("at most 64"));
    }

    #[test]
    fn grants_parse() {
        let mut g = DepGrants::default();
        g.add("dir:/data").unwrap();
        g.add("env:GREETING").unwrap();
        g.add("env:MODE=fast").unwrap();
        g.add("net").unwrap();
        g.add("http:api.example.com").unwrap();
        assert_eq!(g.describe(), ["dir:/data", "env:GREETING", "env:MODE=fast", "net", "http:api.example.com"]);
        assert!(g.add("net:not a rule").is_err());
        assert!(g.add("dir:data").is_err());
        assert!(g.add("files:/x").is_err());
        assert!(g.add("env").is_err());
    }
}
