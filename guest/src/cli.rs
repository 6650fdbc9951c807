//! The `filecache-cli` command, as a library function so it is tested natively and
//! runs unchanged as a `wasi:cli/run` component under `wasmtime run`.
//!
//! Arguments are first turned into a [`Plan`] by [`plan`] — pure, no I/O, the
//! part the fuzzer drives — and the plan is then carried out by [`run`].
//!
//! ```text
//! filecache-cli --dir DIR [OPTIONS] COMMAND
//!   get KEY                         value to stdout; exit 1 on a miss
//!   insert KEY VALUE [--ttl D]      VALUE `-` reads the bytes from stdin
//!   add KEY VALUE [--ttl D]         insert only if absent; prints true or false
//!   increment KEY [DELTA]           adds DELTA (default 1); prints the new value
//!   touch KEY --ttl D               new expiry for a live value; prints true or false
//!   remove KEY
//!   contains KEY                    prints true or false
//!   keys                            every live key, one per line
//!   clear
//!   size                            number of entries
//!   stats [--json]
//! options: --durable, --lease D, --lock-timeout D, --max-entries N, --max-bytes N
//! ```
//! Durations: `300ms`, `5s`, `5m`, `1h`, `2d`, `never`. Exit codes: 0 success,
//! 1 miss, 2 usage error, 3 any other failure (message on stderr).

use std::io::{Read, Write};
use std::time::Duration;

use crate::duration::{Ttl, parse_ttl};
use crate::{Expiry, FileStore, Options, Stats};

/// Exit code of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit code of `get` on a miss.
pub const EXIT_MISS: i32 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of any other failure.
pub const EXIT_FAILURE: i32 = 3;

/// The usage text.
pub const USAGE: &str = "usage: filecache-cli --dir DIR [OPTIONS] COMMAND
commands:
  get KEY                      print the value (exit 1 on a miss)
  insert KEY VALUE [--ttl D]   store VALUE (`-` reads it from stdin); D: 300ms, 5s, 5m, 1h, 2d, never
  add KEY VALUE [--ttl D]      store VALUE only if KEY has no live value; print true or false
  increment KEY [DELTA]        add DELTA (default 1) to the integer under KEY; print the result
  touch KEY --ttl D            give KEY's live value a new expiry; print true or false
  remove KEY                   remove the entry (absent keys are fine)
  contains KEY                 print true or false
  keys                         print every live key, one per line
  clear                        remove every entry
  size                         print the number of entries
  stats [--json]               print counters and sizes
options:
  --durable          sync each write to stable storage before reporting success
  --lease D          age after which a temporary or lock file is abandoned (default 10s)
  --lock-timeout D   how long add/increment/touch wait for a locked key (default 12s)
  --max-entries N    keep at most about N entries, evicting the least recently used
  --max-bytes N      keep at most about N bytes of entry files, likewise
";

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

/// Where a VALUE operand comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// The operand's own bytes.
    Operand(String),
    /// Standard input (the operand was `-`).
    Stdin,
}

/// One command, with its operands checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get KEY`.
    Get(String),
    /// `insert KEY VALUE [--ttl D]`.
    Insert(String, ValueSource, Expiry),
    /// `add KEY VALUE [--ttl D]`.
    Add(String, ValueSource, Expiry),
    /// `increment KEY [DELTA]`.
    Increment(String, i64),
    /// `touch KEY --ttl D`.
    Touch(String, Expiry),
    /// `remove KEY`.
    Remove(String),
    /// `contains KEY`.
    Contains(String),
    /// `keys`.
    Keys,
    /// `clear`.
    Clear,
    /// `size`.
    Size,
    /// `stats [--json]`; true for JSON.
    Stats(bool),
}

/// A checked command line: which cache, opened how, to do what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The cache directory.
    pub dir: String,
    /// How to open it.
    pub options: Options,
    /// What to do.
    pub command: Command,
}

/// Options and words of a command line, before they are checked together.
#[derive(Debug, Default)]
struct Words {
    dir: Option<String>,
    durable: bool,
    json: bool,
    lease: Option<Ttl>,
    lock_timeout: Option<Ttl>,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    ttl: Option<Ttl>,
    words: Vec<String>,
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
        .and_then(|plan| perform(plan, streams));
    let (code, message) = match outcome {
        Ok(code) => (code, None),
        Err(Failure::Usage(message)) => (EXIT_USAGE, Some(format!("error: {message}\n{USAGE}"))),
        Err(Failure::Failed(message)) => (EXIT_FAILURE, Some(format!("error: {message}\n"))),
    };
    if let Some(message) = message {
        let _ = streams.stderr.write_all(message.as_bytes());
    }
    let _ = streams.stdout.flush();
    code
}

