//! Two answers to one request, compared: by status, by the headers chosen,
//! and by body. A JSON body is compared field by field, each difference
//! named by its path (`$.rooms[*].price`, array positions folded into
//! `[*]` so one field is one line whatever the position); any other body by
//! its bytes. The result is a set of [`Difference`]s, not of values: which
//! fields differ and how, which is what noise is learned on and what a
//! route's differences are counted by.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The most differences one comparison names; past it the rest are left
/// out (a comparison with that many already differs beyond any noise).
pub const MAX_DIFFERENCES: usize = 64;

/// The deepest JSON nesting walked; below it a subtree is compared whole.
const MAX_DEPTH: usize = 32;

/// How a field differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Same type, another value.
    Value,
    /// Another JSON type (a number become a string, an object become null).
    Type,
    /// In the first answer, not in the second.
    Missing,
    /// In the second answer, not in the first.
    Added,
    /// An array with the same elements in another order.
    Order,
}

impl Kind {
    /// Whether noise can excuse it: a field whose value (or order) stable
    /// itself changes may change; no field may change type, vanish or
    /// appear because another field is noisy.
    pub fn is_excusable(self) -> bool {
        matches!(self, Kind::Value | Kind::Order)
    }

    /// The name used in JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Value => "value",
            Kind::Type => "type",
            Kind::Missing => "missing",
            Kind::Added => "added",
            Kind::Order => "order",
        }
    }
}

/// One way two answers differ: where (`status`, `header:<name>`, `body`,
/// or a JSON path such as `$.rooms[*].price`) and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Difference {
    /// Where.
    pub at: String,
    /// How.
    pub kind: Kind,
}

/// One answer, as compared.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body, whole (an answer over the compare limit is not compared).
    pub body: &'a [u8],
}

/// What is compared besides status and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The headers compared, lowercase; others (dates, cookies, request ids)
    /// always differ or say nothing of the service.
    pub headers: Vec<String>,
}

impl Default for Compare {
    fn default() -> Compare {
        let headers = ["content-type", "content-encoding", "location", "cache-control"];
        Compare { headers: headers.iter().map(|h| h.to_string()).collect() }
    }
}

/// The differences between answers `a` and `b` to the same request.
pub fn compare(a: &Answer<'_>, b: &Answer<'_>, c: &Compare) -> BTreeSet<Difference> {
    let mut out = Found::default();
    if a.status != b.status {
        out.add("status".into(), Kind::Value);
    }
    for name in &c.headers {
        let (x, y) = (a.headers.get(name.as_str()), b.headers.get(name.as_str()));
        let kind = match (x, y) {
            (Some(x), Some(y)) if x != y => Kind::Value,
            (Some(_), None) => Kind::Missing,
            (None, Some(_)) => Kind::Added,
            _ => continue,
        };
        out.add(format!("header:{name}"), kind);
    }
    body(a, b, &mut out);
    out.set
}

/// Leaves out the differences an operator said to ignore: a rule names a
/// place (`$.meta`, `header:etag`, `body`) and covers what lies under it
/// (`$.meta.generated_at`, `$.meta[*]`).
pub fn ignore(found: &mut BTreeSet<Difference>, rules: &[String]) {
    found.retain(|d| !rules.iter().any(|r| covers(r, &d.at)));
}

fn covers(rule: &str, at: &str) -> bool {
    at.strip_prefix(rule)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The bodies' differences: field by field when both are JSON.
fn body(a: &Answer<'_>, b: &Answer<'_>, out: &mut Found) {
    if a.body == b.body {
        return;
    }
    match (json(a), json(b)) {
        (Some(x), Some(y)) => walk(&x, &y, &mut String::from("$"), 0, out),
        (None, None) => out.add("body".into(), Kind::Value),
        _ => out.add("body".into(), Kind::Type),
    }
}

/// The body as JSON, when its content type says JSON (or says nothing)
/// and it parses.
fn json(a: &Answer<'_>) -> Option<Value> {
    let ct = a.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let says_json = ct.is_none_or(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    });
    says_json.then(|| serde_json::from_slice(a.body).ok()).flatten()
}

/// The differences found so far, bounded by [`MAX_DIFFERENCES`].
#[derive(Default)]
struct Found {
    set: BTreeSet<Difference>,
}

impl Found {
    fn add(&mut self, at: String, kind: Kind) {
        if self.set.len() < MAX_DIFFERENCES {
            self.set.insert(Difference { at, kind });
        }
    }

    fn full(&self) -> bool {
        self.set.len() >= MAX_DIFFERENCES
    }
}

