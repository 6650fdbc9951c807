//! The results: a JSON file with every sample, Markdown tables (µs/op and the
//! ratio to the raw floor of the same run), the targets met or missed, and an
//! SVG chart.

use std::fmt::Write as _;
use std::fs;

use serde::Serialize;

use crate::order::Survival;
use crate::scale;
use crate::systems::Kind;
use crate::{PHASES, Settings};

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// "100 B", "4096 B", "instances" or "scale".
    pub group: String,
    /// The phase, e.g. "get hit".
    pub phase: String,
    /// The system (or, in the scale group, the scale).
    pub system: String,
    /// The median of the rounds, µs per operation.
    pub us_per_op: f64,
    /// Every round's figure.
    pub rounds: Vec<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Keys per phase.
    pub keys: usize,
    /// Keys of the durable phase.
    pub durable_keys: usize,
    /// Rounds per phase.
    pub rounds: usize,
    /// Where the caches were.
    pub dir: String,
    /// Wall time of the run.
    pub elapsed_s: f64,
    /// The figures.
    pub figures: Vec<Figure>,
    /// The eviction-order cases.
    pub order: Vec<Survival>,
    /// The components the build ships, and their sizes.
    pub artifacts: Vec<Artifact>,
}

/// One shipped component.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
}

impl Results {
    /// Empty results for these settings.
    pub fn new(settings: &Settings) -> Self {
        Self {
            keys: settings.keys,
            durable_keys: settings.durable_keys,
            rounds: settings.rounds,
            dir: settings.dir.display().to_string(),
            elapsed_s: 0.0,
            figures: Vec::new(),
            order: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    fn get(&self, group: &str, phase: &str, system: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.group == group && f.phase == phase && f.system == system)
            .map(|f| f.us_per_op)
    }
}

/// Writes `results.json`, `results.md` and `bench.svg` into the output directory.
pub fn write(settings: &Settings, results: &Results) {
    fs::create_dir_all(&settings.out).expect("output dir");
    let json = serde_json::to_string_pretty(results).expect("json");
    fs::write(settings.out.join("results.json"), json).expect("write results.json");
    fs::write(settings.out.join("results.md"), markdown(results)).expect("write results.md");
    fs::write(settings.out.join("bench.svg"), svg(results)).expect("write bench.svg");
    eprintln!(
        "bench: wrote {0}/results.json, {0}/results.md, {0}/bench.svg",
        settings.out.display()
    );
}

/// The Markdown report: one table per value size, the instance cost, the scale
/// table, and the targets.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    for group in ["100 B", "4096 B"] {
        let _ = writeln!(
            out,
            "\n**{group} values** — µs/op (ratio to the raw floor), median of {} rounds, {} keys ({} for durable inserts):\n",
            results.rounds, results.keys, results.durable_keys
        );
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        let _ = writeln!(out, "| phase | {} |", names.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(names.len()));
        for phase in PHASES {
            let raw = results.get(group, phase, Kind::Raw.name());
            let cells: Vec<String> = names
                .iter()
                .map(|name| match (results.get(group, phase, name), raw) {
                    (None, _) => "n/a".into(),
                    (Some(us), _) if *name == Kind::Raw.name() => format!("{us:.1}"),
                    (Some(us), Some(raw)) => format!("{us:.1} ({:.2}×)", us / raw),
                    (Some(us), None) => format!("{us:.1}"),
                })
                .collect();
            let _ = writeln!(out, "| {phase} | {} |", cells.join(" | "));
        }
    }
    let instance = |phase: &str| results.get("instances", phase, Kind::Component.name());
    if let (Some(bare), Some(full), Some(native)) = (
        instance("fresh instance (instantiate, preopen, drop)"),
        instance("fresh instance + open + get"),
        results.get("instances", "open + get", Kind::Native.name()),
    ) {
        let _ = writeln!(
            out,
            "\n**Per-request path** — a fresh component instance from the pre-instantiated component (WASI context with its preopen, instantiate, drop): **{bare:.1} µs**; with a cache opened in it and one value read: **{full:.1} µs** ({:.2}× the bare instance); natively, `FileStore::open` + `get` of the same cache: **{native:.1} µs** (the component path is {:.2}× that).",
            full / bare,
            full / native
        );
    }
    let host = |phase: &str| results.get("host", phase, Kind::Component.name());
    if let (Some(cold), Some(warm)) = (
        host("host start, cold (compile)"),
        host("host start, warm (precompiled)"),
    ) {
        let _ = writeln!(
            out,
            "\n**Host start** — `CacheRuntime::new`, engine + component + linker: cold (compiles) **{:.0} ms**, warm (loads the precompiled artifact) **{:.1} ms** ({:.1} % of cold).",
            cold / 1000.0,
            warm / 1000.0,
            warm / cold * 100.0
        );
    }
    if !results.artifacts.is_empty() {
        let _ = writeln!(out, "\n**Shipped components**:\n");
        let _ = writeln!(out, "| component | size |");
        let _ = writeln!(out, "|---|---:|");
        for artifact in &results.artifacts {
            let _ = writeln!(
                out,
                "| {} | {:.0} KB |",
                artifact.name,
                artifact.bytes as f64 / 1000.0
            );
        }
    }
    let scales: Vec<String> = {
        let mut seen = Vec::new();
        for f in results.figures.iter().filter(|f| f.group == "scale") {
            if !seen.contains(&f.system) {
                seen.push(f.system.clone());
            }
        }
        seen
    };
    if !scales.is_empty() {
        let _ = writeln!(
            out,
            "\n**Scale** — filecache native, 100-byte values, µs/op:\n"
        );
        let _ = writeln!(
            out,
            "| phase | {} | largest / smallest |",
            scales.join(" | ")
        );
        let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(scales.len()));
        let mut phases: Vec<&str> = Vec::new();
        for f in results.figures.iter().filter(|f| f.group == "scale") {
            if !phases.contains(&f.phase.as_str()) {
                phases.push(&f.phase);
            }
        }
        for phase in phases {
            let values: Vec<Option<f64>> = scales
                .iter()
                .map(|s| results.get("scale", phase, s))
                .collect();
            let cells: Vec<String> = values
                .iter()
                .map(|v| v.map_or("".into(), us_text))
                .collect();
            let ratio = match (
                values.first().copied().flatten(),
                values.last().copied().flatten(),
            ) {
                (Some(first), Some(last)) if values.iter().filter(|v| v.is_some()).count() > 1 => {
                    format!("{:.2}×", last / first)
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "| {phase} | {} | {ratio} |", cells.join(" | "));
        }
    }
    if !results.order.is_empty() {
        let _ = writeln!(
            out,
            "\n**Eviction order** — 5 000 entries, the first 500 read after a pause, then 2 500 new keys inserted at the limit (exact LRU: 100 %, 100 %, 11 %, 100 %):\n"
        );
        let _ = writeln!(
            out,
            "| entries written and read by | read kept | older unread half evicted | newer unread half evicted | new kept |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for s in &results.order {
            let _ = writeln!(
                out,
                "| {} | {:.0} % | {:.0} % | {:.0} % | {:.0} % |",
                s.case, s.read_kept, s.older_unread_evicted, s.newer_unread_evicted, s.new_kept
            );
        }
    }
    let _ = writeln!(out, "\n**Targets** (ratios within this run):\n");
    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---:|---|");
    for (target, measured, limit) in targets(results) {
        let verdict = if measured <= limit {
            "met"
        } else {
            "**missed**"
        };
        let _ = writeln!(out, "| {target} | {measured:.2} | {verdict} |");
    }
    let _ = writeln!(out, "\nRun took {:.0} s.", results.elapsed_s);
    out
}

