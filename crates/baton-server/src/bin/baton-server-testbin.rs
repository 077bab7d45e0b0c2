//! Minimal server process for crash tests: `baton-server-testbin DATA_DIR [ADDR]`.
//! Prints `ADDR TOKEN` (the `local` account's token) on one line, then serves
//! without mirroring any local sessions.

use std::io::Write;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: baton-server-testbin DATA_DIR [ADDR]");
        return std::process::ExitCode::from(2);
    };
    let mut config = baton_server::ServerConfig::new(dir.into());
    config.listen = match args.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: bad address: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let server = match baton_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    println!("{} {}", server.addr, server.local_token);
    let _ = std::io::stdout().flush();
    match server.wait().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
