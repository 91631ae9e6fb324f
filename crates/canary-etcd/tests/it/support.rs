//! A real etcd for the tests: members started on reserved loopback ports in
//! a temporary directory, waited for with a deadline, killed on drop.

use canary_etcd::{Client, ConnectOptions};
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

/// A loopback port kept for the test while the socket lives: bound with
/// SO_REUSEADDR but not listening, so connections to it are refused and no
/// other test is given it, while etcd (which sets SO_REUSEADDR too) can
/// listen there.
pub fn reserved() -> (u16, TcpSocket) {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (s.local_addr().unwrap().port(), s)
}

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
    _ports: [TcpSocket; 2],
}

/// One etcd member, or a cluster of several.
pub struct Etcd {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl Etcd {
    /// One member, answering.
    pub async fn start() -> Etcd {
        Etcd::cluster(1).await
    }

    /// `n` members forming one cluster, each answering.
    pub async fn cluster(n: usize) -> Etcd {
        let members = (0..n)
            .map(|i| {
                let ((client, c), (peer, p)) = (reserved(), reserved());
                Member { name: format!("m{i}"), client, peer, child: None, _ports: [c, p] }
            })
            .collect();
        let mut etcd = Etcd { dir: tempfile::tempdir().unwrap(), members };
        for i in 0..n {
            etcd.spawn(i);
        }
        for i in 0..n {
            etcd.wait_answering(i).await;
        }
        etcd
    }

    fn spawn(&mut self, i: usize) {
        let peers: Vec<String> =
            self.members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect();
        let m = &self.members[i];
        let (client, peer) =
            (format!("http://127.0.0.1:{}", m.client), format!("http://127.0.0.1:{}", m.peer));
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name))).unwrap();
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &peers.join(","), "--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "100", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("these tests run etcd: apt-get install etcd-server");
        self.members[i].child = Some(child);
    }

    async fn wait_answering(&self, i: usize) {
        let c = client(&[self.url(i)], Duration::from_millis(500)).await;
        let answered =
            eventually(Duration::from_secs(30), || async { c.get("ready", None).await.is_ok() }).await;
        assert!(answered, "etcd member {i} did not answer within 30 s");
    }

    /// Member `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client)
    }

    /// kill -9 member `i`, and wait for it to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A client of every member, 2 s per try.
    pub async fn client(&self) -> Client {
        let urls: Vec<String> = (0..self.members.len()).map(|i| self.url(i)).collect();
        client(&urls, Duration::from_secs(2)).await
    }

    /// Runs etcdctl against member 0.
    pub fn etcdctl(&self, args: &[&str]) {
        let ok = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url(0)])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "etcdctl {args:?}");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A client of `urls` with `per_try` as its per-try timeout.
pub async fn client(urls: &[String], per_try: Duration) -> Client {
    let opts = ConnectOptions::new().with_connect_timeout(per_try).with_timeout(per_try);
    Client::connect(urls, Some(opts)).await.unwrap()
}

/// Polls `check` every 50 ms until it holds or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
