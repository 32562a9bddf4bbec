-- A fencing token per claim. Every claim of a queue row adds one to
-- lease_epoch and hands the new value to the claiming worker; a worker's
-- writes for a job (stream rows, checkpoint, consumed signals, start,
-- suspension, outcome) are accepted only while the row still carries its
-- worker id and that value. A worker whose lease expired and was taken over,
-- even by itself in a later claim, can then never write into the new run's
-- stream, checkpoint or outcome. A constant default adds the column without
-- rewriting the table.
ALTER TABLE stepwise.job_queue ADD COLUMN lease_epoch integer NOT NULL DEFAULT 0;
