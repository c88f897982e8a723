-- no-transaction
-- Admin search on large user tables (a million rows and more) needs trigram and btree indexes.
-- On a table that already holds users, a plain CREATE INDEX blocks every sign-up and every
-- Better-Auth write to "user" until it finishes; CREATE INDEX CONCURRENTLY does not, but cannot
-- run in a transaction, nor beside another statement in one file. So this migration only adds
-- the extension, and each index has a migration of its own (20261201000101 onwards).
-- (An earlier version of this file created the indexes directly; warden's `migrate` accepts a
-- database where that version ran: see db::migrate.)
CREATE EXTENSION IF NOT EXISTS pg_trgm;
