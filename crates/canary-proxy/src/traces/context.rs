//! W3C trace context (`traceparent`) as the proxy reads and makes it: a
//! request that brings one keeps it (it is passed on unchanged, and the
//! proxy's span is its child); one without is given one when configured,
//! whose parent is the proxy's own span, so the upstream's spans hang
//! under it.

/// A request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace.
    pub trace_id: [u8; 16],
    /// The span that sent the request (the client's), if it named one.
    pub parent: Option<[u8; 8]>,
    /// The proxy's span for the request.
    pub span_id: [u8; 8],
    /// Whether the span is recorded and exported.
    pub sampled: bool,
    /// Whether the proxy made the trace (the upstream is sent it).
    pub made: bool,
}

impl TraceContext {
    /// The `traceparent` the upstream is sent for a trace the proxy made:
    /// `00-<trace>-<the proxy's span>-<flags>`.
    pub fn header(&self) -> [u8; 55] {
        let mut h = [0u8; 55];
        h[..3].copy_from_slice(b"00-");
        hex_into(&mut h[3..35], &self.trace_id);
        h[35] = b'-';
        hex_into(&mut h[36..52], &self.span_id);
        h[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        h
    }
}

/// A `traceparent` value: trace id, parent span id and flags; `None` for
/// one that is malformed or names the all-zero ids (W3C: then ignored).
pub fn parse(v: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    // Version 00 is exactly 55 bytes; a later version may append fields.
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let version = byte(&v[..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) {
        return None;
    }
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    for (i, b) in trace.iter_mut().enumerate() {
        *b = byte(&v[3 + 2 * i..5 + 2 * i])?;
    }
    for (i, b) in span.iter_mut().enumerate() {
        *b = byte(&v[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = byte(&v[53..55])?;
    (trace != [0; 16] && span != [0; 8]).then_some((trace, span, flags))
}

/// Two lowercase hex digits (W3C allows no uppercase).
fn byte(d: &[u8]) -> Option<u8> {
    let n = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(n(d[0])? << 4 | n(d[1])?)
}

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_is_read_and_nonsense_is_not() {
        let (trace, span, flags) = parse(SAMPLE).unwrap();
        assert_eq!(trace[0], 0x4b);
        assert_eq!(span, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(flags, 1);
        for bad in [
            &b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736",
        ] {
            assert!(parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future").is_some());
    }

    #[test]
    fn a_made_header_reads_back() {
        let t = TraceContext { trace_id: [7; 16], parent: None, span_id: [9; 8], sampled: true, made: true };
        let h = t.header();
        assert_eq!(parse(&h), Some(([7; 16], [9; 8], 1)));
    }
}
