//! The `filecache-cli` command, as a library function so it is tested natively and
//! runs unchanged as a `wasi:cli/run` component under `wasmtime run`.
//!
//! ```text
//! filecache-cli --dir DIR [--durable] [--lease D] [--lock-timeout D] COMMAND
//!   get KEY                         value to stdout; exit 1 on a miss
//!   insert KEY VALUE [--ttl D]      VALUE `-` reads the bytes from stdin
//!   add KEY VALUE [--ttl D]         insert only if absent; prints true or false
//!   increment KEY [DELTA]           adds DELTA (default 1); prints the new value
//!   touch KEY --ttl D               new expiry for a live value; prints true or false
//!   remove KEY
//!   contains KEY                    prints true or false
//!   clear
//!   size                            number of entries
//!   stats [--json]
//! ```
//! Durations: `300ms`, `5s`, `5m`, `1h`, `2d`, `never`. Exit codes: 0 success,
//! 1 miss, 2 usage error, 3 any other failure (message on stderr).

use std::io::{Read, Write};

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
pub const USAGE: &str = "usage: filecache-cli --dir DIR [--durable] [--lease D] [--lock-timeout D] COMMAND
commands:
  get KEY                      print the value (exit 1 on a miss)
  insert KEY VALUE [--ttl D]   store VALUE (`-` reads it from stdin); D: 300ms, 5s, 5m, 1h, 2d, never
  add KEY VALUE [--ttl D]      store VALUE only if KEY has no live value; print true or false
  increment KEY [DELTA]        add DELTA (default 1) to the integer under KEY; print the result
  touch KEY --ttl D            give KEY's live value a new expiry; print true or false
  remove KEY                   remove the entry (absent keys are fine)
  contains KEY                 print true or false
  clear                        remove every entry
  size                         print the number of entries
  stats [--json]               print counters and sizes
options:
  --lease D          age after which a temporary or lock file is abandoned (default 10s)
  --lock-timeout D   how long add/increment/touch wait for a locked key (default 12s)
  --durable          sync each write to stable storage before reporting success
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

#[derive(Debug, Default)]
struct Invocation {
    dir: Option<String>,
    durable: bool,
    json: bool,
    lease: Option<Ttl>,
    lock_timeout: Option<Ttl>,
    ttl: Option<Ttl>,
    words: Vec<String>,
}

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
    let outcome = parse(args).and_then(|invocation| execute(&invocation, streams));
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

fn parse(args: &[String]) -> Result<Invocation, Failure> {
    let mut invocation = Invocation::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value_of = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        let duration = |text: String| parse_ttl(&text).map_err(|e| Failure::Usage(e.to_string()));
        match arg.as_str() {
            "--dir" => invocation.dir = Some(value_of("--dir")?),
            "--ttl" => invocation.ttl = Some(duration(value_of("--ttl")?)?),
            "--lease" => invocation.lease = Some(duration(value_of("--lease")?)?),
            "--lock-timeout" => {
                invocation.lock_timeout = Some(duration(value_of("--lock-timeout")?)?);
            }
            "--durable" => invocation.durable = true,
            "--json" => invocation.json = true,
            "-h" | "--help" => return Err(Failure::Usage("help requested".into())),
            flag if flag.starts_with("--") => {
                return Err(Failure::Usage(format!("unknown option {flag}")));
            }
            word => invocation.words.push(word.to_owned()),
        }
    }
    Ok(invocation)
}

fn execute<I: Read, O: Write, E: Write>(
    inv: &Invocation,
    streams: &mut Streams<I, O, E>,
) -> Result<i32, Failure> {
    let words: Vec<&str> = inv.words.iter().map(String::as_str).collect();
    let Some((&command, operands)) = words.split_first() else {
        return Err(Failure::Usage("no command given".into()));
    };
    let (fewest, most) = match command {
        "get" | "remove" | "contains" | "touch" => (1, 1),
        "insert" | "add" => (2, 2),
        "increment" => (1, 2),
        "clear" | "size" | "stats" => (0, 0),
        other => return Err(Failure::Usage(format!("unknown command `{other}`"))),
    };
    if !(fewest..=most).contains(&operands.len()) {
        return Err(Failure::Usage(format!(
            "`{command}` takes {} operand(s), got {}",
            if fewest == most {
                fewest.to_string()
            } else {
                format!("{fewest} or {most}")
            },
            operands.len()
        )));
    }
    let takes_ttl = matches!(command, "insert" | "add" | "touch");
    if inv.ttl.is_some() && !takes_ttl {
        return Err(Failure::Usage(
            "--ttl only applies to insert, add and touch".into(),
        ));
    }
    if command == "touch" && inv.ttl.is_none() {
        return Err(Failure::Usage("touch needs --ttl D".into()));
    }
    let dir = inv
        .dir
        .as_deref()
        .ok_or_else(|| Failure::Usage("--dir DIR is required".into()))?;
    let mut options = Options {
        durable: inv.durable,
        ..Options::default()
    };
    match inv.lease {
        Some(Ttl::After(lease)) => options.lease = lease,
        Some(Ttl::Never) => return Err(Failure::Usage("--lease must be a duration".into())),
        None => {}
    }
    match inv.lock_timeout {
        Some(Ttl::After(timeout)) => options.lock_timeout = timeout,
        Some(Ttl::Never) => {
            return Err(Failure::Usage("--lock-timeout must be a duration".into()));
        }
        None => {}
    }
    let expiry = match inv.ttl {
        None | Some(Ttl::Never) => Expiry::Never,
        Some(Ttl::After(ttl)) => Expiry::After(ttl),
    };
    let cache = FileStore::open(dir, options)?;
    let out = &mut streams.stdout;
    match (command, operands) {
        ("get", [key]) => match cache.get(key)? {
            Some(value) => out.write_all(&value)?,
            None => return Ok(EXIT_MISS),
        },
        ("insert", [key, value]) => {
            let value = value_operand(value, &mut streams.stdin)?;
            cache.insert(key, &value, expiry)?;
        }
        ("add", [key, value]) => {
            let value = value_operand(value, &mut streams.stdin)?;
            writeln!(out, "{}", cache.add(key, &value, expiry)?)?;
        }
        ("increment", [key, rest @ ..]) => {
            let delta = match rest {
                [] => 1,
                [delta, ..] => delta.parse::<i64>().map_err(|_| {
                    Failure::Usage(format!("DELTA must be a 64-bit integer, not `{delta}`"))
                })?,
            };
            writeln!(out, "{}", cache.increment(key, delta)?)?;
        }
        ("touch", [key]) => writeln!(out, "{}", cache.touch(key, expiry)?)?,
        ("remove", [key]) => cache.remove(key)?,
        ("contains", [key]) => writeln!(out, "{}", cache.contains_key(key)?)?,
        ("clear", []) => cache.clear()?,
        ("size", []) => writeln!(out, "{}", cache.approx_size()?)?,
        ("stats", []) => write_stats(out, &cache.stats()?, inv.json)?,
        _ => unreachable_usage()?,
    }
    Ok(EXIT_OK)
}

/// The bytes of a VALUE operand: the operand itself, or standard input for `-`.
fn value_operand(operand: &str, stdin: &mut impl Read) -> Result<Vec<u8>, Failure> {
    if operand == "-" {
        let mut bytes = Vec::new();
        stdin.read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        Ok(operand.as_bytes().to_vec())
    }
}

fn unreachable_usage() -> Result<(), Failure> {
    Err(Failure::Usage("operands do not match the command".into()))
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
