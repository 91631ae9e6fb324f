//! The label a request is measured under: a configured route template such as
//! `/api/v2/rooms/{id}`, or else the path's first segments with id-like segments
//! (numbers, long hex, UUIDs) replaced by `{id}`.
//!
//! Labels feed per-route metrics, so their number must stay bounded whatever
//! paths clients invent; the cap itself is applied where labels are stored.

use std::borrow::Cow;

/// Route templates, matched segment by segment: `{name}` matches any one
/// segment, a final `*` matches the rest of the path.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates {
    templates: Vec<(String, Vec<Segment>)>,
    depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param,
    Rest,
}

/// Why a route template was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("route template `{template}` {reason}")]
pub struct TemplateError {
    /// The template as given.
    pub template: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RouteTemplates {
    /// Compiles `templates`; unmatched paths are labelled by their first `depth` segments.
    pub fn new<S: AsRef<str>>(templates: &[S], depth: usize) -> Result<RouteTemplates, TemplateError> {
        let templates = templates.iter().map(|t| parse(t.as_ref())).collect::<Result<_, _>>()?;
        Ok(RouteTemplates { templates, depth: depth.max(1) })
    }

    /// The label of `path` (no query string).
    pub fn label<'a>(&'a self, path: &'a str) -> Cow<'a, str> {
        if let Some((t, _)) = self.templates.iter().find(|(_, segs)| matches(segs, path)) {
            return Cow::Borrowed(t);
        }
        fallback(path, self.depth)
    }
}

fn parse(template: &str) -> Result<(String, Vec<Segment>), TemplateError> {
    let err = |reason| TemplateError { template: template.to_string(), reason };
    let rest = template.strip_prefix('/').ok_or_else(|| err("must start with `/`"))?;
    let segs: Vec<Segment> = rest.split('/').map(segment).collect();
    if segs.iter().rev().skip(1).any(|s| *s == Segment::Rest) {
        return Err(err("may use `*` only as its last segment"));
    }
    Ok((template.to_string(), segs))
}

fn segment(s: &str) -> Segment {
    if s == "*" {
        Segment::Rest
    } else if s.starts_with('{') && s.ends_with('}') {
        Segment::Param
    } else {
        Segment::Literal(s.to_string())
    }
}

fn matches(segs: &[Segment], path: &str) -> bool {
    let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
    for seg in segs {
        match (seg, parts.next()) {
            (Segment::Rest, _) => return true,
            (Segment::Param, Some(p)) if !p.is_empty() => {}
            (Segment::Literal(l), Some(p)) if l == p => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

fn fallback(path: &str, depth: usize) -> Cow<'_, str> {
    let segs = || path.split('/').filter(|s| !s.is_empty()).take(depth);
    if segs().next().is_none() {
        return Cow::Borrowed("/");
    }
    // The usual path (`/api/v2/rooms/...`, single slashes, no ids in the first
    // segments) is labelled by a prefix of itself: no allocation per request.
    let end = segs().map(|s| s.len() + 1).sum::<usize>();
    let clean = !segs().any(looks_like_id) && path.get(..end).is_some_and(|p| !p.contains("//"));
    if clean && path.starts_with('/') {
        return Cow::Borrowed(&path[..end]);
    }
    let mut out = String::with_capacity(path.len().min(64));
    for s in segs() {
        out.push('/');
        out.push_str(if looks_like_id(s) { "{id}" } else { s });
    }
    Cow::Owned(out)
}

/// Numbers, hex strings of 8+ characters and UUIDs: values, not route names.
fn looks_like_id(s: &str) -> bool {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hexish = s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    digits || hexish
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_win() {
        let t = RouteTemplates::new(&["/api/v2/rooms/{id}", "/static/*"], 3).unwrap();
        assert_eq!(t.label("/api/v2/rooms/42"), "/api/v2/rooms/{id}");
        assert_eq!(t.label("/static/css/a.css"), "/static/*");
        assert_eq!(t.label("/api/v2/rooms/42/x"), "/api/v2/rooms");
    }

    #[test]
    fn fallback_uses_leading_segments_and_hides_ids() {
        let t = RouteTemplates::new::<&str>(&[], 3).unwrap();
        assert_eq!(t.label("/api/v2/reservations/123/cancel"), "/api/v2/reservations");
        assert_eq!(t.label("/users/123"), "/users/{id}");
        assert_eq!(t.label("/u/550e8400-e29b-41d4-a716-446655440000"), "/u/{id}");
        assert_eq!(t.label("/"), "/");
        assert_eq!(t.label("//a//b"), "/a/b");
        assert!(matches!(t.label("/api/v2/rooms"), Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(RouteTemplates::new(&["api/x"], 3).is_err());
        assert!(RouteTemplates::new(&["/a/*/b"], 3).is_err());
    }
}
