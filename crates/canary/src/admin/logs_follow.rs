//! `GET /api/v2/logs?follow=true`: the request log as it grows, as
//! server-sent events: first the records the query's `since` reaches back
//! to (none without one), then each new record within a quarter second of
//! being kept. Each is a `record` event whose data is the record's JSON; a
//! `notice` event says when records were left out (more than the query's
//! limit came in one look).
//!
//! Every look reads the last [`LOOKBACK`] again and shows only what it has
//! not shown: records of several workers (and replicas) are not kept in
//! the order of their times, so reading on from the last time shown would
//! miss one kept a moment late.

use super::AdminState;
use super::logs::{Asked, MAX_LIMIT, gather};
use axum::response::sse::{Event, KeepAlive, Sse};
use canary_core::time::UnixMs;
use canary_proxy::requests::Record;
use futures_util::Stream;
use futures_util::stream;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

/// How often the log is looked at.
const EVERY: Duration = Duration::from_millis(250);

/// How far back each look reads again.
const LOOKBACK_MS: u64 = 5_000;

/// A follower's place in the log.
struct Follow {
    s: AdminState,
    asked: Asked,
    /// Records shown, by replica and number, with their time (to forget them).
    shown: HashMap<(Option<String>, u64), UnixMs>,
    /// Events found at the last look, not yet sent.
    pending: VecDeque<Event>,
    first: bool,
}

/// The stream of events for `asked`.
pub fn stream(s: AdminState, asked: Asked) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let f = Follow { s, asked, shown: HashMap::new(), pending: VecDeque::new(), first: true };
    let events = stream::unfold(f, |mut f| async move {
        loop {
            if let Some(e) = f.pending.pop_front() {
                return Some((Ok(e), f));
            }
            if !f.first {
                tokio::time::sleep(EVERY).await;
            }
            f.look().await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

impl Follow {
    async fn look(&mut self) {
        let now = UnixMs::from(SystemTime::now());
        let recent = UnixMs::from_millis(now.as_millis().saturating_sub(LOOKBACK_MS));
        let mut asked = self.asked.clone();
        // The first look reaches back to `since` (without one, it starts
        // now: nothing old is shown), as many as the query's limit; the
        // others read the last few seconds whole, and the limit applies to
        // what they find that was not shown yet.
        let from = *self.asked.filter.since.get_or_insert(now);
        asked.filter.since = Some(if self.first { from } else { from.max(recent) });
        if !self.first {
            asked.limit = MAX_LIMIT;
        }
        let (found, _) = gather(&self.s, &asked).await;
        let fresh: Vec<Record> = found.records.into_iter().filter(|r| !self.seen(r)).collect();
        let over = fresh.len().saturating_sub(self.asked.limit);
        // The first look's older records left out; later, past MAX_LIMIT
        // in a few seconds, records cut unread.
        let cut = over as u64 + found.truncated;
        self.first = false;
        if cut > 0 {
            let note = serde_json::json!({"truncated": cut, "limit": self.asked.limit});
            self.pending.push_back(Event::default().event("notice").data(note.to_string()));
        }
        for r in fresh.into_iter().skip(over) {
            self.show(r);
        }
        self.shown.retain(|_, t| *t >= UnixMs::from_millis(recent.as_millis().saturating_sub(LOOKBACK_MS)));
    }

    /// Whether `r` was shown already.
    fn seen(&self, r: &Record) -> bool {
        self.shown.contains_key(&(r.replica.clone(), r.seq))
    }

    fn show(&mut self, r: Record) {
        let key = (r.replica.clone(), r.seq);
        if self.shown.insert(key, r.time_ms).is_some() {
            return;
        }
        if let Ok(data) = serde_json::to_string(&r) {
            self.pending.push_back(Event::default().event("record").data(data));
        }
    }
}
