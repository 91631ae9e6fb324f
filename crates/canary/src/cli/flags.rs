//! `canary flags`: list the feature flags, see them for a user, or
//! `set NAME on|off|25%` / `unset NAME` through the admin API.

use super::AdminArgs;
use super::client::{Admin, answered};
use crate::exit::{Exit, fail};
use http::Method;
use serde_json::{Value, json};

/// `canary flags [set NAME VALUE | unset NAME] [--user ID] [--json]`
pub fn flags(args: &[String], user: Option<&str>, as_json: bool, a: &AdminArgs) -> Exit {
    let admin = Admin::from(a);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let call = match words.as_slice() {
        [] => match user {
            Some(u) => admin.call(Method::GET, &format!("/api/flags?user={}", encode(u)), None),
            None => admin.call(Method::GET, "/api/flags", None),
        },
        ["set", name, value] => {
            if let Err(e) = canary_core::flags::parse_value(value) {
                return fail(Exit::BadInput, "flags", format!("value `{value}`: {e}"));
            }
            admin.call(Method::PUT, &format!("/api/flags/{}", encode(name)), Some(json!({"value": value})))
        }
        ["unset", name] => admin.call(Method::DELETE, &format!("/api/flags/{}", encode(name)), None),
        _ => {
            let why =
                format!("`{}`: expected nothing, `set NAME on|off|25%`, or `unset NAME`", words.join(" "));
            return fail(Exit::BadInput, "flags", why);
        }
    };
    let v = match answered("flags", call) {
        Ok(v) => v,
        Err(exit) => return exit,
    };
    if as_json {
        crate::say!("{v}");
    } else {
        print_flags(&v);
    }
    Exit::Done
}

fn print_flags(v: &Value) {
    if let Some(map) = v["flags"].as_object() {
        for (k, on) in map {
            crate::say!("{k:<32} {}", if on.as_bool() == Some(true) { "on" } else { "off" });
        }
        return;
    }
    for f in v["flags"].as_array().into_iter().flatten() {
        let pct = f["percentage"].as_f64().and_then(|p| canary_core::Share::from_percent(p).ok());
        let state = if f["enabled"].as_bool() == Some(true) {
            format!("on for {}", pct.map_or("?".into(), |s| s.to_string()))
        } else {
            "off".into()
        };
        crate::say!(
            "{:<32} {:<14} from {}",
            f["name"].as_str().unwrap_or(""),
            state,
            f["source"].as_str().unwrap_or("")
        );
    }
}

/// Percent-encodes what is not safe in a URL path or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
