-- Loads :accounts accounts (psql -v accounts=N), no limit flags: the same
-- accounts as rlbench's throughput runs.
TRUNCATE transfers, accounts;
INSERT INTO accounts (id) SELECT g FROM generate_series(1, :accounts) g;
VACUUM ANALYZE accounts;
