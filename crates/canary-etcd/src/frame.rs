//! Splits a streamed answer into its JSON messages. The gateway writes one
//! JSON object per message, each followed by a newline; HTTP chunks need not
//! fall on message boundaries, so bytes are gathered until a whole object
//! has arrived. Separators are not relied on: any whitespace, or none, will do.

use serde::de::DeserializeOwned;

/// Bytes received and not yet read as a message.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Adds received bytes.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole message, if one has arrived; an error when the bytes
    /// cannot be the start of a JSON message of type `T`.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, serde_json::Error> {
        let mut messages = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
        match messages.next() {
            Some(Ok(message)) => {
                let used = messages.byte_offset();
                self.buf.drain(..used);
                Ok(Some(message))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => Err(e),
            None => {
                // Only whitespace so far.
                self.buf.clear();
                Ok(None)
            }
        }
    }

    /// Whether part of a message is waiting for the rest.
    pub(crate) fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn all(f: &mut Frames) -> Vec<Value> {
        std::iter::from_fn(|| f.next::<Value>().unwrap()).collect()
    }

    #[test]
    fn messages_split_anywhere_come_out_whole_and_in_order() {
        let stream =
            b"{\"result\":{\"created\":true}}\n{\"result\":{\"events\":[{\"kv\":{\"key\":\"eA==\"}}]}}\n";
        for cut in 0..stream.len() {
            let mut f = Frames::default();
            f.push(&stream[..cut]);
            let mut got = all(&mut f);
            f.push(&stream[cut..]);
            got.extend(all(&mut f));
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0], json!({"result": {"created": true}}));
            assert_eq!(got[1]["result"]["events"][0]["kv"]["key"], "eA==");
            assert!(!f.has_partial());
        }
    }

    #[test]
    fn messages_without_separators_are_read_too() {
        let mut f = Frames::default();
        f.push(b"{\"a\":1}{\"a\":2} \r\n {\"a\"");
        assert_eq!(all(&mut f), vec![json!({"a": 1}), json!({"a": 2})]);
        assert!(f.has_partial());
        f.push(b":3}");
        assert_eq!(all(&mut f), vec![json!({"a": 3})]);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut f = Frames::default();
        f.push(b"<html>");
        assert!(f.next::<Value>().is_err());
    }
}
