//! The one guard of Tocsin's browser pages on loopback: the node's web
//! desk and the demo's federation view (`tocsin-fedview`) both use it.
//!
//! A page served in clear HTTP is guarded by a token drawn at each start
//! and shown once. The listener must be on loopback ([`loopback_only`]);
//! every request carries the token, as a cookie set by `GET /?token=...`
//! (which then redirects, so the token leaves the address bar) or as
//! `Authorization: Bearer`; anything else is refused with 401. Every answer
//! forbids other origins' scripts, framing and caching ([`guard`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// Everything the browser may load: this origin alone, no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// This start's token and the cookie that carries it.
#[derive(Clone)]
pub struct Access {
    token: Arc<str>,
    cookie: Arc<str>,
    /// The 401 page: it says where this page's token is to be found.
    refusal: Arc<str>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token: a debug print ends up in logs.
        f.debug_struct("Access")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

/// Refuses an address that is not on loopback: the token is the only
/// guard, and it travels in clear HTTP. `what` names the setting.
pub fn loopback_only(addr: SocketAddr, what: &str) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "{what} {addr} is not a loopback address: the page is guarded by a \
             token alone and listens on loopback only"
        ))
    }
}

impl Access {
    /// Draws a fresh token for the page served at `addr`. `cookie_prefix`
    /// names the cookie (with the port: browsers share cookies across
    /// ports of one host, so two pages on loopback keep their own);
    /// `where_token` tells a refused visitor where the token is shown.
    pub fn draw(addr: SocketAddr, cookie_prefix: &str, where_token: &str) -> Self {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::with_token(token, addr, cookie_prefix, where_token)
    }

    fn with_token(token: String, addr: SocketAddr, cookie_prefix: &str, where_token: &str) -> Self {
        let refusal = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Token required · Tocsin</title></head><body><main>\
             <h1>401: token required</h1><p>{where_token}</p></main></body></html>\n"
        );
        Self {
            token: token.into(),
            cookie: format!("{cookie_prefix}_{}", addr.port()).into(),
            refusal: refusal.into(),
        }
    }

    /// The token: to show once, or to write where local tools read it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The address a person opens first: it sets the cookie.
    pub fn login_url(&self, addr: SocketAddr) -> String {
        format!("http://{addr}/?token={}", self.token)
    }

    /// Whether `offered` is the token (a form's, for example), compared
    /// in constant time.
    pub fn matches(&self, offered: &str) -> bool {
        same(offered, &self.token)
    }

    fn refused(&self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Html(self.refusal.to_string()),
        )
            .into_response()
    }
}

/// Compares without stopping at the first difference, so the time taken
/// tells nothing of how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request carries, as a bearer or as the page's cookie.
fn presented<'a>(headers: &'a HeaderMap, cookie: &str) -> Option<&'a str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value)
}

#[derive(Deserialize)]
struct Bootstrap {
    token: Option<String>,
}

/// The middleware (`axum::middleware::from_fn_with_state(access, guard)`):
/// lets in requests with the token; `GET /?token=` with the right one sets
/// the cookie and redirects to `/`. Everything else is refused with 401.
pub async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let offered = Query::<Bootstrap>::try_from_uri(request.uri())
        .ok()
        .and_then(|q| q.0.token);
    let mut response = if let Some(offered) = offered {
        if access.matches(&offered) {
            let mut r = Redirect::to("/").into_response();
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                access.cookie, access.token
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        } else {
            access.refused()
        }
    } else if presented(request.headers(), &access.cookie).is_some_and(|t| access.matches(t)) {
        next.run(request).await
    } else {
        access.refused()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_a_bearer_or_this_pages_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("tocsin_desk_1=other; tocsin_desk_2=mine"),
        );
        assert_eq!(presented(&h, "tocsin_desk_2"), Some("mine"));
        assert_eq!(presented(&h, "tocsin_desk_3"), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(presented(&h, "tocsin_desk_2"), Some("b"));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn each_start_draws_its_own_token_and_the_cookie_names_the_port() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let (a, b) = (
            Access::draw(addr, "x", "here"),
            Access::draw(addr, "x", "here"),
        );
        assert_ne!(a.token(), b.token());
        assert_eq!(a.token().len(), 64);
        assert!(a.matches(a.token()) && !a.matches(b.token()));
        assert_eq!(&*a.cookie, "x_4242");
        assert!(!format!("{a:?}").contains(a.token()));
        assert!(
            a.login_url(addr)
                .ends_with(&format!("/?token={}", a.token()))
        );
    }

    #[test]
    fn only_loopback_addresses_are_allowed() {
        assert!(loopback_only("127.0.0.1:1".parse().unwrap(), "x").is_ok());
        assert!(loopback_only("[::1]:1".parse().unwrap(), "x").is_ok());
        let err = loopback_only("0.0.0.0:1".parse().unwrap(), "web_listen").unwrap_err();
        assert!(
            err.contains("web_listen 0.0.0.0:1 is not a loopback address"),
            "{err}"
        );
    }
}
