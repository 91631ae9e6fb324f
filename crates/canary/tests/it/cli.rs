//! The command line's contract: every refusal exits with its documented code
//! and says which input is wrong, on stderr.

use crate::support::*;

#[test]
fn every_bad_input_exits_2_and_names_the_input() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let admin = format!("http://{closed}");
    let cases: [(&[&str], &str); 7] = [
        (&["monitor", "soon"], "`soon` is not a number"),
        (&["monitor", "http://127.0.0.1:1", "0"], "minutes `0`"),
        (&["monitor", "1", "--interval", "0"], "--interval 0"),
        (&["health", "http://127.0.0.1:1", "--timeout", "0"], "--timeout 0"),
        (&["adjust", "150", "--admin", &admin], "150"),
        (&["flags", "frobnicate", "--admin", &admin], "`frobnicate`"),
        (&["demo-service", "--error-rate", "200"], "--error-rate 200"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = cli(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}: {err}");
    }
}

#[test]
fn an_unreachable_admin_api_exits_1_and_says_where_it_looked() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let admin = format!("http://{closed}");
    for args in [["status", "--admin", &admin], ["history", "--admin", &admin]] {
        let (code, _, err) = cli(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("cannot reach the admin API") && err.contains(&admin), "{args:?}: {err}");
    }
}
