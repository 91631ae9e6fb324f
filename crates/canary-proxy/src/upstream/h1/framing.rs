//! How an upstream response's body is delimited (RFC 9112 section 6.3), and
//! the decoder that cuts it out of the bytes read so far. Pure: bytes in,
//! body pieces out, no I/O, so every framing rule is tested on its own.
//!
//! A chunked body's trailer fields are handed on (an HTTP/2 client, a gRPC
//! one say, gets them as trailers), except those about framing or the
//! connection, which mean nothing past this hop.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// A chunk-size or trailer line longer than this is refused: no real
/// upstream sends one, and a bound keeps a broken one from growing memory.
const MAX_LINE: usize = 4096;
/// Trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// The body's framing and how much of it is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes remain (`Content-Length`, or 0 for HEAD, 204, 304).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// The next piece of a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields after the last chunk (only when there are some).
    Trailers(HeaderMap),
    /// More bytes must be read first.
    NeedMore,
    /// The body is complete; any bytes left in the buffer are not part of it.
    Done,
}

/// A malformed body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed chunked body: {0}")]
pub struct FramingError(pub &'static str);

impl Framing {
    /// Takes the next piece of the body out of `buf`.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Piece, FramingError> {
        match self {
            Framing::Length(0) => Ok(Piece::Done),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Piece::NeedMore);
                }
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                Ok(Piece::Data(buf.split_to(n).freeze()))
            }
            Framing::Chunked(c) => c.next(buf),
            Framing::UntilClose if buf.is_empty() => Ok(Piece::NeedMore),
            Framing::UntilClose => Ok(Piece::Data(buf.split().freeze())),
        }
    }

    /// The exact length left, when the framing says it.
    pub fn exact_len(&self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(*n),
            _ => None,
        }
    }
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// Complete.
    Done,
}

