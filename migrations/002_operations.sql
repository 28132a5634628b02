-- Operations: suppressions written by processor forget.

CREATE TABLE suppressions (
    id           text COLLATE "C" PRIMARY KEY,
    kind         text COLLATE "C" NOT NULL CHECK (kind IN ('user', 'anonymous')),
    forgotten_as text COLLATE "C" NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    dropped      bigint NOT NULL DEFAULT 0
);
CREATE INDEX suppressions_forgotten_as_idx ON suppressions (forgotten_as);
COMMENT ON TABLE suppressions IS 'Ids forgotten with processor forget (the id asked for and every id linked to it): events naming any of them are dropped, not applied, until processor forget --lift.';
COMMENT ON COLUMN suppressions.forgotten_as IS 'The id processor forget was called with; --lift with it lifts the whole set.';
COMMENT ON COLUMN suppressions.dropped IS 'Events dropped because they named this id.';

---- create above / drop below ----

DROP TABLE suppressions;
