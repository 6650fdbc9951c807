//! The command line of `filecache-cli`, turned into an [`Invocation`]: pure, no
//! I/O — the part the fuzzer drives. Options may come before or after the
//! command; `--name=value` and `--name value` both work.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use lexopt::{Arg, Parser, ValueExt};

use crate::{Expiry, Options};

/// The usage text (`--help`).
pub const USAGE: &str = "\
usage: filecache-cli --dir DIR [OPTIONS] COMMAND [ARGS]
       filecache-cli COMMAND --help | --help | --version

commands:
  get KEY                 print the value (exit 1 on a miss)
  insert KEY VALUE        store VALUE (`-` reads it from stdin) [--ttl D | --expires-at T]
  add KEY VALUE           store VALUE only if KEY has no live value; print true or false
  increment KEY [DELTA]   add DELTA (default 1) to the integer under KEY; print the result
  touch KEY               give KEY's live value a new expiry (--ttl D or --expires-at T)
  remove KEY              remove the entry (an absent key is fine)
  contains KEY            print true or false
  keys                    print every live key, one per line
  clear                   remove every entry
  size                    print the number of entries
  recount                 count the entries and correct a bounded cache's shared count
  stats [--json]          print counters and sizes

options:
  --dir DIR             the cache directory (created if missing)
  --ttl D               expire D after the write: 300ms, 5s, 5m, 1h, 2d, \"1h 30m\", never
  --expires-at T        expire at the RFC 3339 time T, e.g. 2026-12-01T08:00:00Z
  --durable             sync each write to stable storage before reporting success
  --lease D             age after which a temporary or lock file is abandoned (default 10s)
  --lock-timeout D      how long add/increment/touch wait for a locked key (default 12s)
  --max-entries N       keep at most about N entries, evicting the least recently used
  --max-bytes N         keep at most about N bytes of entry files, likewise
  --group-shared        let the directory's group use the cache (default: private)
  -h, --help            print this help (after a command: that command's help)
  -V, --version         print the version

exit codes: 0 success, 1 miss (get), 2 usage error, 3 any other failure
";

/// One help text per command: `filecache-cli COMMAND --help`.
const COMMAND_HELP: &[(&str, &str)] = &[
    (
        "get",
        "usage: filecache-cli --dir DIR get KEY\nPrints the value stored under KEY; exits 1 if there is none (absent, expired or damaged).\n",
    ),
    (
        "insert",
        "usage: filecache-cli --dir DIR insert KEY VALUE [--ttl D | --expires-at T]\nStores VALUE under KEY, replacing any value; VALUE `-` reads the bytes from stdin.\nWithout --ttl or --expires-at the value never expires.\n",
    ),
    (
        "add",
        "usage: filecache-cli --dir DIR add KEY VALUE [--ttl D | --expires-at T]\nStores VALUE only if KEY has no live value (atomically); prints true if it stored it.\n",
    ),
    (
        "increment",
        "usage: filecache-cli --dir DIR increment KEY [DELTA]\nAdds DELTA (default 1, may be negative) to the decimal integer under KEY, atomically;\nan absent key counts as 0. Prints the new value.\n",
    ),
    (
        "touch",
        "usage: filecache-cli --dir DIR touch KEY (--ttl D | --expires-at T)\nGives KEY's live value a new expiry; prints true, or false if there is none.\n",
    ),
    (
        "remove",
        "usage: filecache-cli --dir DIR remove KEY\nRemoves the entry; removing an absent key succeeds.\n",
    ),
    (
        "contains",
        "usage: filecache-cli --dir DIR contains KEY\nPrints true if KEY has a live value, false otherwise.\n",
    ),
    (
        "keys",
        "usage: filecache-cli --dir DIR keys\nPrints every live key, one per line, in the order of their hashes.\n",
    ),
    (
        "clear",
        "usage: filecache-cli --dir DIR clear\nRemoves every entry (files that are not the cache's are left alone).\n",
    ),
    (
        "size",
        "usage: filecache-cli --dir DIR size\nPrints the number of entries (a bounded cache answers from its shared count).\n",
    ),
    (
        "recount",
        "usage: filecache-cli --dir DIR --max-entries N [--max-bytes N] recount\nCounts the entries, listing every shard, and prints the number. With the cache's limits,\nalso corrects the count its bounded handles share: they recount on their own after\nthousands of writes each, or at a write that finds the count an hour old in a\ncache of up to 65 536 entries; where every writer is short-lived (a request, a command)\nand the cache is larger, run this now and then.\n",
    ),
    (
        "stats",
        "usage: filecache-cli --dir DIR stats [--json]\nPrints the entries and bytes on disk and this command's counters.\n",
    ),
];

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
    /// `insert KEY VALUE`.
    Insert(String, ValueSource, Expiry),
    /// `add KEY VALUE`.
    Add(String, ValueSource, Expiry),
    /// `increment KEY [DELTA]`.
    Increment(String, i64),
    /// `touch KEY`.
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
    /// `recount`.
    Recount,
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

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Work on a cache.
    Run(Plan),
    /// Print this help text and succeed.
    Help(&'static str),
    /// Print the version and succeed.
    Version,
}

/// A parsed `--ttl`, `--lease` or `--lock-timeout` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `never`.
    Never,
    /// A span of time.
    After(Duration),
}

