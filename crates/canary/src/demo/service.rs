//! `canary demo-service`: a small GamePlaza-style v2 API (game rooms and
//! reservations in SQLite) built on canary-probe, with fault knobs so a demo or
//! a test can make one version worse than the other: `--error-rate`,
//! `--extra-latency-ms`, `--fail-db`, and the `--version` it reports.

use crate::exit::{Exit, fail};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use canary_probe::{DbStatus, Probe};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// `canary demo-service`
#[derive(Debug, clap::Args)]
pub struct DemoServiceArgs {
    /// The version it reports.
    #[arg(long, default_value = "v1")]
    pub version: String,
    /// Where it listens (port 0 picks one; the first line printed says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: String,
    /// Percent of API requests answered 500.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Milliseconds added to every API request.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub extra_latency_ms: u64,
    /// Make the database check fail.
    #[arg(long)]
    pub fail_db: bool,
    /// The seed of --error-rate's draws: the same seed fails the same requests
    /// in the same order, so a run can be replayed [default: from the clock,
    /// printed on stderr at start].
    #[arg(long, value_name = "N", env = "CANARY_DEMO_SEED")]
    pub seed: Option<u64>,
}

/// The fault knobs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Percent of API requests answered 500.
    pub error_rate: f64,
    /// Added to every API request.
    pub extra_latency_ms: u64,
    /// The database check fails and database-backed endpoints answer 503.
    pub fail_db: bool,
    /// The seed of the error draws.
    pub seed: u64,
}

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Connection>>,
    faults: Faults,
    rng: Arc<AtomicU64>,
}

/// Builds the service's router.
pub fn router(version: &str, faults: Faults) -> rusqlite::Result<Router> {
    let db = Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL, game TEXT NOT NULL, capacity INTEGER NOT NULL);
         CREATE TABLE reservations (id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL REFERENCES rooms(id), user TEXT NOT NULL, slot TEXT NOT NULL);
         INSERT INTO rooms (name, game, capacity) VALUES
           ('Arcade 1', 'rhythm', 4), ('Arcade 2', 'racing', 2), ('Lounge', 'board games', 8),
           ('VR Booth', 'vr', 1), ('Party Room', 'karaoke', 12);",
    )?;
    // xorshift never leaves 0: any seed is made odd.
    let rng = Arc::new(AtomicU64::new(faults.seed | 1));
    let app = App { db: Arc::new(Mutex::new(db)), faults: faults.clone(), rng };
    let check_db = app.clone();
    let probe = Probe::new(version).with_db_check(move || db_status(&check_db));
    let api = Router::new()
        .route("/api/v2/rooms", get(list_rooms).post(create_room))
        .route("/api/v2/rooms/{id}", get(get_room))
        .route("/api/v2/reservations", get(list_reservations).post(reserve))
        .route("/api/v2/reservations/{id}", delete(cancel))
        .route_layer(middleware::from_fn_with_state(app.clone(), inject_faults))
        .route_layer(probe.layer())
        .with_state(app);
    Ok(api.merge(probe.router()))
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, Connection> {
    app.db.lock().unwrap_or_else(PoisonError::into_inner)
}

fn db_status(app: &App) -> Result<DbStatus, String> {
    if app.faults.fail_db {
        return Err("database unreachable (--fail-db)".into());
    }
    let start = Instant::now();
    let one: i64 = lock(app).query_row("SELECT 1", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(DbStatus { in_use: u32::from(one == 1), max: 10, latency_ms })
}

/// A uniform draw in 0..1 from a shared xorshift state: cheap, and good enough
/// to fail a given share of requests.
fn draw(rng: &AtomicU64) -> f64 {
    let mut x = rng.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

async fn inject_faults(State(app): State<App>, req: axum::extract::Request, next: Next) -> Response {
    if app.faults.extra_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.faults.extra_latency_ms)).await;
    }
    if draw(&app.rng) * 100.0 < app.faults.error_rate {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "injected failure (--error-rate)"})),
        )
            .into_response();
    }
    if app.faults.fail_db {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "database unreachable (--fail-db)"})))
            .into_response();
    }
    next.run(req).await
}

type ApiResult = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn db_error(e: rusqlite::Error) -> (StatusCode, Json<Value>) {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()})))
}

fn room(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(
        json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?, "game": r.get::<_, String>(2)?, "capacity": r.get::<_, i64>(3)?}),
    )
}

async fn list_rooms(State(app): State<App>) -> ApiResult {
    let db = lock(&app);
    let mut stmt =
        db.prepare_cached("SELECT id, name, game, capacity FROM rooms ORDER BY id").map_err(db_error)?;
    let rooms =
        stmt.query_map([], room).map_err(db_error)?.collect::<Result<Vec<_>, _>>().map_err(db_error)?;
    Ok(Json(json!({"rooms": rooms})))
}

