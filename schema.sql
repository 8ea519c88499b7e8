-- The refgraph database: the only place its schema is written.
-- Idempotent: applied on every open. application_id marks a file as refgraph's ('RGRF'), so a
-- foreign SQLite file is refused instead of being written to; user_version is the schema version.
-- CHECKs list their values with OR, not IN (...): SQLite builds a table for an IN list on every
-- row it checks, which tripled the cost of writing a fetch. Both forms accept the same rows.
PRAGMA application_id = 1380405830;
PRAGMA user_version = 1;

-- Every document or media entry refgraph has heard of, as a target it crawled or as a source
-- some reference named. Identity is (kind, id); document ids are stored in canonical decimal.
CREATE TABLE IF NOT EXISTS nodes (
    node_id    INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind = 'media' OR kind = 'document'),
    id         TEXT NOT NULL,
    media_type TEXT,                       -- image, video, file...: from references to it
    first_crawl INTEGER,                   -- the crawl that first heard of it
    UNIQUE (kind, id)
);

-- One row per crawl run, with the arguments it ran with (never the token).
CREATE TABLE IF NOT EXISTS crawls (
    crawl_id    INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,             -- ISO 8601, UTC
    finished_at TEXT,
    base_url    TEXT NOT NULL,
    api_version TEXT NOT NULL,
    origins     TEXT NOT NULL,             -- enabled origins, comma-separated, sorted
    args_json   TEXT NOT NULL,
    outcome     TEXT NOT NULL DEFAULT 'running'
                CHECK (outcome = 'running' OR outcome = 'complete' OR outcome = 'failures'
                       OR outcome = 'suspect' OR outcome = 'fatal' OR outcome = 'interrupted'),
    message     TEXT,                      -- why a crawl stopped, warnings it raised
    flags       TEXT,                      -- JSON list: why the result looks like a catastrophe
    resumed     INTEGER NOT NULL DEFAULT 0, -- how often --resume carried this crawl on
    seeds       INTEGER NOT NULL DEFAULT 0,
    fetched     INTEGER NOT NULL DEFAULT 0, -- (node, endpoint) pairs finished
    failed      INTEGER NOT NULL DEFAULT 0,
    missing     INTEGER NOT NULL DEFAULT 0,
    edges       INTEGER NOT NULL DEFAULT 0, -- references reported by the API in this crawl
    requests    INTEGER NOT NULL DEFAULT 0,
    stats_json  TEXT
);

-- The seeds a crawl started from: with the references it stored, they give back its frontier,
-- so that --resume can carry on after an interruption or a kill.
CREATE TABLE IF NOT EXISTS crawl_seeds (
    crawl_id INTEGER NOT NULL REFERENCES crawls (crawl_id),
    node_id  INTEGER NOT NULL REFERENCES nodes (node_id),
    PRIMARY KEY (crawl_id, node_id)
) WITHOUT ROWID;

-- Per (node, endpoint): did the last crawl of it finish, and when. A node is known only when
-- every endpoint that applies to it is 'complete'; 'missing' is the API's 404 (deleted upstream).
CREATE TABLE IF NOT EXISTS fetches (
    node_id    INTEGER NOT NULL REFERENCES nodes (node_id),
    endpoint   TEXT NOT NULL,
    origin     TEXT NOT NULL CHECK (origin = 'publication' OR origin = 'draft' OR origin = 'media'),
    status     TEXT NOT NULL CHECK (status = 'complete' OR status = 'failed' OR status = 'missing'),
    crawl_id   INTEGER NOT NULL REFERENCES crawls (crawl_id),
    fetched_at TEXT NOT NULL,
    referrers  INTEGER NOT NULL DEFAULT 0, -- distinct sources seen; "at least" when failed
    pages      INTEGER NOT NULL DEFAULT 0,
    total      INTEGER,                    -- the server's own count, when it gave one
    error      TEXT,
    PRIMARY KEY (node_id, endpoint)
) WITHOUT ROWID;

-- One row per reference: source references target at one place, seen through one origin.
-- ref_json is the reference object as the API gave it (canonical JSON), unknown fields kept;
-- ref_hash (64 bits of it) gives the row its identity without indexing the text. Clustered on
-- target because every question walks references backwards, from a target to its referrers.
CREATE TABLE IF NOT EXISTS edges (
    target_id     INTEGER NOT NULL REFERENCES nodes (node_id),
    origin        TEXT NOT NULL CHECK (origin = 'publication' OR origin = 'draft' OR origin = 'media'),
    source_id     INTEGER NOT NULL REFERENCES nodes (node_id),
    ref_hash      INTEGER NOT NULL,
    ref_type      TEXT,
    location      TEXT,
    ref_json      TEXT NOT NULL,
    first_crawl   INTEGER NOT NULL REFERENCES crawls (crawl_id),
    last_crawl    INTEGER NOT NULL REFERENCES crawls (crawl_id),
    removed_crawl INTEGER REFERENCES crawls (crawl_id), -- set when a complete recrawl no longer reports it
    PRIMARY KEY (target_id, origin, source_id, ref_hash)
) WITHOUT ROWID;

-- The current references alone, without their JSON: walking a node's ancestors, probing
-- whether anything references a node, counting referrers and finding one reference between
-- two nodes all read this narrow index instead of the wide rows. Written in crawl order, as
-- the table is, so keeping it costs little.
-- removed_crawl is in the key only so that SQLite sees the index covers the queries' own
-- "removed_crawl IS NULL" (it would read every wide row to check it otherwise).
CREATE INDEX IF NOT EXISTS edges_current ON edges (target_id, origin, source_id, removed_crawl)
    WHERE removed_crawl IS NULL;
-- No question walks references forwards (source to target); the index that did cost a random
-- write per reference.
DROP INDEX IF EXISTS edges_by_source;

-- A crawl's fetches (--resume), and the oldest and newest fetch in one probe each.
CREATE INDEX IF NOT EXISTS fetches_by_crawl_time ON fetches (crawl_id, fetched_at);
DROP INDEX IF EXISTS fetches_by_crawl;
-- Nodes deleted upstream: few, and asked about for every referenced node by orphans.
CREATE INDEX IF NOT EXISTS fetches_missing ON fetches (node_id) WHERE status = 'missing';
