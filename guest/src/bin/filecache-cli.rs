//! `filecache-cli`: the cache from the command line (native, or as a `wasi:cli/run`
//! component under `wasmtime run`). See `filecache::cli`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut streams = filecache::cli::Streams {
        stdin: std::io::stdin().lock(),
        stdout: std::io::stdout().lock(),
        stderr: std::io::stderr().lock(),
    };
    let code = filecache::cli::run(&args, &mut streams);
    drop(streams);
    std::process::exit(code);
}