/// Parses a human duration (`300ms`, `5s`, `5m`, `1h`, `2d`, `1h 30m`, …, as
/// `humantime` reads them) or `never`.
///
/// # Errors
/// A message naming the input, for anything else.
pub fn parse_span(input: &str) -> Result<Span, String> {
    if input == "never" {
        return Ok(Span::Never);
    }
    humantime::parse_duration(input)
        .map(Span::After)
        .map_err(|e| {
            format!(
                "invalid duration `{input}`: {e} (expected e.g. 300ms, 5s, 5m, 1h, 2d or never)"
            )
        })
}

/// Parses an RFC 3339 time (`2026-12-01T08:00:00Z`, `…+01:00`).
///
/// # Errors
/// A message naming the input, for anything else.
pub fn parse_time(input: &str) -> Result<SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(input)
        .map(SystemTime::from)
        .map_err(|e| {
            format!("invalid time `{input}`: {e} (expected RFC 3339, e.g. 2026-12-01T08:00:00Z)")
        })
}

/// Options and words of a command line, before they are checked together.
#[derive(Debug, Default)]
struct Words {
    dir: Option<String>,
    durable: bool,
    group_shared: bool,
    json: bool,
    help: bool,
    version: bool,
    lease: Option<Span>,
    lock_timeout: Option<Span>,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    ttl: Option<Span>,
    expires_at: Option<SystemTime>,
    words: Vec<String>,
}

/// Parses and checks a command line (without the program name). No I/O.
///
/// # Errors
/// A message saying what is wrong with the command line.
pub fn plan(args: &[String]) -> Result<Invocation, String> {
    let words = split(args)?;
    let Some((name, operands)) = words.words.split_first() else {
        return if words.version {
            Ok(Invocation::Version)
        } else if words.help {
            Ok(Invocation::Help(USAGE))
        } else {
            Err("no command given".into())
        };
    };
    let name = name.as_str();
    let Some(&(_, command_help)) = COMMAND_HELP.iter().find(|(command, _)| *command == name) else {
        return Err(format!("unknown command `{name}`"));
    };
    if words.help {
        return Ok(Invocation::Help(command_help));
    }
    if words.version {
        return Ok(Invocation::Version);
    }
    let expiry = match (words.ttl, words.expires_at) {
        (Some(_), Some(_)) => return Err("give --ttl or --expires-at, not both".into()),
        (None | Some(Span::Never), None) => Expiry::Never,
        (Some(Span::After(ttl)), None) => Expiry::After(ttl),
        (None, Some(at)) => Expiry::At(at),
    };
    let has_expiry = words.ttl.is_some() || words.expires_at.is_some();
    if has_expiry && !matches!(name, "insert" | "add" | "touch") {
        return Err("--ttl and --expires-at only apply to insert, add and touch".into());
    }
    if words.json && name != "stats" {
        return Err("--json only applies to stats".into());
    }
    let key = |i: usize| operands[i].clone();
    let value = |i: usize| match operands[i].as_str() {
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
        ("touch", 1) if !has_expiry => return Err("touch needs --ttl D or --expires-at T".into()),
        ("touch", 1) => Command::Touch(key(0), expiry),
        ("remove", 1) => Command::Remove(key(0)),
        ("contains", 1) => Command::Contains(key(0)),
        ("keys", 0) => Command::Keys,
        ("clear", 0) => Command::Clear,
        ("size", 0) => Command::Size,
        ("recount", 0) => Command::Recount,
        ("stats", 0) => Command::Stats(words.json),
        (_, count) => return Err(format!("`{name}` does not take {count} operand(s)")),
    };
    let dir = words.dir.clone().ok_or("--dir DIR is required")?;
    if dir.is_empty() {
        return Err("--dir needs a non-empty path".into());
    }
    Ok(Invocation::Run(Plan {
        dir,
        options: options_of(&words)?,
        command,
    }))
}