impl Chunked {
    fn next(&mut self, buf: &mut BytesMut) -> Result<Piece, FramingError> {
        loop {
            match *self {
                Chunked::Size => match take_line(buf)? {
                    None => return Ok(Piece::NeedMore),
                    Some(line) => {
                        let size = chunk_size(&line)?;
                        *self = if size == 0 { Chunked::Trailers } else { Chunked::Data(size) };
                    }
                },
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Piece::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    *self = if n as u64 == left { Chunked::DataEnd } else { Chunked::Data(left - n as u64) };
                    return Ok(Piece::Data(buf.split_to(n).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Piece::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(FramingError("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => match trailer_section_end(buf)? {
                    None => return Ok(Piece::NeedMore),
                    Some(end) => {
                        let section = buf.split_to(end);
                        *self = Chunked::Done;
                        let fields = trailer_fields(&section);
                        if !fields.is_empty() {
                            return Ok(Piece::Trailers(fields));
                        }
                    }
                },
                Chunked::Done => return Ok(Piece::Done),
            }
        }
    }
}

/// The next CRLF-terminated line (without the CRLF), or `None` if incomplete.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
    match buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') {
        Some(i) if i >= 1 && buf[i - 1] == b'\r' => {
            let line = buf.split_to(i - 1).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        Some(_) => Err(FramingError("line ends with a bare LF")),
        None if buf.len() > MAX_LINE => Err(FramingError("chunk-size or trailer line too long")),
        None => Ok(None),
    }
}

/// Where the trailer section (its lines and the empty line that ends it)
/// ends in `buf`, once it is all there. Usually the section is just the
/// empty line, found at once.
fn trailer_section_end(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate().take(MAX_TRAILERS + 2) {
        if b != b'\n' {
            continue;
        }
        if i == 0 || buf[i - 1] != b'\r' {
            return Err(FramingError("line ends with a bare LF"));
        }
        if i - 1 == line_start {
            return Ok(Some(i + 1));
        }
        line_start = i + 1;
    }
    if buf.len() > MAX_TRAILERS {
        return Err(FramingError("trailers too large"));
    }
    Ok(None)
}

/// The fields of a complete trailer section. Fields that do not parse are
/// left out rather than failing a body that was delivered whole (trailers
/// were dropped altogether before they were passed on).
fn trailer_fields(section: &[u8]) -> HeaderMap {
    let mut slots = [httparse::EMPTY_HEADER; super::MAX_HEADERS];
    let mut out = HeaderMap::new();
    let Ok(httparse::Status::Complete((_, fields))) = httparse::parse_headers(section, &mut slots) else {
        return out;
    };
    for f in fields.iter() {
        let Ok(name) = HeaderName::from_bytes(f.name.as_bytes()) else { continue };
        if let Ok(value) = HeaderValue::from_bytes(f.value) {
            out.append(name, value);
        }
    }
    crate::headers::strip_trailer_fields(&mut out);
    out
}

/// The hex size at the start of a chunk-size line; extensions are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii_end();
    if digits.is_empty() {
        return Err(FramingError("empty chunk size"));
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16).ok_or(FramingError("chunk size is not hexadecimal"))?;
        acc.checked_mul(16)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(FramingError("chunk size overflows"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; returns the body and what is left.
    fn decode(f: Framing, wire: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), FramingError> {
        decode_all(f, wire, step).map(|(body, rest, _)| (body, rest))
    }

    /// A decoded body, what was left after it, and its trailers.
    type Decoded = (Vec<u8>, Vec<u8>, Option<HeaderMap>);

    /// As [`decode`], with the trailers too.
    fn decode_all(mut f: Framing, wire: &[u8], step: usize) -> Result<Decoded, FramingError> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut trailers = None;
        let mut fed = 0;
        loop {
            match f.next(&mut buf)? {
                Piece::Data(d) => out.extend_from_slice(&d),
                Piece::Trailers(t) => trailers = Some(t),
                Piece::Done => return Ok((out, buf.to_vec(), trailers)),
                Piece::NeedMore if fed >= wire.len() => return Err(FramingError("ran out")),
                Piece::NeedMore => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn length_stops_at_its_end_and_leaves_the_rest() {
        for step in 1..11 {
            let (body, rest) = decode(Framing::Length(5), b"hello world", step).unwrap();
            assert_eq!(body, b"hello", "step {step}");
            assert!(b" world".starts_with(&rest), "step {step}: {rest:?}");
        }
    }

    #[test]
    fn chunked_decodes_in_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (body, rest) = decode(Framing::Chunked(Chunked::default()), wire, step).unwrap();
            assert_eq!(body, b"hello world", "step {step}");
            assert!(b"NEXT".starts_with(&rest), "step {step}: {rest:?}");
        }
    }

    #[test]
    fn trailers_are_passed_on_in_any_split_but_not_framing_ones() {
        let wire = b"2\r\nhi\r\n0\r\nx-sum: 1\r\ngrpc-status: 0\r\ncontent-length: 9\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (body, rest, t) = decode_all(Framing::Chunked(Chunked::default()), wire, step).unwrap();
            assert_eq!(body, b"hi", "step {step}");
            assert!(b"NEXT".starts_with(&rest), "step {step}: {rest:?}");
            let t = t.expect("trailers");
            assert_eq!((t["x-sum"].as_bytes(), t["grpc-status"].as_bytes()), (&b"1"[..], &b"0"[..]));
            assert!(!t.contains_key("content-length"));
        }
        let (_, _, t) = decode_all(Framing::Chunked(Chunked::default()), b"0\r\n\r\n", 1).unwrap();
        assert!(t.is_none(), "no trailer section, no trailers");
        let bare = decode(Framing::Chunked(Chunked::default()), b"0\r\nx: 1\n\r\n", 64);
        assert_eq!(bare, Err(FramingError("line ends with a bare LF")));
        let mut huge = b"0\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_TRAILERS + 10));
        assert_eq!(
            decode(Framing::Chunked(Chunked::default()), &huge, 4096),
            Err(FramingError("trailers too large"))
        );
    }

    #[test]
    fn chunked_sizes_are_hex_and_bounded() {
        let (body, _) =
            decode(Framing::Chunked(Chunked::default()), b"A \r\n0123456789\r\n0\r\n\r\n", 64).unwrap();
        assert_eq!(body.len(), 10);
        for bad in [&b"zz\r\n"[..], b"\r\n", b"11111111111111111\r\n", b"5\nhello"] {
            assert!(decode(Framing::Chunked(Chunked::default()), bad, 64).is_err(), "{bad:?}");
        }
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(decode(Framing::Chunked(Chunked::default()), &long, 64).is_err());
    }

    #[test]
    fn chunk_without_its_crlf_is_refused() {
        let r = decode(Framing::Chunked(Chunked::default()), b"2\r\nabXY0\r\n\r\n", 64);
        assert_eq!(r, Err(FramingError("chunk data not followed by CRLF")));
    }

    #[test]
    fn until_close_passes_everything() {
        let mut f = Framing::UntilClose;
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert_eq!(f.next(&mut buf), Ok(Piece::Data(Bytes::from_static(b"abc"))));
        assert_eq!(f.next(&mut buf), Ok(Piece::NeedMore));
    }
}
