-- Which roles a user's comma-joined `role` column names, by Better-Auth's admin plugin's rule:
-- (role || defaultRole || "user").split(","), nothing trimmed, an empty or missing role being
-- "user". warden's Rust code asks the same question through auth::roles::role_names; every
-- query that does (the last-admin count, the admin listing's role filter, its index) calls
-- this function, so the two cannot drift apart. (Before, SQL removed every space first: a role
-- "ad min" written by hand counted as an admin for the last-admin rule without being one.)
-- A plain SQL function: the planner inlines it, in queries and in index expressions alike.
-- Never change its body in place (an index built on it would silently disagree): a new rule
-- is a new function, with its own index, and the queries moved to it.
CREATE OR REPLACE FUNCTION warden_role_names(role text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT string_to_array(coalesce(nullif(role, ''), 'user'), ',') $$;
