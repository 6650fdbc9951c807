//! Helpers of this crate's unit tests.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Moves the modification time of the file `path` `by` into the past.
pub(crate) fn age_file(path: &Path, by: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now() - by))
        .expect("age the file");
}
