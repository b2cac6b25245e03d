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
  /* 2: provenance — purge tombstones, the handle known with each version, account purges, card → deck lookups */ `
  CREATE TABLE record_versions_v2 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uri             TEXT NOT NULL,
    did             TEXT NOT NULL,
    collection      TEXT NOT NULL,
    rkey            TEXT NOT NULL,
    -- create/update/delete: a firehose op; resync: the record as a verified getRepo snapshot held it;
    -- purge: the account was deleted and the record dropped (no commit proves it: commit, key, rev null)
    action          TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete', 'resync', 'purge')),
    cid             TEXT,
    prev_cid        TEXT,
    rev             TEXT,
    commit_cid      TEXT,
    seq             INTEGER,
    time            TEXT,
    signing_key     TEXT,
    proof_cids      TEXT NOT NULL,
    -- the author's handle as resolved when the version was accepted
    handle          TEXT,
    handle_verified INTEGER,
    CHECK ((action = 'purge') = (commit_cid IS NULL)),
    CHECK (action = 'purge' OR (rev IS NOT NULL AND signing_key IS NOT NULL)),
    UNIQUE (uri, rev)
  );
  INSERT INTO record_versions_v2 (id, uri, did, collection, rkey, action, cid, prev_cid, rev, commit_cid, seq, time, signing_key, proof_cids)
    SELECT id, uri, did, collection, rkey, action, cid, prev_cid, rev, commit_cid, seq, time, signing_key, proof_cids FROM record_versions;
  DROP TABLE record_versions;
  ALTER TABLE record_versions_v2 RENAME TO record_versions;
  CREATE INDEX record_versions_by_did ON record_versions (did, id);
  CREATE TABLE repo_purges (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    did             TEXT NOT NULL,
    seq             INTEGER,
    time            TEXT,
    head_rev        TEXT,
    head_cid        TEXT,
    records         INTEGER NOT NULL,
    -- versions of this DID up to here lost their blocks with the purge
    last_version_id INTEGER NOT NULL,
    at              TEXT NOT NULL
  );
  CREATE INDEX repo_purges_by_did ON repo_purges (did);
  CREATE INDEX records_by_deck_ref ON records (json_extract(value_json, '$.deckRef'))
    WHERE collection = 'org.stormlightlabs.malfestio.card';
  `,
  /* 3: the upstream's time of the event at the cursor (lag = now - event_time; /health, /metrics) */ `
  ALTER TABLE cursor ADD COLUMN event_time TEXT;
  `,
  /* 4: identity from verified PLC logs — key history, key origin of each commit, stream-ordered key floors */ `
  ALTER TABLE identities ADD COLUMN key_source TEXT;
  ALTER TABLE identities ADD COLUMN plc_last_op TEXT;
  ALTER TABLE identities ADD COLUMN doc_mismatch TEXT;
  ALTER TABLE commits ADD COLUMN key_op_cid TEXT;
  ALTER TABLE commits ADD COLUMN key_op_at TEXT;
  CREATE TABLE plc_keys (
    did          TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    signing_key  TEXT NOT NULL,
    op_cid       TEXT NOT NULL,
    op_at        TEXT NOT NULL,
    ended_by_cid TEXT,
    ended_at     TEXT,
    PRIMARY KEY (did, idx)
  );
  CREATE INDEX plc_keys_by_key ON plc_keys (did, signing_key);
  CREATE TABLE key_floors (
    did     TEXT NOT NULL,
    service TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    op_cid  TEXT NOT NULL,
    cause   TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (did, service, seq)
  );
  CREATE TABLE run_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
  /* 5: provenance — the deck a card version claims, so decks find cards known only from history */ `
  ALTER TABLE record_versions ADD COLUMN deck_ref TEXT;
  UPDATE record_versions SET deck_ref = (
    SELECT json_extract(r.value_json, '$.deckRef') FROM records r WHERE r.uri = record_versions.uri AND r.cid = record_versions.cid
  ) WHERE collection = 'org.stormlightlabs.malfestio.card';
  CREATE INDEX record_versions_by_deck_ref ON record_versions (deck_ref) WHERE deck_ref IS NOT NULL;
  `,
  /* 6: the mirror's queue depths and their limits, as of its last batch (status reads them) */ `
  CREATE TABLE queue_depths (
    name       TEXT PRIMARY KEY,
    value      INTEGER NOT NULL,
    max        INTEGER,
    updated_at TEXT NOT NULL
  );
  `,
  /* 7: blocks as a rowid table with a unique (did, cid) index: rows of ~1 KB made the WITHOUT ROWID
        B-tree move whole rows on every split — inserts cost three times the CPU (bench) */ `
  CREATE TABLE blocks_v2 (
    did   TEXT NOT NULL,
    cid   TEXT NOT NULL,
    bytes BLOB NOT NULL
  );
  INSERT INTO blocks_v2 (did, cid, bytes) SELECT did, cid, bytes FROM blocks;
  DROP TABLE blocks;
  ALTER TABLE blocks_v2 RENAME TO blocks;
  CREATE UNIQUE INDEX blocks_by_did_cid ON blocks (did, cid);
  `,
  /* 8: blocks keyed by (repo id, binary CID): the (did, cid) text index took 45 % of a batch's page
        writes; 8-byte repo ids and 36-byte CIDs instead of ~32 + 59 characters halve its pages.
        cid_binary() is the store's CID parser, registered by migrate() */ `
  CREATE TABLE dids (
    id  INTEGER PRIMARY KEY,
    did TEXT NOT NULL UNIQUE
  );
  INSERT INTO dids (did) SELECT DISTINCT did FROM blocks ORDER BY did;
  CREATE TABLE blocks_v3 (
    repo  INTEGER NOT NULL,
    cid   BLOB NOT NULL,
    bytes BLOB NOT NULL
  );
  INSERT INTO blocks_v3 (repo, cid, bytes)
    SELECT d.id, cid_binary(b.cid), b.bytes FROM blocks b JOIN dids d ON d.did = b.did ORDER BY d.id, b.rowid;
  DROP TABLE blocks;
  ALTER TABLE blocks_v3 RENAME TO blocks;
  CREATE UNIQUE INDEX blocks_by_repo_cid ON blocks (repo, cid);
  `,
  /* 9: a DID's records are the primary key's uri range [at://DID/, at://DID0) (a DID has no '/',
        and '0' follows '/'), so records_by_did only cost one more random B-tree insert per record
        write; (did, collection) lookups use records_by_collection */ `
  DROP INDEX records_by_did;
  `,
  /* 10: commits keyed by (repo id, rev): the (did, rev) key of ~50 bytes an entry took about one
        page write in six of a batch; with the repo id an entry is ~20 bytes. The did column stays,
        so a row still says whose commit it is */ `
  INSERT OR IGNORE INTO dids (did) SELECT DISTINCT did FROM commits ORDER BY did;
  CREATE TABLE commits_v2 (
    repo        INTEGER NOT NULL,
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
    key_op_cid  TEXT,
    key_op_at   TEXT
  );
  INSERT INTO commits_v2 (repo, did, rev, cid, data_cid, since, seq, time, signing_key, sig, source, key_op_cid, key_op_at)
    SELECT d.id, c.did, c.rev, c.cid, c.data_cid, c.since, c.seq, c.time, c.signing_key, c.sig, c.source, c.key_op_cid, c.key_op_at
    FROM commits c JOIN dids d ON d.did = c.did ORDER BY c.rowid;
  DROP TABLE commits;
  ALTER TABLE commits_v2 RENAME TO commits;
  CREATE UNIQUE INDEX commits_by_repo_rev ON commits (repo, rev);
  `,
  /* 11: record_versions_by_did (did, id) served one query, a purge's last version id, and cost a
        random B-tree insert per version written; the (uri, rev) key's range for the DID holds the
        same ids */ `
  DROP INDEX record_versions_by_did;
  `,
  /* 12: a record's bytes are kept once, as its block in blocks (which the proof needs anyway);
        records.value_cbor was a second copy. A record whose block is missing gets it from the
        column first, so nothing stored is lost */ `
  INSERT OR IGNORE INTO dids (did) SELECT DISTINCT did FROM records ORDER BY did;
  INSERT OR IGNORE INTO blocks (repo, cid, bytes)
    SELECT d.id, cid_binary(r.cid), r.value_cbor FROM records r JOIN dids d ON d.did = r.did ORDER BY d.id, r.uri;
  ALTER TABLE records DROP COLUMN value_cbor;
  `,
]
