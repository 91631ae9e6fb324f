//! Who may read and who may act on the admin API and the dashboard.
//!
//! - No token configured (the admin API then listens on loopback only): all open.
//! - `admin_token` configured: every call that changes something (any method
//!   but GET and HEAD) needs it as `Authorization: Bearer`, or an operator's
//!   login session plus its CSRF token in `x-csrf-token`. Reads stay open,
//!   for scrapers and dashboards, unless a `viewer_token` is configured too:
//!   then reads need the viewer or admin token, or a login session.
//! - The dashboard logs in with a form (`/admin/login`): the admin token makes
//!   an operator, the viewer token a viewer; the session is an HttpOnly,
//!   SameSite=Strict cookie. Tokens are compared in constant time and never logged.

use super::{AdminState, error};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "canary_session";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and acts.
    Operator,
}

impl Role {
    /// Its name, for the page.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    role: Role,
    csrf: String,
    expires: Instant,
}

/// Logged-in sessions, in memory (a restart logs everyone out).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// Opens a session; returns its id and CSRF token.
    pub fn open(&self, role: Role) -> Option<(String, String)> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let mut map = self.lock();
        map.retain(|_, s| s.expires > Instant::now());
        map.insert(id.clone(), Session { role, csrf: csrf.clone(), expires: Instant::now() + SESSION_TTL });
        Some((id, csrf))
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn get(&self, id: &str) -> Option<Session> {
        self.lock().get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// 32 random bytes from the kernel, as hex.
fn random_hex() -> Option<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom").ok()?.read_exact(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Who a request is, by bearer token or session cookie.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// No credentials.
    Anonymous,
    /// A bearer token.
    Token(Role),
    /// A login session and its CSRF token.
    Session(Role, String),
}

impl Identity {
    fn role(&self) -> Option<Role> {
        match self {
            Identity::Anonymous => None,
            Identity::Token(r) | Identity::Session(r, _) => Some(*r),
        }
    }
}

/// The role a token grants, if any.
pub fn role_of_token(s: &AdminState, given: &str) -> Option<Role> {
    let eq =
        |t: &Option<String>| t.as_deref().is_some_and(|t| constant_time_eq(given.as_bytes(), t.as_bytes()));
    if eq(&s.cfg.admin_token) {
        Some(Role::Operator)
    } else if eq(&s.cfg.viewer_token) {
        Some(Role::Viewer)
    } else {
        None
    }
}

/// Identifies the caller.
pub fn identify(s: &AdminState, h: &HeaderMap) -> Identity {
    let bearer =
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if let Some(role) = bearer.and_then(|t| role_of_token(s, t)) {
        return Identity::Token(role);
    }
    let cookie = h
        .get_all(header::COOKIE)
        .iter()
        .find_map(|v| canary_core::request::cookie_value(v.as_bytes(), COOKIE));
    let session = cookie.and_then(|c| std::str::from_utf8(c).ok()).and_then(|id| s.sessions.get(id));
    session.map_or(Identity::Anonymous, |sess| Identity::Session(sess.role, sess.csrf))
}

/// Whether any token is configured (otherwise everything is open, on loopback).
pub fn guarded(s: &AdminState) -> bool {
    s.cfg.admin_token.is_some() || s.cfg.viewer_token.is_some()
}

/// The middleware.
pub async fn require_token(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let public = path == "/admin/login" || path.starts_with("/admin/assets/") || path == "/api/v2/health";
    if !guarded(&s) || public {
        return next.run(req).await;
    }
    let who = identify(&s, req.headers());
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    if reading {
        if s.cfg.viewer_token.is_none() || who.role().is_some() {
            return next.run(req).await;
        }
        if path.starts_with("/admin/") {
            return Redirect::to("/admin/login").into_response();
        }
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "reading needs the viewer or admin token (Authorization: Bearer ...)",
        );
    }
    match who {
        Identity::Token(Role::Operator) => next.run(req).await,
        Identity::Session(Role::Operator, csrf) if csrf_ok(req.headers(), &csrf) => next.run(req).await,
        Identity::Session(Role::Operator, _) => {
            error(StatusCode::FORBIDDEN, "csrf", "missing or wrong x-csrf-token: reload the page")
        }
        Identity::Token(Role::Viewer) | Identity::Session(Role::Viewer, _) => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a viewer can look but not act: log in with the operator (admin) token",
        ),
        Identity::Anonymous => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this call changes state and needs the admin token: pass --token or set CANARY_TOKEN",
        ),
    }
}

fn csrf_ok(h: &HeaderMap, expected: &str) -> bool {
    let given = h.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_tokens() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secret", b"secreT"));
        assert!(!super::constant_time_eq(b"secret", b"secret-longer"));
        assert!(!super::constant_time_eq(b"", b"x"));
    }

    #[test]
    fn session_ids_are_random() {
        assert_ne!(super::random_hex(), super::random_hex());
        assert_eq!(super::random_hex().unwrap().len(), 64);
    }
}