/// A time in µs with a sensible number of digits.
fn us_text(us: f64) -> String {
    if us < 1.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.1}")
    }
}

/// Every target: what, the measured ratio (or µs), and the limit.
fn targets(results: &Results) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    let raw = Kind::Raw.name();
    let native = Kind::Native.name();
    let component = Kind::Component.name();
    let cacache = Kind::Cacache.name();
    let ratio = |out: &mut Vec<(String, f64, f64)>,
                 target: String,
                 a: Option<f64>,
                 b: Option<f64>,
                 limit: f64| {
        if let (Some(a), Some(b)) = (a, b) {
            out.push((target, a / b, limit));
        }
    };
    for group in ["100 B", "4096 B"] {
        let g = |phase: &str, system: &str| results.get(group, phase, system);
        ratio(
            &mut out,
            format!(
                "{group}: native get hit ≤ {}× raw",
                if group == "100 B" { 1.3 } else { 1.2 }
            ),
            g("get hit", native),
            g("get hit", raw),
            if group == "100 B" { 1.3 } else { 1.2 },
        );
        ratio(
            &mut out,
            format!("{group}: native get miss ≤ 1.3× raw"),
            g("get miss", native),
            g("get miss", raw),
            1.3,
        );
        ratio(
            &mut out,
            format!(
                "{group}: native insert ≤ {}× raw",
                if group == "100 B" { 1.5 } else { 1.3 }
            ),
            g("insert", native),
            g("insert", raw),
            if group == "100 B" { 1.5 } else { 1.3 },
        );
        ratio(
            &mut out,
            format!("{group}: native durable insert ≤ 1.2× raw"),
            g("insert (durable)", native),
            g("insert (durable)", raw),
            1.2,
        );
        for phase in ["get hit", "get miss", "insert", "contains", "remove"] {
            ratio(
                &mut out,
                format!("{group}: component {phase} ≤ 1.5× native"),
                g(phase, component),
                g(phase, native),
                1.5,
            );
        }
        for phase in ["insert", "get hit", "get miss", "contains", "remove"] {
            ratio(
                &mut out,
                format!("{group}: native faster than cacache, {phase} (ratio < 1)"),
                g(phase, native),
                g(phase, cacache),
                1.0,
            );
        }
    }
    let instances = |phase: &str, system: &str| results.get("instances", phase, system);
    ratio(
        &mut out,
        "fresh instance + open + get ≤ 2.5× the bare fresh instance".into(),
        instances("fresh instance + open + get", component),
        instances("fresh instance (instantiate, preopen, drop)", component),
        2.5,
    );
    ratio(
        &mut out,
        "fresh instance + open + get ≤ 2.5× native open + get".into(),
        instances("fresh instance + open + get", component),
        instances("open + get", native),
        2.5,
    );
    ratio(
        &mut out,
        "warm host start ≤ 0.1× cold".into(),
        results.get("host", "host start, warm (precompiled)", component),
        results.get("host", "host start, cold (compile)", component),
        0.1,
    );
    for artifact in &results.artifacts {
        out.push((
            format!("{} ≤ 600 KB (KB)", artifact.name),
            artifact.bytes as f64 / 1000.0,
            600.0,
        ));
    }
    let s = |scale: &str, phase: &str| results.get("scale", phase, scale);
    for phase in ["get hit", "insert"] {
        ratio(
            &mut out,
            format!("scale: {phase} at 1M ≤ 1.2× at 10k"),
            s("1M entries", phase),
            s("10k entries", phase),
            1.2,
        );
    }
    for scale in ["10k entries", "100k entries", "1M entries"] {
        ratio(
            &mut out,
            format!("scale {scale}: bounded insert below capacity ≤ 1.2× unbounded insert"),
            s(scale, "insert, bounded, below capacity"),
            s(scale, "insert, unbounded (same rounds)"),
            1.2,
        );
        for (victim, floor, floor_swept) in [
            ("an old file", scale::OLD_FLOOR, scale::OLD_FLOOR_SWEPT),
            ("a just-written file", scale::FLOOR, scale::FLOOR_SWEPT),
        ] {
            ratio(
                &mut out,
                format!("scale {scale}: evicting insert ≤ 1.25× (insert + unlink of {victim})"),
                s(scale, "insert, bounded, at capacity (evicting)"),
                s(scale, floor),
                1.25,
            );
            ratio(
                &mut out,
                format!(
                    "scale {scale}: evicting insert, swept handle ≤ 1.25× (insert + unlink of {victim})"
                ),
                s(
                    scale,
                    "insert, bounded, at capacity (evicting), swept handle",
                ),
                s(scale, floor_swept),
                1.25,
            );
        }
    }
    ratio(
        &mut out,
        "scale: clear of 100k ≤ 2× rm -rf".into(),
        s("100k entries", "clear (per entry)"),
        s("100k entries", "rm -rf of the same tree (per entry)"),
        2.0,
    );
    out
}

