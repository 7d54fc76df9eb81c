//! The web console: `GET /` and `GET /console/{file}` serve a small browser app that
//! shows the jobs, their dataflow graphs with live rates and backpressure, checkpoint
//! histories, live results and a SQL editor, all through the HTTP API.
//!
//! The files are compiled into the binary (`include_str!`): no Node toolchain builds
//! them, nothing is fetched from elsewhere, and the console always matches the API of
//! the server that serves it. They are plain ES modules, drawn with DOM calls and SVG.
//!
//! The files hold no data, so they are served without the bearer token (a browser
//! cannot attach one to a page load); the page asks for the token and sends it with
//! every API call, and without it shows nothing but the prompt. Nothing runs on the
//! server for the console until a browser asks for something: each open page polls
//! what it shows once a second (and not at all while its tab is hidden).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page itself.
const INDEX: &str = include_str!("console/index.html");

/// `(name, content type, contents)` of every file under `/console/`.
const FILES: &[(&str, &str, &str)] = &[
    ("console.css", CSS, include_str!("console/console.css")),
    ("app.js", JS, include_str!("console/app.js")),
    ("api.js", JS, include_str!("console/api.js")),
    ("dom.js", JS, include_str!("console/dom.js")),
    ("charts.js", JS, include_str!("console/charts.js")),
    ("jobs.js", JS, include_str!("console/jobs.js")),
    ("job.js", JS, include_str!("console/job.js")),
    ("graph.js", JS, include_str!("console/graph.js")),
    ("checkpoints.js", JS, include_str!("console/checkpoints.js")),
    ("results.js", JS, include_str!("console/results.js")),
    ("sql.js", JS, include_str!("console/sql.js")),
    ("tables.js", JS, include_str!("console/tables.js")),
];

/// Only this origin's files and API; no inline scripts or styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { file(HTML, INDEX) }))
        .route("/console/{name}", get(asset))
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    match FILES.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, contents)) => Ok(file(content_type, contents)),
        None => Err(ApiError::not_found(format!("no console file {name:?}"))),
    }
}

fn file(content_type: &'static str, contents: &'static str) -> Response {
    let mut response = contents.into_response();
    let headers = response.headers_mut();
    let value = HeaderValue::from_static;
    headers.insert(header::CONTENT_TYPE, value(content_type));
    // Revalidated on every load: a new server version's files are seen at once.
    headers.insert(header::CACHE_CONTROL, value("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    headers.insert(header::REFERRER_POLICY, value("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        value(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = FILES.iter().map(|(name, ..)| *name).collect();
        let sources = FILES.iter().map(|(_, _, text)| *text).chain([INDEX]);
        for text in sources {
            for import in text
                .split("\"./")
                .skip(1)
                .chain(text.split("/console/").skip(1))
            {
                let Some((name, _)) = import.split_once('"') else {
                    continue;
                };
                assert!(served.contains(&name), "{name} is imported but not served");
            }
        }
    }

    #[tokio::test]
    async fn files_are_served_with_their_type_and_unknown_ones_are_not() {
        let response = asset(Path("graph.js".into())).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], JS);
        assert!(asset(Path("../main.rs".into())).await.is_err());
    }
}
