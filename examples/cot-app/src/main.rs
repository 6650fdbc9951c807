//! Serves the page-caching Cot app: `cargo run -p filecache-cot-example`.

use filecache_cot_example::PageProject;

#[cot::main]
fn main() -> impl cot::Project {
    let dir = std::env::var("FILECACHE_COT_DIR").unwrap_or_else(|_| "cot-cache".into());
    match PageProject::new(dir.as_ref()) {
        Ok(project) => project,
        Err(e) => panic!("cannot open the cache in `{dir}`: {e}"),
    }
}
