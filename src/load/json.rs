//! A minimal JSON writer (no serde): a value tree written with correct string escaping
//! and numbers that are always valid JSON.

use std::fmt::Write as _;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// A whole number.
    Int(u64),
    /// A number; NaN and infinities are written as `null` (JSON has no such numbers).
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object; keys keep their order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// `Num(x)`, or `Null` for `None`.
    pub fn opt_num(x: Option<f64>) -> Json {
        x.map_or(Json::Null, Json::Num)
    }

    /// The value as pretty-printed JSON text (two-space indent, trailing newline).
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Num(x) if x.is_finite() => {
                // `Display` of a finite f64 is digits, an optional '-' and '.', never an
                // exponent: always a valid JSON number.
                let _ = write!(out, "{x}");
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => write_string(out, s),
            Json::Arr(items) => {
                write_container(out, depth, '[', ']', items.iter(), |out, item, depth| {
                    item.write(out, depth)
                })
            }
            Json::Obj(pairs) => write_container(
                out,
                depth,
                '{',
                '}',
                pairs.iter(),
                |out, (key, value), depth| {
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, depth);
                },
            ),
        }
    }
}

fn write_container<T>(
    out: &mut String,
    depth: usize,
    open: char,
    close: char,
    items: impl ExactSizeIterator<Item = T>,
    mut each: impl FnMut(&mut String, T, usize),
) {
    out.push(open);
    if items.len() == 0 {
        out.push(close);
        return;
    }
    for (i, item) in items.enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        indent(out, depth + 1);
        each(out, item, depth + 1);
    }
    out.push('\n');
    indent(out, depth);
    out.push(close);
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(Json::Null.to_pretty(), "null\n");
        assert_eq!(Json::Int(42).to_pretty(), "42\n");
        assert_eq!(Json::Num(1.5).to_pretty(), "1.5\n");
        assert_eq!(Json::Num(3.0).to_pretty(), "3\n");
        assert_eq!(Json::Num(-0.000001).to_pretty(), "-0.000001\n");
        assert_eq!(Json::Num(1e21).to_pretty(), "1000000000000000000000\n");
        assert_eq!(Json::Num(f64::NAN).to_pretty(), "null\n");
        assert_eq!(Json::Num(f64::INFINITY).to_pretty(), "null\n");
        assert_eq!(Json::opt_num(None), Json::Null);
    }

    #[test]
    fn strings_are_escaped() {
        let s = Json::Str("a\"b\\c\nd\te\u{1}f\u{7f}é".into()).to_pretty();
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\te\\u0001f\u{7f}é\"\n");
    }

    #[test]
    fn nested_containers_are_indented() {
        let v = Json::obj([
            ("a", Json::Arr(vec![Json::Int(1), Json::Int(2)])),
            ("b", Json::obj::<&str>([])),
            ("c", Json::Arr(vec![])),
            ("k\"ey", Json::Null),
        ]);
        assert_eq!(
            v.to_pretty(),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"k\\\"ey\": null\n}\n"
        );
    }
}
