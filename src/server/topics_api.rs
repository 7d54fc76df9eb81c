//! `POST /v1/topics/{topic}/records`: appending JSON lines or Arrow IPC to the log.

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