fn type_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Walks `a` and `b` at `path` together.
fn walk(a: &Value, b: &Value, path: &mut String, depth: usize, out: &mut Found) {
    if a == b || out.full() {
        return;
    }
    if type_of(a) != type_of(b) {
        return out.add(path.clone(), Kind::Type);
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if depth < MAX_DEPTH => {
            for (k, va) in x {
                let len = path.len();
                push_key(path, k);
                match y.get(k) {
                    Some(vb) => walk(va, vb, path, depth + 1, out),
                    None => out.add(path.clone(), Kind::Missing),
                }
                path.truncate(len);
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                let len = path.len();
                push_key(path, k);
                out.add(path.clone(), Kind::Added);
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) if depth < MAX_DEPTH => array(x, y, path, depth, out),
        _ => out.add(path.clone(), Kind::Value),
    }
}

/// Two arrays: the same elements in another order are one `Order`
/// difference; else position by position, under `[*]`, with the longer
/// one's extra elements added or missing.
fn array(x: &[Value], y: &[Value], path: &mut String, depth: usize, out: &mut Found) {
    if x.len() == y.len() && same_elements(x, y) {
        return out.add(path.clone(), Kind::Order);
    }
    let len = path.len();
    path.push_str("[*]");
    for (va, vb) in x.iter().zip(y) {
        walk(va, vb, path, depth + 1, out);
    }
    if x.len() > y.len() {
        out.add(path.clone(), Kind::Missing);
    } else if y.len() > x.len() {
        out.add(path.clone(), Kind::Added);
    }
    path.truncate(len);
}

/// Whether `x` and `y` hold the same elements, as multisets.
fn same_elements(x: &[Value], y: &[Value]) -> bool {
    let canon = |v: &[Value]| {
        let mut s: Vec<String> = v.iter().map(Value::to_string).collect();
        s.sort_unstable();
        s
    };
    canon(x) == canon(y)
}

/// Appends `.key`, or `["key"]` when the key is not a plain name.
fn push_key(path: &mut String, k: &str) {
    let plain = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        path.push('.');
        path.push_str(k);
    } else {
        path.push('[');
        path.push_str(&Value::String(k.to_string()).to_string());
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
        h
    }

    fn diff(a: &str, b: &str) -> Vec<(String, Kind)> {
        let h = json_headers();
        let (x, y) = (
            Answer { status: 200, headers: &h, body: a.as_bytes() },
            Answer { status: 200, headers: &h, body: b.as_bytes() },
        );
        compare(&x, &y, &Compare::default()).into_iter().map(|d| (d.at, d.kind)).collect()
    }

    fn d(at: &str, kind: Kind) -> (String, Kind) {
        (at.to_string(), kind)
    }

    #[test]
    fn equal_json_differs_in_nothing_whatever_the_key_order_or_spacing() {
        assert!(diff(r#"{"a":1,"b":[1,2]}"#, r#"{ "b": [1, 2], "a": 1 }"#).is_empty());
    }

    #[test]
    fn each_field_is_named_by_its_path_and_how_it_differs() {
        let a =
            r#"{"rooms":[{"id":1,"price":10.5,"tags":["x"]},{"id":2,"price":12}],"gone":1,"meta":{"n":2}}"#;
        let b = r#"{"rooms":[{"id":1,"price":"10.5","tags":["x"]},{"id":2,"price":13}],"meta":{"n":2},"new":true}"#;
        assert_eq!(
            diff(a, b),
            vec![
                d("$.gone", Kind::Missing),
                d("$.new", Kind::Added),
                d("$.rooms[*].price", Kind::Value),
                d("$.rooms[*].price", Kind::Type),
            ]
        );
    }

    #[test]
    fn an_array_in_another_order_is_one_order_difference() {
        assert_eq!(diff(r#"{"ids":[1,2,3]}"#, r#"{"ids":[3,1,2]}"#), vec![d("$.ids", Kind::Order)]);
        // Not the same elements: compared by position.
        assert_eq!(diff(r#"{"ids":[1,2,3]}"#, r#"{"ids":[3,1,4]}"#), vec![d("$.ids[*]", Kind::Value)]);
        assert_eq!(diff(r#"[1,2]"#, r#"[1,2,3]"#), vec![d("$[*]", Kind::Added)]);
        assert_eq!(diff(r#"[1,2]"#, r#"[1]"#), vec![d("$[*]", Kind::Missing)]);
    }

    #[test]
    fn keys_that_are_not_plain_names_are_quoted() {
        assert_eq!(diff(r#"{"a b":1}"#, r#"{"a b":2}"#), vec![d(r#"$["a b"]"#, Kind::Value)]);
    }

    #[test]
    fn status_chosen_headers_and_other_bodies_are_compared_whole() {
        let mut a = HeaderMap::new();
        a.insert("content-type", HeaderValue::from_static("text/plain"));
        a.insert("date", HeaderValue::from_static("Mon"));
        a.insert("location", HeaderValue::from_static("/x"));
        let mut b = a.clone();
        b.insert("date", HeaderValue::from_static("Tue"));
        b.remove("location");
        b.insert("cache-control", HeaderValue::from_static("no-store"));
        let x = Answer { status: 200, headers: &a, body: b"hello" };
        let y = Answer { status: 201, headers: &b, body: b"hellO" };
        let found: Vec<_> =
            compare(&x, &y, &Compare::default()).into_iter().map(|d| (d.at, d.kind)).collect();
        assert_eq!(
            found,
            vec![
                d("body", Kind::Value),
                d("header:cache-control", Kind::Added),
                d("header:location", Kind::Missing),
                d("status", Kind::Value),
            ]
        );
    }

    #[test]
    fn ignore_rules_cover_a_place_and_what_lies_under_it() {
        let mut found: BTreeSet<Difference> =
            ["$.meta", "$.meta.at", "$.meta[*]", "$.metadata", "header:etag"]
                .iter()
                .map(|at| Difference { at: at.to_string(), kind: Kind::Value })
                .collect();
        ignore(&mut found, &["$.meta".into(), "header:etag".into()]);
        assert_eq!(found.into_iter().map(|d| d.at).collect::<Vec<_>>(), vec!["$.metadata"]);
    }

    #[test]
    fn json_against_something_else_is_a_type_difference_of_the_body() {
        assert_eq!(diff(r#"{"a":1}"#, "<html>"), vec![d("body", Kind::Type)]);
    }

    #[test]
    fn a_comparison_names_at_most_so_many_differences() {
        let a: serde_json::Map<String, Value> = (0..200).map(|i| (format!("k{i}"), Value::from(i))).collect();
        let b: serde_json::Map<String, Value> =
            (0..200).map(|i| (format!("k{i}"), Value::from(i + 1))).collect();
        let found = diff(&Value::Object(a).to_string(), &Value::Object(b).to_string());
        assert_eq!(found.len(), MAX_DIFFERENCES);
    }
}
