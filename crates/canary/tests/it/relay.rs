//! A TCP relay the tests control, put between a replica and etcd to break
//! their link the ways a network does, without killing either side:
//!
//! - [`Mode::Pass`]: bytes go through as they come.
//! - [`Mode::Blackhole`]: a cut that closes nothing: bytes are read and
//!   dropped both ways, connections stay open, new ones are accepted and
//!   never forwarded. Each side notices only through its own timeouts, as
//!   with a partition. A connection that lost bytes to a cut stays cut after
//!   the heal (its stream has a gap no endpoint could resume); its
//!   endpoints give it up on their timeouts and open new ones, which pass.
//! - [`Mode::Reset`]: open connections are reset (SO_LINGER 0, so the
//!   close is an RST both ways) and new ones are reset as soon as accepted.
//! - [`Mode::Delay`]: every chunk is held for the given time, then sent, in
//!   order (a slow link, not a gone one).
//!
//! The relay runs on its own runtime and thread, so a test body that blocks
//! (a CLI run, a process start) never stalls the link it is testing.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the relay does with the bytes, set at any time with [`Relay::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Reset,
    Delay(Duration),
}

/// A relay on a loopback port to `target`; stopped (every connection reset)
/// when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// Listens on a free loopback port and forwards to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-relay")
            .enable_all()
            .build()
            .unwrap();
        // Bound here, registered on the relay's runtime: the caller may be
        // inside another runtime, where `block_on` is not allowed.
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let listener = {
            let _in = rt.enter();
            TcpListener::from_std(std).unwrap()
        };
        let (mode, rx) = watch::channel(Mode::Pass);
        rt.spawn(accept(listener, target, rx));
        Relay { addr, mode, rt: Some(rt) }
    }

    /// The relay as an `--etcd` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the mode; open connections follow at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Reset);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        let _ = client.set_nodelay(true);
        if *mode.borrow() == Mode::Reset {
            reset(&client);
            continue;
        }
        tokio::spawn(connection(client, target, mode.clone()));
    }
}

/// Makes the socket's close an RST rather than a FIN.
fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// One client connection, forwarded to `target` until either side ends or
/// the relay resets it.
async fn connection(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A second descriptor of each socket, kept here: the halves are moved
    // into the pumps, and a reset must set SO_LINGER 0 before the last
    // descriptor closes (socket options belong to the socket, not the fd).
    let mut fds: Vec<OwnedFd> = client.as_fd().try_clone_to_owned().into_iter().collect();
    let cut = Arc::new(AtomicBool::new(false));
    let mut pumps = JoinSet::new();
    let (cr, cw) = client.into_split();
    if *mode.borrow() == Mode::Blackhole {
        // Accepted, never forwarded: what the client sends is dropped.
        cut.store(true, Ordering::SeqCst);
        pumps.spawn(drain(cr, cw));
    } else {
        let Ok(upstream) = TcpStream::connect(target).await else {
            drop(fds);
            return reset(&cr.reunite(cw).unwrap());
        };
        let _ = upstream.set_nodelay(true);
        fds.extend(upstream.as_fd().try_clone_to_owned());
        let (ur, uw) = upstream.into_split();
        for (r, w) in [(cr, uw), (ur, cw)] {
            let (tx, rx) = mpsc::unbounded_channel();
            pumps.spawn(read(r, tx, mode.clone(), Arc::clone(&cut)));
            pumps.spawn(write(w, rx, Arc::clone(&cut)));
        }
    }
    loop {
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Reset {
                    for fd in &fds {
                        let _ = socket2::SockRef::from(fd).set_linger(Some(Duration::ZERO));
                    }
                    // Aborting the pumps drops the halves; `fds` go last,
                    // and with them the sockets, as RSTs.
                    pumps.shutdown().await;
                    return;
                }
            }
            done = pumps.join_next() => if done.is_none() { return },
        }
    }
}

/// Reads and drops what a never-forwarded connection sends, until it closes.
/// The write half is held so the client's side stays open.
async fn drain(mut r: OwnedReadHalf, _w: OwnedWriteHalf) {
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A chunk read, due to be written at its instant; `None`: the end of the stream.
type Due = (Instant, Option<Vec<u8>>);

/// Reads one direction and queues each chunk for its time, or drops it
/// while the relay blackholes (and, once cut, for good).
async fn read(
    mut r: OwnedReadHalf,
    tx: mpsc::UnboundedSender<Due>,
    mode: watch::Receiver<Mode>,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut last = Instant::now();
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        let m = *mode.borrow();
        if m == Mode::Blackhole {
            cut.store(true, Ordering::SeqCst);
        }
        if cut.load(Ordering::SeqCst) {
            // The end of a cut stream is dropped too: the other side is never told.
            if n == 0 {
                return;
            }
            continue;
        }
        let delay = if let Mode::Delay(d) = m { d } else { Duration::ZERO };
        // Never before an earlier chunk: a delay lifted does not reorder.
        last = last.max(Instant::now() + delay);
        let chunk = (n > 0).then(|| buf[..n].to_vec());
        if tx.send((last, chunk)).is_err() || n == 0 {
            return;
        }
    }
}

/// Writes one direction's chunks when they are due; a cut drops them.
async fn write(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Due>, cut: Arc<AtomicBool>) {
    while let Some((at, chunk)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        if cut.load(Ordering::SeqCst) {
            continue;
        }
        match chunk {
            Some(bytes) => {
                if w.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            None => {
                let _ = w.shutdown().await;
                return;
            }
        }
    }
}
