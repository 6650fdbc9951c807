//! The `filecache-cli` command, as a library function so it is tested natively
//! and runs unchanged as a `wasi:cli/run` component under `wasmtime run`. Not
//! a library API: only the command's binary and this crate's tests use it.
//!
//! The arguments are turned into an [`Invocation`] by [`plan`] (`args.rs`:
//! pure, no I/O — the part the fuzzer drives), which [`run`] then carries out.
//! The usage is in [`USAGE`]. Exit codes: 0 success, 1 miss, 2 usage error,
//! 3 any other failure (message on stderr).

mod args;

use std::io::{Read, Write};

pub use args::{Command, Invocation, Plan, Span, USAGE, ValueSource, parse_span, parse_time, plan};

use crate::{FileStore, Stats};

/// Exit code of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit code of `get` on a miss.
pub const EXIT_MISS: i32 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of any other failure.
pub const EXIT_FAILURE: i32 = 3;

/// The standard streams a command uses.
#[derive(Debug)]
pub struct Streams<I, O, E> {
    /// Standard input (`insert KEY -`).
    pub stdin: I,
    /// Standard output.
    pub stdout: O,
    /// Standard error.
    pub stderr: E,
}

/// Why a command did not succeed.
enum Failure {
    Usage(String),
    Failed(String),
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(format!("failed to use the standard streams: {e}"))
    }
}

/// Runs the command with `args` (without the program name); returns the exit code.
pub fn run<I: Read, O: Write, E: Write>(args: &[String], streams: &mut Streams<I, O, E>) -> i32 {
    let outcome = plan(args)
        .map_err(Failure::Usage)
        .and_then(|invocation| match invocation {
            Invocation::Run(plan) => perform(plan, streams),
            Invocation::Help(text) => {
                streams.stdout.write_all(text.as_bytes())?;
                Ok(EXIT_OK)
            }
            Invocation::Version => {
                writeln!(
                    streams.stdout,
                    "filecache-cli {}",
                    env!("CARGO_PKG_VERSION")
                )?;
                Ok(EXIT_OK)
            }
        });
    let (code, message) = match outcome {
        Ok(code) => (code, None),
        Err(Failure::Usage(message)) => (
            EXIT_USAGE,
            Some(format!(
                "error: {message}\nusage: filecache-cli --dir DIR [OPTIONS] COMMAND [ARGS] \
                 (`filecache-cli --help` for more)\n"
            )),
        ),
        Err(Failure::Failed(message)) => (EXIT_FAILURE, Some(format!("error: {message}\n"))),
    };
    if let Some(message) = message {
        let _ = streams.stderr.write_all(message.as_bytes());
    }
    let _ = streams.stdout.flush();
    code
}

/// Carries out a plan; returns the exit code.
fn perform<I: Read, O: Write, E: Write>(
    plan: Plan,
    streams: &mut Streams<I, O, E>,
) -> Result<i32, Failure> {
    let cache = FileStore::open(&plan.dir, plan.options)?;
    let out = &mut streams.stdout;
    match plan.command {
        Command::Get(key) => match cache.get(&key)? {
            Some(value) => out.write_all(&value)?,
            None => return Ok(EXIT_MISS),
        },
        Command::Insert(key, value, expiry) => {
            let value = read_value(value, &mut streams.stdin)?;
            cache.insert(&key, &value, expiry)?;
        }
        Command::Add(key, value, expiry) => {
            let value = read_value(value, &mut streams.stdin)?;
            writeln!(out, "{}", cache.add(&key, &value, expiry)?)?;
        }
        Command::Increment(key, delta) => writeln!(out, "{}", cache.increment(&key, delta)?)?,
        Command::Touch(key, expiry) => writeln!(out, "{}", cache.touch(&key, expiry)?)?,
        Command::Remove(key) => cache.remove(&key)?,
        Command::Contains(key) => writeln!(out, "{}", cache.contains_key(&key)?)?,
        Command::Keys => {
            for key in cache.keys() {
                writeln!(out, "{}", key?)?;
            }
        }
        Command::Clear => cache.clear()?,
        Command::Size => writeln!(out, "{}", cache.approx_size()?)?,
        Command::Recount => writeln!(out, "{}", cache.recount()?)?,
        Command::Stats(json) => write_stats(out, &cache.stats()?, json)?,
    }
    Ok(EXIT_OK)
}

/// The bytes of a VALUE operand.
fn read_value(source: ValueSource, stdin: &mut impl Read) -> Result<Vec<u8>, Failure> {
    match source {
        ValueSource::Operand(text) => Ok(text.into_bytes()),
        ValueSource::Stdin => {
            let mut bytes = Vec::new();
            stdin.read_to_end(&mut bytes)?;
            Ok(bytes)
        }
    }
}

fn write_stats(out: &mut impl Write, stats: &Stats, json: bool) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string(stats).map_err(|e| Failure::Failed(e.to_string()))?;
        writeln!(out, "{text}")?;
        return Ok(());
    }
    let rows = [
        ("entries", stats.entries),
        ("bytes", stats.bytes),
        ("hits", stats.hits),
        ("misses", stats.misses),
        ("expired removed", stats.expired_removed),
        ("evicted", stats.evicted),
        ("corrupt removed", stats.corrupt_removed),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<16} {value}")?;
    }
    Ok(())
}
