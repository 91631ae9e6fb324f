//! The dashboard's login: a form that takes a token and opens a session
//! (HttpOnly, SameSite=Strict cookie), and `GET /admin/session`, which tells
//! the page its role and the CSRF token its actions must send.

use super::AdminState;
use super::auth::{COOKIE, Identity, Role, guarded, identify, role_of_token};
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

const FORM: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>canary: log in</title><link rel="stylesheet" href="/admin/assets/dashboard.css"></head>
<body><main style="max-width:380px;margin:40px auto;display:block"><section class="panel"><h2>canary: log in</h2>
<form method="post" action="/admin/login"><p><label>token<br><input id="token" name="token" type="password" autocomplete="current-password" style="width:100%"></label></p>
<p><button id="login" type="submit">Log in</button></p><p class="reason">The viewer token lets you look; the admin token lets you act.</p>MESSAGE</form></section></main></body></html>"#;

/// `GET /admin/login`
pub async fn form() -> Html<String> {
    Html(FORM.replace("MESSAGE", ""))
}

/// The form's body.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /admin/login`
pub async fn login(State(s): State<AdminState>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return super::body::too_large(),
        Err(e) => {
            let why = e.body_text();
            return super::body::invalid(format!(
                "the login form is a `token` field, form-encoded (token=...): {why}"
            ));
        }
    };
    let Some(role) = role_of_token(&s, &f.token) else {
        let page = FORM.replace("MESSAGE", "<p class=\"fail\" id=\"message\">That token is not valid.</p>");
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    };
    let Some((id, _csrf)) = s.sessions.open(role) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session: no randomness available")
            .into_response();
    };
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin/monitoring")).into_response()
}

/// `POST /admin/logout`
pub async fn logout(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .find_map(|v| canary_core::request::cookie_value(v.as_bytes(), COOKIE))
    {
        s.sessions.close(&String::from_utf8_lossy(id));
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login")).into_response()
}

/// `GET /admin/session`: `{"role", "csrf", "login_required"}` for the page.
pub async fn session(State(s): State<AdminState>, headers: HeaderMap) -> Json<serde_json::Value> {
    if !guarded(&s) {
        // Open on loopback: the page may act without logging in.
        return Json(json!({"role": Role::Operator.as_str(), "csrf": "", "login_required": false}));
    }
    match identify(&s, &headers) {
        Identity::Session(role, csrf) => {
            Json(json!({"role": role.as_str(), "csrf": csrf, "login_required": true}))
        }
        Identity::Token(role) => Json(json!({"role": role.as_str(), "csrf": "", "login_required": true})),
        Identity::Anonymous => Json(json!({"role": null, "csrf": "", "login_required": true})),
    }
}
