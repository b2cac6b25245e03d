/**
 * Schema migrations, applied in order inside one transaction each; `user_version` records the level.
 */
export const MIGRATIONS: string[] = [
  /* 1: the verified mirror */ `
  CREATE TABLE cursor (
    service    TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE repos (
    did          TEXT PRIMARY KEY,
    rev          TEXT,
    data_cid     TEXT,
    head_cid     TEXT,
    state        TEXT NOT NULL CHECK (state IN ('synchronized', 'desynchronized', 'resyncing')),
    state_reason TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    status       TEXT,
    last_seq     INTEGER,
    updated_at   TEXT NOT NULL
  );
  CREATE TABLE records (
    uri            TEXT PRIMARY KEY,
    did            TEXT NOT NULL,
    collection     TEXT NOT NULL,
    rkey           TEXT NOT NULL,
    cid            TEXT NOT NULL,
    rev            TEXT NOT NULL,
    seq            INTEGER,
    value_json     TEXT NOT NULL,
    value_cbor     BLOB NOT NULL,
    valid          INTEGER NOT NULL,
    invalid_reason TEXT,
    indexed_at     TEXT NOT NULL
  );
  CREATE INDEX records_by_collection ON records (collection, did, rkey);
  CREATE INDEX records_by_did ON records (did, collection, rkey);
  CREATE TABLE record_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uri         TEXT NOT NULL,
    did         TEXT NOT NULL,
    collection  TEXT NOT NULL,
    rkey        TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete', 'resync')),
    cid         TEXT,
    prev_cid    TEXT,
    rev         TEXT NOT NULL,
    commit_cid  TEXT NOT NULL,
    seq         INTEGER,
    time        TEXT,
    signing_key TEXT NOT NULL,
    proof_cids  TEXT NOT NULL,
    UNIQUE (uri, rev)
  );
  CREATE INDEX record_versions_by_did ON record_versions (did);
  CREATE TABLE commits (
    did         TEXT NOT NULL,
    rev         TEXT NOT NULL,
    cid         TEXT NOT NULL,
    data_cid    TEXT NOT NULL,
    since       TEXT,
    seq         INTEGER,
    time        TEXT,
    signing_key TEXT NOT NULL,
    sig         BLOB NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('firehose', 'resync')),
    PRIMARY KEY (did, rev)
  );
  CREATE TABLE blocks (
    did   TEXT NOT NULL,
    cid   TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (did, cid)
  ) WITHOUT ROWID;
  CREATE TABLE identities (
    did             TEXT PRIMARY KEY,
    handle          TEXT,
    handle_verified INTEGER NOT NULL DEFAULT 0,
    signing_key     TEXT,
    pds             TEXT,
    doc             TEXT,
    last_seq        INTEGER,
    resolved_at     TEXT NOT NULL
  );
  CREATE TABLE identity_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    did             TEXT NOT NULL,
    handle          TEXT,
    handle_verified INTEGER NOT NULL,
    signing_key     TEXT,
    pds             TEXT,
    from_seq        INTEGER,
    at              TEXT NOT NULL
  );
  CREATE INDEX identity_history_by_did ON identity_history (did, id);
  CREATE TABLE rejections (
    seq     INTEGER NOT NULL,
    did     TEXT NOT NULL,
    reason  TEXT NOT NULL,
    message TEXT NOT NULL,
    rev     TEXT,
    at      TEXT NOT NULL,
    PRIMARY KEY (seq, did, reason)
  );
  CREATE TABLE stream_info (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT NOT NULL,
    message TEXT,
    cursor  INTEGER,
    at      TEXT NOT NULL
  );
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  `,
]
