//! A Cot web app whose front page is slow to compute, so it keeps the page in a
//! filecache directory through a `cot::cache::Cache` built on
//! [`filecache::cot::CotStore`]: the first request renders and stores it, the
//! next ones (from this process, another worker, or after a restart) read it.
//!
//! Cot 0.7 builds a project's configured cache only from its own stores
//! (memory, Redis), so the app makes its `Cache` itself and hands it to its
//! view. `cargo run -p filecache-cot-example` serves it on 127.0.0.1:8000
//! (`FILECACHE_COT_DIR` chooses the cache directory, default `cot-cache`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cot::cache::Cache;
use cot::config::{ProjectConfig, Timeout};
use cot::html::Html;
use cot::project::{AppBuilder, RegisterAppsContext};
use cot::router::{Route, Router};
use cot::{App, Project};
use filecache::Options;
use filecache::cot::CotStore;

/// How long the rendered page is kept.
pub const PAGE_TTL: Duration = Duration::from_secs(60);

/// The project: one app, the cache directory it uses.
#[derive(Debug, Clone)]
pub struct PageProject {
    cache: Cache,
    renders: Arc<AtomicU64>,
}

impl PageProject {
    /// The project with its page cache in `dir` (created if missing).
    ///
    /// # Errors
    /// The cache's error if the directory cannot be opened.
    pub fn new(dir: &Path) -> filecache::Result<Self> {
        let store = CotStore::open(dir, Options::default())?;
        Ok(Self {
            cache: Cache::new(store, Some("pages".into()), Timeout::After(PAGE_TTL)),
            renders: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many times this process rendered the page.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }
}

impl Project for PageProject {
    fn config(&self, _config_name: &str) -> cot::Result<ProjectConfig> {
        Ok(ProjectConfig::dev_default())
    }

    fn register_apps(&self, apps: &mut AppBuilder, _context: &RegisterAppsContext) {
        apps.register_with_views(PageApp(self.clone()), "");
    }
}

/// The app: the front page.
struct PageApp(PageProject);

impl App for PageApp {
    fn name(&self) -> &'static str {
        "pages"
    }

    fn router(&self) -> Router {
        let project = self.0.clone();
        Router::with_urls([Route::with_handler("/", move || {
            let project = project.clone();
            async move { front_page(&project).await }
        })])
    }
}

/// The front page: from the cache, or rendered (slowly) and stored.
async fn front_page(project: &PageProject) -> cot::Result<Html> {
    let renders = Arc::clone(&project.renders);
    let page: String = project
        .cache
        .get_or_insert_with("/", || async move {
            renders.fetch_add(1, Ordering::Relaxed);
            Ok(render())
        })
        .await?;
    Ok(Html::new(page))
}

/// A page that takes a while: the primes below 200 000, counted the slow way.
fn render() -> String {
    let count = (2u32..200_000)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count();
    format!("<h1>Primes</h1><p>There are {count} primes below 200 000.</p>")
}
