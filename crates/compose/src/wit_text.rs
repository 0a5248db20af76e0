//! Types as WIT text for error messages (`func(name: string) -> string`). Named types print
//! their structure, since a component's type section does not keep WIT names.

use wac_graph::types::{DefinedType, FuncTypeId, ItemKind, Types, ValueType};

pub fn func(types: &Types, id: FuncTypeId) -> String {
    let f = &types[id];
    let params: Vec<String> = f.params.iter().map(|(n, t)| format!("{n}: {}", value(types, t))).collect();
    let mut out = format!("func({})", params.join(", "));
    if let Some(r) = &f.result {
        out.push_str(&format!(" -> {}", value(types, r)));
    }
    out
}

pub fn item(types: &Types, kind: ItemKind) -> String {
    match kind {
        ItemKind::Func(id) => func(types, id),
        ItemKind::Instance(id) => {
            let i = &types[id];
            let members: Vec<String> = i.exports.iter().map(|(n, k)| format!("{n}: {}", item(types, *k))).collect();
            format!("interface {{ {} }}", members.join("; "))
        }
        ItemKind::Type(wac_graph::types::Type::Resource(id)) => format!("resource {}", types[id].name),
        ItemKind::Type(wac_graph::types::Type::Value(v)) | ItemKind::Value(v) => value(types, &v),
        other => other.desc(types).to_string(),
    }
}

pub fn value(types: &Types, ty: &ValueType) -> String {
    match ty {
        ValueType::Primitive(p) => p.desc().to_string(),
        ValueType::Borrow(r) => format!("borrow<{}>", types[*r].name),
        ValueType::Own(r) => types[*r].name.clone(),
        ValueType::Defined(id) => defined(types, &types[*id]),
    }
}

fn defined(types: &Types, ty: &DefinedType) -> String {
    let v = |t: &ValueType| value(types, t);
    let opt = |t: &Option<ValueType>| t.as_ref().map(v).unwrap_or_else(|| "_".into());
    match ty {
        DefinedType::Tuple(ts) => format!("tuple<{}>", ts.iter().map(v).collect::<Vec<_>>().join(", ")),
        DefinedType::List(t) => format!("list<{}>", v(t)),
        DefinedType::FixedSizeList(t, n) => format!("list<{}, {n}>", v(t)),
        DefinedType::Map(k, t) => format!("map<{}, {}>", v(k), v(t)),
        DefinedType::Option(t) => format!("option<{}>", v(t)),
        DefinedType::Result { ok, err } => match (ok, err) {
            (None, None) => "result".into(),
            _ => format!("result<{}, {}>", opt(ok), opt(err)),
        },
        DefinedType::Variant(var) => {
            let cases: Vec<String> = var
                .cases
                .iter()
                .map(|(n, t)| match t {
                    Some(t) => format!("{n}({})", v(t)),
                    None => n.clone(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        DefinedType::Record(r) => {
            let fields: Vec<String> = r.fields.iter().map(|(n, t)| format!("{n}: {}", v(t))).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        DefinedType::Flags(f) => format!("flags {{ {} }}", f.0.iter().cloned().collect::<Vec<_>>().join(", ")),
        DefinedType::Enum(e) => format!("enum {{ {} }}", e.0.iter().cloned().collect::<Vec<_>>().join(", ")),
        DefinedType::Alias(t) => v(t),
        DefinedType::Stream(t) => format!("stream<{}>", opt(t)),
        DefinedType::Future(t) => format!("future<{}>", opt(t)),
    }
}
