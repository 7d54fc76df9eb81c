//! Bearer-token authentication: with `--token T`, a request must carry
//! `Authorization: Bearer T`, or it is answered 401 before any handler (or body read)
//! runs. The comparison takes the same time wherever the tokens differ, so response
//! times do not reveal how much of a guess was right.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The token every request must present; `None` lets every request through.
pub type RequiredToken = Option<Arc<str>>;

/// Middleware for `axum::middleware::from_fn_with_state`.
pub async fn require_bearer(
    State(token): State<RequiredToken>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    match check(request.headers().get(header::AUTHORIZATION), &token) {
        Ok(()) => next.run(request).await,
        Err(message) => unauthorized(message),
    }
}

/// Whether `authorization` presents `token`; the error says what is wrong.
fn check(authorization: Option<&HeaderValue>, token: &str) -> Result<(), &'static str> {
    let value = authorization.ok_or("missing `Authorization: Bearer <token>` header")?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let presented = match value.split_once(' ') {
        // The scheme is case-insensitive (RFC 9110, section 11.1).
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err("the Authorization header must use the Bearer scheme"),
    };
    if !presented.is_empty() && same_bytes(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err("invalid bearer token")
    }
}

/// Compares `presented` with `token` in a time that depends only on the length of
/// `presented` (which the sender knows): it stops neither at the first difference nor at
/// the end of `token`, so timing reveals neither the token's bytes nor its length.
fn same_bytes(presented: &[u8], token: &[u8]) -> bool {
    if token.is_empty() {
        return presented.is_empty();
    }
    let lengths = (presented.len() ^ token.len()) as u64;
    let bytes = presented
        .iter()
        .enumerate()
        .fold(0u8, |diff, (i, x)| diff | (x ^ token[i % token.len()]));
    (lengths | u64::from(bytes)) == 0
}

fn unauthorized(message: &str) -> Response {
    let error = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_comparison_covers_prefixes_repeats_and_lengths() {
        assert!(same_bytes(b"abc", b"abc"));
        for presented in [&b"ab"[..], b"abcabc", b"abd", b"", b"xbc", b"abcd"] {
            assert!(!same_bytes(presented, b"abc"), "{presented:?}");
        }
        assert!(!same_bytes(b"a", b""));
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let header = |v: &'static str| Some(HeaderValue::from_static(v));
        assert_eq!(check(header("Bearer s3cret").as_ref(), "s3cret"), Ok(()));
        assert_eq!(check(header("bearer s3cret").as_ref(), "s3cret"), Ok(()));
        for bad in [
            None,
            header("Bearer s3cre"),
            header("Bearer s3cret2"),
            header("Bearer "),
            header("Basic s3cret"),
            header("s3cret"),
            header("Bearers3cret"),
        ] {
            assert!(check(bad.as_ref(), "s3cret").is_err(), "{bad:?}");
        }
    }
}
