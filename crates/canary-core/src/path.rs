//! Path normalisation for matching: `/api/%61dmin//x/../y` must meet the same
//! exclude rule as `/api/admin/y`, or a client could walk around an exclude by
//! spelling the path differently from how the upstream will read it.

use std::borrow::Cow;

/// The path as an upstream would resolve it: percent-escapes decoded (invalid
/// UTF-8 kept escaped), repeated slashes collapsed, `.` and `..` segments
/// resolved. Borrows when the path needs none of that, the usual case.
pub fn normalize(path: &str) -> Cow<'_, str> {
    if !needs_work(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode(path);
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let trailing = decoded.ends_with('/') && !out.is_empty();
    let mut s = String::with_capacity(decoded.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() || trailing {
        s.push('/');
    }
    Cow::Owned(s)
}

fn needs_work(path: &str) -> bool {
    path.contains('%') || path.contains("//") || path.contains("/.") || !path.starts_with('/')
}

fn decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_string())
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_borrowed() {
        assert!(matches!(normalize("/api/v2/rooms"), Cow::Borrowed(_)));
    }

    #[test]
    fn decodes_collapses_and_resolves() {
        assert_eq!(normalize("/api/%61dmin/x"), "/api/admin/x");
        assert_eq!(normalize("//api///admin/"), "/api/admin/");
        assert_eq!(normalize("/api/v2/../admin/./x"), "/api/admin/x");
        assert_eq!(normalize("/../../etc"), "/etc");
        assert_eq!(normalize("/%ff"), "/%ff");
        assert_eq!(normalize("*"), "/*");
    }
}
