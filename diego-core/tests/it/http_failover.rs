//! `BbsClient` with several BBS URLs: a dead one and a standby are skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::response::IntoResponse;
use diego_core::http::server::ApiError;
use diego_core::http::{BbsClient, NOT_ACTIVE_BBS};
use diego_core::prelude::*;
use diego_core::{Bbs, Error, TaskGuid};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}")
}

async fn standby() -> String {
    serve(axum::Router::new().fallback(|| async {
        ApiError(Error::unavailable(format!(
            "{NOT_ACTIVE_BBS}; the active BBS is at elsewhere"
        )))
        .into_response()
    }))
    .await
}

async fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn skips_dead_and_standby_bbses_and_stays_with_the_active_one() {
    let api: Arc<dyn BbsApi> = Arc::new(Bbs::builder().build());
    let active = serve(diego_core::http::bbs_routes(api)).await;
    let urls = vec![dead_url().await, standby().await, active.clone()];
    let client = BbsClient::with_urls(urls.clone()).unwrap();
    assert_eq!(client.base_url(), urls[0]);

    client.ping().await.unwrap();
    assert_eq!(client.base_url(), active);
    assert!(client.domains().await.unwrap().is_empty());

    // An error the active BBS answers is the answer: nothing is re-sent elsewhere.
    let err = client
        .task_by_guid(&TaskGuid::new("missing"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "ResourceNotFound");
    assert_eq!(client.base_url(), active);
}

#[tokio::test]
async fn only_standbys_give_the_standby_answer() {
    let client = BbsClient::with_urls([standby().await, dead_url().await]).unwrap();
    let err = client.ping().await.unwrap_err();
    assert_eq!(err.kind(), "Unavailable");
    // The last URL tried was dead; the standby's answer or the connection error says so.
    let text = err.to_string();
    assert!(
        text.contains("unreachable") || text.contains(NOT_ACTIVE_BBS),
        "{text}"
    );

    let client = BbsClient::with_urls([standby().await]).unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(err.to_string().contains(NOT_ACTIVE_BBS), "{err}");
}

#[test]
fn bad_url_lists_are_refused_with_the_index() {
    let err = BbsClient::with_urls(Vec::<String>::new()).unwrap_err();
    assert_eq!(err.kind(), "InvalidConfiguration");
    let err = BbsClient::with_urls(["http://ok:1", "ftp://nope"]).unwrap_err();
    assert!(err.to_string().contains("bbs_urls[1]"), "{err}");
}
