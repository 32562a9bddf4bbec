-- Room on every page for the updates each row gets, so they stay HOT
-- (heap-only: no new index entries, no index bloat).
--
-- jobs: a row (~205 bytes with its header) is written at enqueue and
-- rewritten at least once (its outcome). At fillfactor 80 a page held ~32
-- new rows and room for ~7 rewrites, so in a burst only 24% of outcome
-- updates were HOT and the rest inserted into all of jobs' indexes; at 50
-- the same bench measured 88–91% HOT. The heap did not grow: non-HOT
-- versions had been spilling onto new pages anyway.
--
-- job_queue: a row (~90 bytes) is leased (updated) once or more and then
-- deleted. It only ever holds runnable work, so the cost of a sparse table
-- is a few pages; at 70, 38% of lease updates were HOT, at 25 all of them.
--
-- Only pages written from now on use the new setting.
ALTER TABLE stepwise.jobs SET (fillfactor = 50);
ALTER TABLE stepwise.job_queue SET (fillfactor = 25);
