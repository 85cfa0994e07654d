//! A renderer for the subset of Helm's Go templates that charts/oxlb uses (no `helm`
//! binary here): `{{ .Values.a.b }}`, `.Release.Namespace`, string literals (`"..."`,
//! raw `` `...` ``), the functions `toYaml`, `quote`, `nindent N`, `indent N` in
//! pipelines, `if` / `else` / `end`, and the `{{-` / `-}}` whitespace trimming.
//! Anything else is an error, so the chart cannot silently use more than is checked.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use serde_json::Value;

#[derive(Debug)]
enum Node {
    Text(String),
    Expr(String),
    If(String, Vec<Node>, Vec<Node>),
}

/// Splits text into literal text and actions, applying the trim markers.
fn lex(template: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        // A raw string may contain "}}": find the end outside backquotes.
        let mut in_raw = false;
        let mut end = None;
        let bytes = after.as_bytes();
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == b'`' {
                in_raw = !in_raw;
            } else if !in_raw && bytes[i] == b'}' && bytes[i + 1] == b'}' {
                end = Some(i);
                break;
            }
            i += 1;
        }
        let end = end.ok_or("unclosed {{")?;
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end().to_string();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        out.push((false, text));
        out.push((true, action.trim().to_string()));
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    out.push((false, text));
    Ok(out)
}

fn parse(
    tokens: &[(bool, String)],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let (is_action, text) = &tokens[*pos];
        *pos += 1;
        if !is_action {
            nodes.push(Node::Text(text.clone()));
            continue;
        }
        if let Some(cond) = text.strip_prefix("if ") {
            let (then, ended) = parse(tokens, pos)?;
            let otherwise = match ended.as_deref() {
                Some("else") => {
                    let (otherwise, ended) = parse(tokens, pos)?;
                    if ended.as_deref() != Some("end") {
                        return Err("if without end".into());
                    }
                    otherwise
                }
                Some("end") => Vec::new(),
                _ => return Err("if without end".into()),
            };
            nodes.push(Node::If(cond.trim().to_string(), then, otherwise));
        } else if text == "end" || text == "else" {
            return Ok((nodes, Some(text.clone())));
        } else if text.starts_with("/*") {
            // comment
        } else {
            nodes.push(Node::Expr(text.clone()));
        }
    }
    Ok((nodes, None))
}

fn lookup(context: &Value, path: &str) -> Result<Value, String> {
    let mut current = context;
    for part in path.trim_start_matches('.').split('.') {
        match current.get(part) {
            Some(v) => current = v,
            None => return Ok(Value::Null),
        }
    }
    Ok(current.clone())
}

fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_yaml(value: &Value) -> String {
    match value {
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        _ => serde_saphyr::to_string(value)
            .unwrap()
            .trim_end_matches('\n')
            .to_string(),
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn operand(context: &Value, word: &str) -> Result<Value, String> {
    if word.starts_with('.') {
        lookup(context, word)
    } else if let Some(s) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Ok(Value::String(s.to_string()))
    } else if let Some(s) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        Ok(Value::String(s.to_string()))
    } else {
        Err(format!("unsupported operand {word:?}"))
    }
}

fn eval(context: &Value, pipeline: &str) -> Result<Value, String> {
    let mut value: Option<Value> = None;
    for command in pipeline.split('|').map(str::trim) {
        let words: Vec<&str> = if command.starts_with('`') || command.starts_with('"') {
            vec![command]
        } else {
            command.split_whitespace().collect()
        };
        let (name, args) = words.split_first().ok_or("empty command")?;
        let mut args: Vec<Value> = args
            .iter()
            .map(|a| operand(context, a))
            .collect::<Result<_, _>>()?;
        if let Some(v) = value.take() {
            args.push(v);
        }
        value = Some(match (*name, args.as_slice()) {
            ("toYaml", [v]) => Value::String(to_yaml(v)),
            ("quote", [v]) => Value::String(format!("{:?}", to_text(v))),
            ("nindent", [n, v]) | ("indent", [n, v]) => {
                let n: usize = to_text(n).parse().map_err(|_| format!("bad indent {n}"))?;
                let body = indent(&to_text(v), n);
                Value::String(if *name == "nindent" {
                    format!("\n{body}")
                } else {
                    body
                })
            }
            (word, []) => operand(context, word)?,
            (other, _) => return Err(format!("unsupported function {other:?}")),
        });
    }
    value.ok_or_else(|| "empty pipeline".to_string())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn render_nodes(context: &Value, nodes: &[Node], out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Expr(e) => out.push_str(&to_text(&eval(context, &fix_numbers(e))?)),
            Node::If(cond, then, otherwise) => {
                let branch = if truthy(&eval(context, cond)?) {
                    then
                } else {
                    otherwise
                };
                render_nodes(context, branch, out)?;
            }
        }
    }
    Ok(())
}

/// `nindent 8` takes a bare number: quote it so `operand` accepts it.
fn fix_numbers(pipeline: &str) -> String {
    pipeline
        .split('|')
        .map(|c| {
            let c = c.trim();
            match c.split_once(' ') {
                Some((f @ ("nindent" | "indent"), n)) => format!("{f} \"{}\"", n.trim()),
                _ => c.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Renders one template with `values` and the release namespace.
pub fn render(template: &str, values: &Value, namespace: &str) -> Result<String, String> {
    let context = serde_json::json!({
        "Values": values,
        "Release": {"Namespace": namespace, "Name": "oxlb"},
    });
    let tokens = lex(template)?;
    let mut pos = 0;
    let (nodes, ended) = parse(&tokens, &mut pos)?;
    if ended.is_some() {
        return Err("unexpected end/else".into());
    }
    let mut out = String::new();
    render_nodes(&context, &nodes, &mut out)?;
    Ok(out)
}

/// Parses a multi-document YAML stream into its non-empty documents.
pub fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.trim().is_empty() {
            let v: Value =
                serde_saphyr::from_str(current).unwrap_or_else(|e| panic!("{e}\n{current}"));
            if !v.is_null() {
                docs.push(v);
            }
        }
        current.clear();
    };
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_the_subset() {
        let values = json!({"a": {"b": "x", "list": [1, 2]}, "off": false, "m": {"k": "v"}});
        let t = "v: {{ .Values.a.b }}\n{{- if .Values.off }}\nno\n{{- else }}\nyes: {{ .Values.a.b | quote }}\n{{- end }}\nm:\n  {{- toYaml .Values.m | nindent 2 }}\nraw: {{`{{ $x }}`}}\n";
        assert_eq!(
            render(t, &values, "ns").unwrap(),
            "v: x\nyes: \"x\"\nm:\n  k: v\nraw: {{ $x }}\n"
        );
        assert!(render("{{ include \"x\" . }}", &values, "ns").is_err());
    }
}
