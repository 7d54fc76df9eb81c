//! `GET /v1/jobs/{id}/results`: a job's committed results as a live Arrow IPC stream.

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
