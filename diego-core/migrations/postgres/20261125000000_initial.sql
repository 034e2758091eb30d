-- Records: key columns, the columns the BBS lists by, the modification tag, the lease
-- end of cell presences, and the (possibly encrypted) JSON payload with its key label.

CREATE TABLE tasks (
    guid TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    domain TEXT COLLATE "C",
    cell_id TEXT COLLATE "C",
    tag_epoch TEXT COLLATE "C",
    tag_index BIGINT,
    expires_at BIGINT,
    key_label TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX tasks_by_domain ON tasks (domain);
CREATE INDEX tasks_by_cell ON tasks (cell_id);

CREATE TABLE desired_lrps (
    process_guid TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    domain TEXT COLLATE "C",
    cell_id TEXT COLLATE "C",
    tag_epoch TEXT COLLATE "C",
    tag_index BIGINT,
    expires_at BIGINT,
    key_label TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX desired_lrps_by_domain ON desired_lrps (domain);

-- The primary key serves the listings by process guid and by (process guid, index).
CREATE TABLE actual_lrps (
    process_guid TEXT COLLATE "C" NOT NULL,
    idx BIGINT NOT NULL,
    presence BIGINT NOT NULL,
    domain TEXT COLLATE "C",
    cell_id TEXT COLLATE "C",
    tag_epoch TEXT COLLATE "C",
    tag_index BIGINT,
    expires_at BIGINT,
    key_label TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL,
    PRIMARY KEY (process_guid, idx, presence)
);
CREATE INDEX actual_lrps_by_domain ON actual_lrps (domain);
CREATE INDEX actual_lrps_by_cell ON actual_lrps (cell_id);

CREATE TABLE domains (
    name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    domain TEXT COLLATE "C",
    cell_id TEXT COLLATE "C",
    tag_epoch TEXT COLLATE "C",
    tag_index BIGINT,
    expires_at BIGINT,
    key_label TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL
);

-- Cell presences are lease rows: expires_at is when the lease ends unless renewed.
CREATE TABLE cell_presences (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    domain TEXT COLLATE "C",
    cell_id TEXT COLLATE "C",
    tag_epoch TEXT COLLATE "C",
    tag_index BIGINT,
    expires_at BIGINT,
    key_label TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX cell_presences_by_expiry ON cell_presences (expires_at);

-- Leader locks: one lease row per lock; token is the fencing token (owner '' = released).
CREATE TABLE locks (
    name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner TEXT COLLATE "C" NOT NULL,
    token BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
