//! One HTTP/1.1 exchange on a keep-alive connection: the request written,
//! the whole response read, however it is framed.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head and body read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 << 20;

pub(crate) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    s.read_buf(buf).await
}

async fn fill_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    match fill(s, buf).await? {
        0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the response ended")),
        _ => Ok(()),
    }
}

/// How the body of a response is delimited.
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Sends one request and reads its whole response: its status, and whether the
/// connection can carry another request.
pub(crate) async fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> io::Result<(u16, bool)> {
    s.write_all(request).await?;
    buf.clear();
    let (status, head_len, framing, mut keep) = loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut keep = resp.version == Some(1);
                    let mut length = None;
                    let mut chunked = false;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .ok_or_else(|| invalid("bad Content-Length"))?;
                            length = Some(v);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = h.value.to_ascii_lowercase();
                            if v.windows(5).any(|w| w == b"close") {
                                keep = false;
                            } else if v.windows(10).any(|w| w == b"keep-alive") {
                                keep = true;
                            }
                        }
                    }
                    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
                        Framing::None
                    } else if chunked {
                        Framing::Chunked
                    } else if let Some(n) = length {
                        Framing::Length(n)
                    } else {
                        Framing::UntilClose
                    };
                    Some((status, n, framing, keep))
                }
                Ok(httparse::Status::Partial) => None,
                Err(e) => return Err(invalid(format!("bad response head: {e}"))),
            }
        };
        match parsed {
            // An interim answer (100 Continue and the like): the final one follows.
            Some((status, n, _, _)) if (100..200).contains(&status) && status != 101 => {
                buf.drain(..n);
            }
            Some(p) => break p,
            None if buf.len() > MAX_HEAD => return Err(invalid("response head too large")),
            None => fill_some(s, buf).await?,
        }
    };
    let end = match framing {
        Framing::None => head_len,
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(invalid(format!("body of {n} bytes is too large")));
            }
            while buf.len() < head_len + n {
                fill_some(s, buf).await?;
            }
            head_len + n
        }
        Framing::Chunked => read_chunked(s, buf, head_len).await?,
        Framing::UntilClose => {
            while fill(s, buf).await? > 0 {
                if buf.len() > head_len + MAX_BODY {
                    return Err(invalid("body too large"));
                }
            }
            keep = false;
            buf.len()
        }
    };
    if buf.len() > end {
        return Err(invalid("bytes after the response, before any request for them"));
    }
    Ok((status, keep))
}

/// Reads a chunked body that starts at `at`; returns where it ends.
async fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>, mut at: usize) -> io::Result<usize> {
    loop {
        if buf.len() > at + MAX_BODY {
            return Err(invalid("body too large"));
        }
        match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete((n, 0))) => {
                at += n;
                // Trailer lines, then an empty line.
                loop {
                    match buf[at..].windows(2).position(|w| w == b"\r\n") {
                        Some(0) => return Ok(at + 2),
                        Some(p) => at += p + 2,
                        None => fill_some(s, buf).await?,
                    }
                }
            }
            Ok(httparse::Status::Complete((n, size))) => {
                let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
                if size > MAX_BODY {
                    return Err(invalid("chunk too large"));
                }
                let chunk_end = at + n + size;
                while buf.len() < chunk_end + 2 {
                    fill_some(s, buf).await?;
                }
                if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
                    return Err(invalid("chunk not followed by CRLF"));
                }
                at = chunk_end + 2;
            }
            Ok(httparse::Status::Partial) => fill_some(s, buf).await?,
            Err(_) => return Err(invalid("bad chunk size")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reads_length_chunked_and_close_framed_answers() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1;x=y\r\n!\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
        ];
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for a in answers {
                let mut req = [0u8; 256];
                let _ = s.read(&mut req).await.unwrap();
                // In two pieces, to exercise the partial reads.
                let (x, y) = a.split_at(a.len() / 2);
                s.write_all(x).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(y).await.unwrap();
            }
        });
        let mut s = connect(addr).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf).await.unwrap(), (200, true));
        assert_eq!(exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf).await.unwrap(), (503, true));
        let write_then_read = exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n", &mut buf);
        let (status, keep) = tokio::time::timeout(Duration::from_secs(5), async {
            let r = write_then_read.await;
            server.await.unwrap();
            r
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!((status, keep), (200, false));
    }
}