/// Splits a command line into options and words.
fn split(args: &[String]) -> Result<Words, String> {
    let mut words = Words::default();
    let mut parser = Parser::from_args(args.iter().map(OsString::from));
    let message = |e: lexopt::Error| e.to_string();
    let text = |parser: &mut Parser| -> Result<String, String> {
        parser.value().map_err(message)?.string().map_err(message)
    };
    loop {
        // A negative number (`increment n -3`) is an operand, not an option.
        let negative = parser.try_raw_args().and_then(|mut raw| {
            raw.next_if(|next| {
                next.to_str()
                    .is_some_and(|text| text.parse::<i64>().is_ok())
            })
        });
        if let Some(number) = negative {
            words.words.push(number.string().map_err(message)?);
            continue;
        }
        let Some(arg) = parser.next().map_err(message)? else {
            break;
        };
        match arg {
            Arg::Long("dir") => words.dir = Some(text(&mut parser)?),
            Arg::Long("ttl") => words.ttl = Some(parse_span(&text(&mut parser)?)?),
            Arg::Long("expires-at") => words.expires_at = Some(parse_time(&text(&mut parser)?)?),
            Arg::Long("lease") => words.lease = Some(parse_span(&text(&mut parser)?)?),
            Arg::Long("lock-timeout") => {
                words.lock_timeout = Some(parse_span(&text(&mut parser)?)?);
            }
            Arg::Long("max-entries") => {
                words.max_entries = Some(count("--max-entries", &text(&mut parser)?)?);
            }
            Arg::Long("max-bytes") => {
                words.max_bytes = Some(count("--max-bytes", &text(&mut parser)?)?);
            }
            Arg::Long("durable") => words.durable = true,
            Arg::Long("group-shared") => words.group_shared = true,
            Arg::Long("json") => words.json = true,
            Arg::Short('h') | Arg::Long("help") => words.help = true,
            Arg::Short('V') | Arg::Long("version") => words.version = true,
            Arg::Value(word) => words.words.push(word.string().map_err(message)?),
            Arg::Short(_) | Arg::Long(_) => return Err(arg.unexpected().to_string()),
        }
    }
    // `filecache-cli help [COMMAND]` is `--help` by another name.
    if words.words.first().is_some_and(|word| word == "help") {
        words.words.remove(0);
        words.help = true;
    }
    Ok(words)
}

fn count(name: &str, text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("{name} needs a whole number, not `{text}`"))
}

/// The open options a command line asks for, checked.
fn options_of(words: &Words) -> Result<Options, String> {
    let span = |name: &str, value: Option<Span>, default: Duration| match value {
        None => Ok(default),
        Some(Span::After(span)) => Ok(span),
        Some(Span::Never) => Err(format!("{name} must be a duration")),
    };
    let defaults = Options::default();
    let options = Options {
        durable: words.durable,
        lease: span("--lease", words.lease, defaults.lease)?,
        lock_timeout: span("--lock-timeout", words.lock_timeout, defaults.lock_timeout)?,
        max_entries: words.max_entries,
        max_bytes: words.max_bytes,
        group_shared: words.group_shared,
        ..defaults
    };
    options.validate().map_err(|e| e.to_string())?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn run_plan(line: &str) -> Plan {
        match plan(&args(line)) {
            Ok(Invocation::Run(plan)) => plan,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn plans_check_everything_before_any_io() {
        let plan = run_plan("--dir d --max-entries 10 insert k - --ttl 5s");
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
            run_plan("--dir=d increment n -3").command,
            Command::Increment("n".into(), -3)
        );
        assert_eq!(
            run_plan("--dir d touch k --expires-at 2026-12-01T08:00:00+01:00").command,
            Command::Touch(
                "k".into(),
                Expiry::At(UNIX_EPOCH + Duration::from_secs(1_796_108_400))
            )
        );
        assert!(run_plan("--dir d --group-shared size").options.group_shared);
        for bad in [
            "",
            "--dir d",
            "get k",
            "--dir d get",
            "--dir d get k --ttl 1s",
            "--dir d touch k",
            "--dir d insert k v --ttl 1s --expires-at 2026-12-01T08:00:00Z",
            "--dir d insert k v --expires-at tomorrow",
            "--dir d size --json",
            "--dir d increment n x",
            "--dir d --max-entries -1 size",
            "--dir d --lease never size",
            "--dir d --lease 0ms size",
            "--dir d --ttl 5x insert k v",
            "--dir d frobnicate",
            "--dir d -x size",
            "--dir",
        ] {
            assert!(super::plan(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_and_version_need_no_cache() {
        assert_eq!(plan(&args("--help")), Ok(Invocation::Help(USAGE)));
        assert_eq!(plan(&args("-h")), Ok(Invocation::Help(USAGE)));
        assert_eq!(plan(&args("help")), Ok(Invocation::Help(USAGE)));
        assert_eq!(plan(&args("--version")), Ok(Invocation::Version));
        assert_eq!(plan(&args("-V")), Ok(Invocation::Version));
        for command in ["get", "insert", "stats"] {
            for line in [format!("{command} --help"), format!("help {command}")] {
                match plan(&args(&line)) {
                    Ok(Invocation::Help(text)) => {
                        assert!(text.contains(&format!("{command} ")), "{line}: {text}");
                        assert_ne!(text, USAGE);
                    }
                    other => panic!("{line}: {other:?}"),
                }
            }
        }
        assert!(plan(&args("frobnicate --help")).is_err());
    }

    #[test]
    fn spans_are_human_durations_or_never() {
        assert_eq!(
            parse_span("300ms"),
            Ok(Span::After(Duration::from_millis(300)))
        );
        assert_eq!(parse_span("5m"), Ok(Span::After(Duration::from_secs(300))));
        assert_eq!(
            parse_span("1h 30m"),
            Ok(Span::After(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse_span("2d"),
            Ok(Span::After(Duration::from_secs(172_800)))
        );
        assert_eq!(parse_span("never"), Ok(Span::Never));
        for bad in ["", "5x", "-5s", "ms", "99999999999999999999999s"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }
}