/// Parses and checks a command line (without the program name). No I/O.
///
/// # Errors
/// A message saying what is wrong with the command line.
pub fn plan(args: &[String]) -> Result<Plan, String> {
    let words = split(args)?;
    let words_ref: Vec<&str> = words.words.iter().map(String::as_str).collect();
    let Some((&name, operands)) = words_ref.split_first() else {
        return Err("no command given".into());
    };
    let expiry = match words.ttl {
        None | Some(Ttl::Never) => Expiry::Never,
        Some(Ttl::After(ttl)) => Expiry::After(ttl),
    };
    if words.ttl.is_some() && !matches!(name, "insert" | "add" | "touch") {
        return Err("--ttl only applies to insert, add and touch".into());
    }
    if words.json && name != "stats" {
        return Err("--json only applies to stats".into());
    }
    let key = |i: usize| operands[i].to_owned();
    let value = |i: usize| match operands[i] {
        "-" => ValueSource::Stdin,
        text => ValueSource::Operand(text.to_owned()),
    };
    let command = match (name, operands.len()) {
        ("get", 1) => Command::Get(key(0)),
        ("insert", 2) => Command::Insert(key(0), value(1), expiry),
        ("add", 2) => Command::Add(key(0), value(1), expiry),
        ("increment", 1) => Command::Increment(key(0), 1),
        ("increment", 2) => {
            let delta = operands[1]
                .parse::<i64>()
                .map_err(|_| format!("DELTA must be a 64-bit integer, not `{}`", operands[1]))?;
            Command::Increment(key(0), delta)
        }
        ("touch", 1) if words.ttl.is_none() => return Err("touch needs --ttl D".into()),
        ("touch", 1) => Command::Touch(key(0), expiry),
        ("remove", 1) => Command::Remove(key(0)),
        ("contains", 1) => Command::Contains(key(0)),
        ("keys", 0) => Command::Keys,
        ("clear", 0) => Command::Clear,
        ("size", 0) => Command::Size,
        ("stats", 0) => Command::Stats(words.json),
        (
            "get" | "insert" | "add" | "increment" | "touch" | "remove" | "contains" | "keys"
            | "clear" | "size" | "stats",
            count,
        ) => return Err(format!("`{name}` does not take {count} operand(s)")),
        (other, _) => return Err(format!("unknown command `{other}`")),
    };
    let dir = words.dir.clone().ok_or("--dir DIR is required")?;
    if dir.is_empty() {
        return Err("--dir needs a non-empty path".into());
    }
    Ok(Plan {
        dir,
        options: options_of(&words)?,
        command,
    })
}

/// Splits a command line into options and words.
fn split(args: &[String]) -> Result<Words, String> {
    let mut words = Words::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value_of = |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
        let duration = |text: String| parse_ttl(&text).map_err(|e| e.to_string());
        let count = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} needs a whole number, not `{text}`"))
        };
        match arg.as_str() {
            "--dir" => words.dir = Some(value_of("--dir")?),
            "--ttl" => words.ttl = Some(duration(value_of("--ttl")?)?),
            "--lease" => words.lease = Some(duration(value_of("--lease")?)?),
            "--lock-timeout" => words.lock_timeout = Some(duration(value_of("--lock-timeout")?)?),
            "--max-entries" => {
                words.max_entries = Some(count("--max-entries", value_of("--max-entries")?)?);
            }
            "--max-bytes" => {
                words.max_bytes = Some(count("--max-bytes", value_of("--max-bytes")?)?)
            }
            "--durable" => words.durable = true,
            "--json" => words.json = true,
            "-h" | "--help" => return Err("help requested".into()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            word => words.words.push(word.to_owned()),
        }
    }
    Ok(words)
}

/// The open options a command line asks for, checked.
fn options_of(words: &Words) -> Result<Options, String> {
    let span = |name: &str, value: Option<Ttl>, default: Duration| match value {
        None => Ok(default),
        Some(Ttl::After(span)) => Ok(span),
        Some(Ttl::Never) => Err(format!("{name} must be a duration")),
    };
    let defaults = Options::default();
    let options = Options {
        durable: words.durable,
        lease: span("--lease", words.lease, defaults.lease)?,
        lock_timeout: span("--lock-timeout", words.lock_timeout, defaults.lock_timeout)?,
        max_entries: words.max_entries,
        max_bytes: words.max_bytes,
        ..defaults
    };
    options.validate().map_err(|e| e.to_string())?;
    Ok(options)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn plans_check_everything_before_any_io() {
        let plan = plan(&args("--dir d --max-entries 10 insert k - --ttl 5s")).expect("plan");
        assert_eq!(plan.dir, "d");
        assert_eq!(plan.options.max_entries, Some(10));
        assert_eq!(
            plan.command,
            Command::Insert(
                "k".into(),
                ValueSource::Stdin,
                Expiry::After(Duration::from_secs(5))
            )
        );
        assert_eq!(
            super::plan(&args("--dir d increment n -3")).map(|p| p.command),
            Ok(Command::Increment("n".into(), -3))
        );
        for bad in [
            "",
            "--dir d",
            "get k",
            "--dir d get",
            "--dir d get k --ttl 1s",
            "--dir d touch k",
            "--dir d size --json",
            "--dir d increment n x",
            "--dir d --max-entries -1 size",
            "--dir d --lease never size",
            "--dir d --lease 0ms size",
            "--dir d frobnicate",
            "--dir",
        ] {
            assert!(super::plan(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
