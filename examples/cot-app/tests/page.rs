//! The app, through Cot's test client: the second request is served from the
//! cache — the page is rendered once, the entry is on disk, a second process
//! (here: a second project on the same directory) reads it without rendering.

use cot::test::Client;
use filecache::{FileStore, Options};
use filecache_cot_example::PageProject;

async fn body(client: &mut Client) -> String {
    let response = client.get("/").await.expect("GET /");
    assert!(response.status().is_success());
    let bytes = response.into_body().into_bytes().await.expect("body");
    String::from_utf8(bytes.to_vec()).expect("UTF-8 page")
}

#[tokio::test]
async fn the_page_is_rendered_once_then_served_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let project = PageProject::new(dir.path()).expect("open");
    let mut client = Client::new(project.clone()).await;
    let first = body(&mut client).await;
    assert!(first.contains("17984 primes"), "{first}");
    let second = body(&mut client).await;
    assert_eq!(first, second);
    assert_eq!(project.renders(), 1, "the second request was a cache hit");

    let native = FileStore::open(dir.path(), Options::default()).expect("open natively");
    let keys: Vec<String> = native.keys().map(|key| key.expect("key")).collect();
    assert_eq!(keys, ["pages:/"], "the page is one entry on disk");

    let restarted = PageProject::new(dir.path()).expect("open again");
    let mut client = Client::new(restarted.clone()).await;
    assert_eq!(body(&mut client).await, first);
    assert_eq!(
        restarted.renders(),
        0,
        "a new process reads what the first stored"
    );
}
