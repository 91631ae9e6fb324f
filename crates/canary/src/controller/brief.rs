//! An event's detail as the log line shows it: the scalars whole, each
//! verdict as its outcome, anything else long as its size. A step's detail
//! carries its whole verdict (every criterion with its figures, a few KB),
//! which the history keeps; a log line per step that size buries the log.
//! The whole detail goes to the debug level.

use serde_json::{Map, Value};

/// Longer than this, a field that is not a verdict is shown by its size.
const LONG: usize = 160;

/// `detail` shortened for an info line.
pub fn brief(detail: &Value) -> Value {
    let Value::Object(fields) = detail else { return detail.clone() };
    let out: Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), field(v))).collect();
    Value::Object(out)
}

fn field(v: &Value) -> Value {
    if let Some(outcome) = v.get("outcome").filter(|o| o.is_string()) {
        return outcome.clone();
    }
    let len = v.to_string().len();
    match len > LONG {
        true => Value::String(format!("({len} bytes: see `canary history --json`)")),
        false => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_verdict_shows_as_its_outcome_and_scalars_stay_whole() {
        let criteria: Vec<Value> = (0..20).map(|i| json!({"name": format!("c{i}"), "value": i})).collect();
        let d = json!({"rollout": 3, "share": 25, "verdict": {"outcome": "pass", "criteria": criteria},
            "items": criteria, "why": "promoted"});
        let b = brief(&d);
        assert_eq!(b["verdict"], "pass");
        assert_eq!(
            (b["rollout"].clone(), b["share"].clone(), b["why"].clone()),
            (json!(3), json!(25), json!("promoted"))
        );
        assert!(b["items"].as_str().unwrap().contains("bytes"), "{b}");
        assert!(b.to_string().len() < 300, "{b}");
        assert_eq!(brief(&json!("plain")), json!("plain"));
    }
}
