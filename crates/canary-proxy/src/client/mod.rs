//! The client side: how requests are read from clients and answers written
//! back.
//!
//! # Layout
//! - [`h1_fast`]: plain HTTP/1.1 connections, read and written by the
//!   proxy's own code; a request it does not serve itself (a body, an
//!   upgrade, HTTP/1.0 oddities) is handed to hyper with the bytes read so far.
//! - [`hyper`]: hyper's server, for TLS, HTTP/2 and what `h1_fast` hands over.

pub mod h1_fast;
pub mod hyper;
