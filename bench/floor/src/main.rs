//! `floor`: the cheapest proxy this machine can run, to bound what any HTTP
//! proxy can reach here. It does no HTTP at all: each client connection gets
//! its own upstream connection and the bytes are copied both ways, as they
//! come. Whatever a real proxy does (parse, route, measure, rewrite headers)
//! costs more than this, so `bench/run.sh`'s ratio of this relay to nginx is
//! the ceiling of canary's ratio on the same I/O layer.
//!
//! `floor MODE LISTEN UPSTREAM`, one thread, where MODE is
//! - `epoll`: tokio's current-thread runtime (epoll, readiness), the I/O layer
//!   canary's proxy runs on, copying with `tokio::io::copy_bidirectional`;
//! - `uring`: monoio's io_uring runtime (completions; reads and writes are
//!   submitted in batches and reaped together), copying each direction with
//!   `monoio::io::copy`;
//! - `uring-defer`: the same with the ring set up to run completion work only
//!   when the thread asks for completions (`IORING_SETUP_DEFER_TASKRUN`,
//!   `SINGLE_ISSUER`, `COOP_TASKRUN`), rather than by interrupting it.
//!
//! It prints `floor: listening on ADDR` once it accepts connections.

use std::net::SocketAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, listen, upstream] = args.as_slice() else {
        eprintln!(
            "usage: floor epoll|uring|uring-defer LISTEN_ADDR UPSTREAM_ADDR (e.g. floor uring 127.0.0.1:8080 127.0.0.1:9000)"
        );
        return ExitCode::from(2);
    };
    let (listen, upstream) = match (listen.parse::<SocketAddr>(), upstream.parse::<SocketAddr>()) {
        (Ok(l), Ok(u)) => (l, u),
        _ => {
            eprintln!(
                "floor: LISTEN_ADDR and UPSTREAM_ADDR must be IP:PORT, got '{listen}' and '{upstream}'"
            );
            return ExitCode::from(2);
        }
    };
    let run = match mode.as_str() {
        "epoll" => epoll::run(listen, upstream),
        "uring" => uring::run(listen, upstream, false),
        "uring-defer" => uring::run(listen, upstream, true),
        other => {
            eprintln!("floor: MODE must be epoll, uring or uring-defer, got '{other}'");
            return ExitCode::from(2);
        }
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The relay on tokio's epoll-driven current-thread runtime.
mod epoll {
    use std::io;
    use std::net::SocketAddr;
    use tokio::net::{TcpListener, TcpStream};

    pub fn run(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        rt.block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            println!("floor: listening on {}", listener.local_addr()?);
            loop {
                let (client, _) = listener.accept().await?;
                tokio::spawn(async move {
                    // A connection that fails ends; the benchmark counts its errors.
                    let _ = relay(client, upstream).await;
                });
            }
        })
    }

    async fn relay(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
        client.set_nodelay(true)?;
        let mut up = TcpStream::connect(upstream).await?;
        up.set_nodelay(true)?;
        tokio::io::copy_bidirectional(&mut client, &mut up).await?;
        Ok(())
    }
}

/// The relay on monoio's io_uring runtime.
mod uring {
    use monoio::io::Splitable;
    use monoio::net::{TcpListener, TcpStream};
    use std::io;
    use std::net::SocketAddr;

    pub fn run(listen: SocketAddr, upstream: SocketAddr, defer: bool) -> io::Result<()> {
        let mut ring = io_uring::IoUring::builder();
        if defer {
            ring.setup_coop_taskrun().setup_single_issuer().setup_defer_taskrun();
        }
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .uring_builder(ring)
            .build()?;
        rt.block_on(async move {
            let listener = TcpListener::bind(listen)?;
            println!("floor: listening on {}", listener.local_addr()?);
            loop {
                let (client, _) = listener.accept().await?;
                monoio::spawn(async move {
                    // A connection that fails ends; the benchmark counts its errors.
                    let _ = relay(client, upstream).await;
                });
            }
        })
    }

    async fn relay(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
        client.set_nodelay(true)?;
        let up = TcpStream::connect_addr(upstream).await?;
        up.set_nodelay(true)?;
        let (mut client_r, mut client_w) = client.into_split();
        let (mut up_r, mut up_w) = up.into_split();
        let (a, b) = monoio::join!(
            monoio::io::copy(&mut client_r, &mut up_w),
            monoio::io::copy(&mut up_r, &mut client_w)
        );
        a?;
        b?;
        Ok(())
    }
}