/// A horizontal bar chart of µs/op (log scale) per phase and system, one panel
/// per value size.
pub fn svg(results: &Results) -> String {
    const COLORS: [&str; 4] = ["#888888", "#1f77b4", "#ff7f0e", "#2ca02c"];
    const LEFT: f64 = 150.0;
    const WIDTH: f64 = 620.0;
    const BAR: f64 = 9.0;
    let (lo, hi) = (1.0f64, 10_000.0f64);
    let x = |us: f64| {
        LEFT + WIDTH * ((us.clamp(lo, hi)).log10() - lo.log10()) / (hi.log10() - lo.log10())
    };
    let mut body = String::new();
    let mut y = 40.0;
    for group in ["100 B", "4096 B"] {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">{group} values (µs/op, log scale)</text>"#
        );
        y += 12.0;
        for phase in PHASES {
            let top = y;
            for (i, kind) in Kind::ALL.iter().enumerate() {
                if let Some(us) = results.get(group, phase, kind.name()) {
                    let _ = writeln!(
                        body,
                        r#"<rect x="{LEFT}" y="{y}" width="{:.1}" height="{BAR}" fill="{}"><title>{} {phase}: {us:.1} µs</title></rect><text x="{:.1}" y="{:.1}" font-size="8">{us:.1}</text>"#,
                        x(us) - LEFT,
                        COLORS[i],
                        kind.name(),
                        x(us) + 3.0,
                        y + BAR - 1.0
                    );
                }
                y += BAR + 1.0;
            }
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{phase}</text>"#,
                LEFT - 6.0,
                (top + y) / 2.0 + 3.0
            );
            y += 6.0;
        }
        for tick in [1.0, 10.0, 100.0, 1000.0, 10_000.0] {
            let _ = writeln!(
                body,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#ccc"/><text x="{0:.1}" y="{3:.1}" font-size="9" text-anchor="middle">{tick}</text>"##,
                x(tick),
                y - 2.0,
                y + 2.0,
                y + 12.0
            );
        }
        y += 30.0;
    }
    let mut legend = String::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let lx = 10.0 + 200.0 * i as f64;
        let _ = write!(
            legend,
            r#"<rect x="{lx}" y="8" width="10" height="10" fill="{}"/><text x="{:.0}" y="17" font-size="11">{}</text>"#,
            COLORS[i],
            lx + 14.0,
            kind.name()
        );
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{y:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{legend}\n{body}</svg>\n",
        LEFT + WIDTH + 60.0
    )
}
