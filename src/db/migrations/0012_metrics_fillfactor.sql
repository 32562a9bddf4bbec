-- Room on each page for the upserts of aggregate_metrics and step_metrics.
-- Every flush of completions rewrites the hour, day and month rows it adds
-- to, and a MONTH row of step_metrics (histogram and top errors, ~1.5 KB)
-- is rewritten by every flush of its month. With full pages each rewrite
-- went to another page (and into the primary key again), so dead versions
-- piled up until VACUUM: at one year of data step_metrics took 889 MB of
-- heap for 164,000 rows (5.4 KB a row). With free room on the page the
-- rewrite is a HOT update, and the next access to the page prunes the
-- versions it replaced, without waiting for VACUUM.
ALTER TABLE stepwise.step_metrics SET (fillfactor = 50);
ALTER TABLE stepwise.aggregate_metrics SET (fillfactor = 70);