async fn get_room(State(app): State<App>, Path(id): Path<i64>) -> ApiResult {
    let db = lock(&app);
    match db.query_row("SELECT id, name, game, capacity FROM rooms WHERE id = ?1", [id], room) {
        Ok(r) => Ok(Json(r)),
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            Err((StatusCode::NOT_FOUND, Json(json!({"error": format!("no room {id}")}))))
        }
        Err(e) => Err(db_error(e)),
    }
}

#[derive(Deserialize)]
struct NewRoom {
    name: String,
    game: String,
    capacity: i64,
}

async fn create_room(State(app): State<App>, Json(r): Json<NewRoom>) -> ApiResult {
    if r.name.trim().is_empty() || r.capacity < 1 {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "a room needs a name and a capacity of at least 1"})),
        ));
    }
    let db = lock(&app);
    db.execute(
        "INSERT INTO rooms (name, game, capacity) VALUES (?1, ?2, ?3)",
        params![r.name, r.game, r.capacity],
    )
    .map_err(db_error)?;
    Ok(Json(json!({"id": db.last_insert_rowid(), "name": r.name, "game": r.game, "capacity": r.capacity})))
}

#[derive(Deserialize)]
struct ReservationQuery {
    user: Option<String>,
}

async fn list_reservations(State(app): State<App>, Query(q): Query<ReservationQuery>) -> ApiResult {
    let db = lock(&app);
    let mut stmt = db
        .prepare_cached("SELECT id, room_id, user, slot FROM reservations WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT 100")
        .map_err(db_error)?;
    let rows = stmt
        .query_map([q.user], |r| Ok(json!({"id": r.get::<_, i64>(0)?, "room_id": r.get::<_, i64>(1)?, "user": r.get::<_, String>(2)?, "slot": r.get::<_, String>(3)?})))
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    Ok(Json(json!({"reservations": rows})))
}

#[derive(Deserialize)]
struct NewReservation {
    room_id: i64,
    user: String,
    slot: String,
}

async fn reserve(State(app): State<App>, Json(r): Json<NewReservation>) -> ApiResult {
    let db = lock(&app);
    let exists: bool = db
        .query_row("SELECT EXISTS(SELECT 1 FROM rooms WHERE id = ?1)", [r.room_id], |x| x.get(0))
        .map_err(db_error)?;
    if !exists {
        return Err((StatusCode::NOT_FOUND, Json(json!({"error": format!("no room {}", r.room_id)}))));
    }
    db.execute(
        "INSERT INTO reservations (room_id, user, slot) VALUES (?1, ?2, ?3)",
        params![r.room_id, r.user, r.slot],
    )
    .map_err(db_error)?;
    Ok(Json(json!({"id": db.last_insert_rowid(), "room_id": r.room_id, "user": r.user, "slot": r.slot})))
}

async fn cancel(State(app): State<App>, Path(id): Path<i64>) -> ApiResult {
    let n = lock(&app).execute("DELETE FROM reservations WHERE id = ?1", [id]).map_err(db_error)?;
    if n == 0 {
        return Err((StatusCode::NOT_FOUND, Json(json!({"error": format!("no reservation {id}")}))));
    }
    Ok(Json(json!({"cancelled": id})))
}

/// Runs `canary demo-service` until SIGTERM or Ctrl-C.
pub fn serve(args: &DemoServiceArgs) -> Exit {
    if !(0.0..=100.0).contains(&args.error_rate) {
        let why = format!("--error-rate {}: must be a percentage from 0 to 100", args.error_rate);
        return fail(Exit::BadInput, "demo-service", why);
    }
    let Ok(addr) = args.listen.parse::<std::net::SocketAddr>() else {
        let why = format!("--listen `{}` is not an address; write IP:PORT", args.listen);
        return fail(Exit::BadInput, "demo-service", why);
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!(
        "canary demo-service {}: error draws seeded with {seed} (--seed {seed} replays them)",
        args.version
    );
    let faults = Faults {
        error_rate: args.error_rate,
        extra_latency_ms: args.extra_latency_ms,
        fail_db: args.fail_db,
        seed,
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let app = router(&args.version, faults).map_err(|e| e.to_string())?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let bound = listener.local_addr().map_err(|e| e.to_string())?;
                println!("canary demo-service {}: listening on {bound}", args.version);
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop_signal())
                    .await
                    .map_err(|e| e.to_string())
            })
        });
    match result {
        Ok(()) => Exit::Done,
        Err(e) => fail(Exit::Failed, "demo-service", e),
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut t), Ok(mut i)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
