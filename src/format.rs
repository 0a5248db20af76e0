//! `--format` for listings (`ps`, `images`): `json` (one object per line, like docker), or a
//! Go-template subset: `{{.Field}}` placeholders (spaces inside the braces allowed), `\t` and
//! `\n` escapes, and a leading `table ` for a header row and aligned columns. Anything else in
//! Go templates (functions, pipes, conditionals) is refused with the list of fields.

use std::collections::BTreeMap;

#[derive(Debug, PartialEq)]
pub enum Part {
    Text(String),
    Field(&'static str),
}

#[derive(Debug)]
pub enum Format {
    Json,
    Template { table: bool, parts: Vec<Part> },
}

impl Format {
    /// Parses `spec` against the fields a listing has.
    pub fn parse(spec: &str, fields: &[&'static str]) -> anyhow::Result<Format> {
        if spec.trim() == "json" {
            return Ok(Format::Json);
        }
        let (table, body) = match spec.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => (true, rest.trim_start()),
            _ => (false, spec),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| anyhow::anyhow!("invalid --format `{spec}`: `{{{{` without `}}}}`"))?;
            let inner = rest[open + 2..open + close].trim();
            let name = inner.strip_prefix('.').unwrap_or("");
            let Some(field) = fields.iter().find(|f| **f == name) else {
                anyhow::bail!(
                    "invalid --format `{spec}`: `{{{{{inner}}}}}` is not supported (fields: {}; or `json`)",
                    fields.iter().map(|f| format!("{{{{.{f}}}}}")).collect::<Vec<_>>().join(" ")
                );
            };
            parts.push(Part::Field(field));
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Format::Template { table, parts })
    }

    /// Prints `rows` (field name → value) in this format.
    pub fn print(&self, rows: &[BTreeMap<&'static str, String>]) -> anyhow::Result<()> {
        match self {
            Format::Json => {
                for row in rows {
                    println!("{}", serde_json::to_string(row)?);
                }
            }
            Format::Template { table: false, parts } => {
                for row in rows {
                    println!("{}", render(parts, |f| row.get(f).cloned().unwrap_or_default()));
                }
            }
            Format::Template { table: true, parts } => {
                let header = render(parts, upper_words);
                let lines: Vec<String> = std::iter::once(header)
                    .chain(rows.iter().map(|row| render(parts, |f| row.get(f).cloned().unwrap_or_default())))
                    .collect();
                print_aligned(&lines);
            }
        }
        Ok(())
    }
}

fn render(parts: &[Part], value: impl Fn(&'static str) -> String) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Field(f) => value(f),
        })
        .collect()
}

/// `CreatedAt` → `CREATED AT`, as docker titles its columns.
fn upper_words(field: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in field.chars() {
        if c.is_uppercase() && previous.is_some_and(|p| !p.is_uppercase()) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
        previous = Some(c);
    }
    out
}

/// Tab-separated cells become columns three spaces apart.
fn print_aligned(lines: &[String]) {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in &cells {
        let line: Vec<String> = row.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", line.join("   ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["ID", "Names", "CreatedAt"];

    #[test]
    fn templates_parse_into_text_and_fields() {
        let Format::Template { table, parts } = Format::parse("{{.ID}}: {{ .Names }}\\t!", FIELDS).unwrap() else {
            panic!()
        };
        assert!(!table);
        assert_eq!(
            parts,
            vec![Part::Field("ID"), Part::Text(": ".into()), Part::Field("Names"), Part::Text("\t!".into())]
        );
        assert!(matches!(Format::parse("table {{.ID}}", FIELDS).unwrap(), Format::Template { table: true, .. }));
        assert!(matches!(Format::parse("json", FIELDS).unwrap(), Format::Json));
        for bad in ["{{.Nope}}", "{{.ID", "{{json .}}", "{{upper .ID}}"] {
            let err = Format::parse(bad, FIELDS).unwrap_err().to_string();
            assert!(err.contains("{{.ID}} {{.Names}} {{.CreatedAt}}") || err.contains("without"), "{bad}: {err}");
        }
        assert_eq!(upper_words("CreatedAt"), "CREATED AT");
        assert_eq!(upper_words("ID"), "ID");
    }
}
