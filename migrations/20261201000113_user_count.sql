-- The exact number of users, per (role, banned), without counting rows. An admin listing
-- answers with the exact `total`; on a million users a count(*) reads the whole table or an
-- index (40-100 ms here, more for a role filter through its GIN index). Instead each statement
-- that inserts, deletes or updates users adds rows holding its deltas (+n / -n for each
-- (role, banned) pair it changed), written by the triggers below in the writer's own
-- transaction: in any snapshot, sum(delta) over the pairs a filter accepts equals count(*) of
-- the users it accepts, exactly. Rows are only ever inserted, never updated in place, so
-- concurrent sign-ups do not queue behind one counter row. warden folds them from time to time
-- (db::users::compact_user_count), in one statement, so sums stay exact.
-- The triggers are created and the table seeded in this one transaction; CREATE TRIGGER locks
-- "user" against writes until it commits, so the seed cannot miss a concurrent sign-up
-- (writes wait for the length of one count over the table).
CREATE TABLE IF NOT EXISTS warden_user_count (role text, banned boolean, delta bigint NOT NULL);

CREATE OR REPLACE FUNCTION warden_user_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO warden_user_count (role, banned, delta)
    SELECT role, banned, count(*) FROM inserted GROUP BY role, banned;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION warden_user_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO warden_user_count (role, banned, delta)
    SELECT role, banned, -count(*) FROM deleted GROUP BY role, banned;
    RETURN NULL;
END
$$;

-- Only a change of role or banned adds rows; other updates (names, dates) add none.
CREATE OR REPLACE FUNCTION warden_user_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO warden_user_count (role, banned, delta)
    SELECT role, banned, sum(d) FROM (
        SELECT role, banned, -1 AS d FROM before_rows
        UNION ALL
        SELECT role, banned, 1 FROM after_rows
    ) AS changed GROUP BY role, banned HAVING sum(d) <> 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION warden_user_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM warden_user_count;
    RETURN NULL;
END
$$;

LOCK TABLE "user" IN SHARE ROW EXCLUSIVE MODE;
DROP TRIGGER IF EXISTS warden_user_count_inserted ON "user";
DROP TRIGGER IF EXISTS warden_user_count_deleted ON "user";
DROP TRIGGER IF EXISTS warden_user_count_updated ON "user";
DROP TRIGGER IF EXISTS warden_user_count_truncated ON "user";
CREATE TRIGGER warden_user_count_inserted AFTER INSERT ON "user"
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION warden_user_count_inserted();
CREATE TRIGGER warden_user_count_deleted AFTER DELETE ON "user"
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION warden_user_count_deleted();
CREATE TRIGGER warden_user_count_updated AFTER UPDATE ON "user"
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warden_user_count_updated();
CREATE TRIGGER warden_user_count_truncated AFTER TRUNCATE ON "user"
    FOR EACH STATEMENT EXECUTE FUNCTION warden_user_count_truncated();
DELETE FROM warden_user_count;
INSERT INTO warden_user_count (role, banned, delta)
SELECT role, banned, count(*) FROM "user" GROUP BY role, banned;
