-- no-transaction
-- starts_with on email as a btree range: counts matches by an index-only scan (the trigram
-- index must recheck every match in the table). INCLUDE (email): PostgreSQL 15 plans an
-- index-only scan on an expression only when the column itself is in the index.
-- CONCURRENTLY: writes to "user" go on while it builds (see 20261127000003).
CREATE INDEX CONCURRENTLY IF NOT EXISTS warden_user_email_prefix_idx ON "user" (lower(email) text_pattern_ops) INCLUDE (email);
