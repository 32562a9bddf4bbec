-- AI token usage per organization and month, beside executions and steps:
-- llm steps add every provider call's tokens and cost as they are spent (a
-- failed or repeated call included), and the plan's aiTokensPerMonth is
-- checked against input + output before each call. Cost is kept in
-- micro-USD so sums stay exact integers.
ALTER TABLE stepwise.usage_records
  ADD COLUMN ai_input_tokens  bigint NOT NULL DEFAULT 0 CHECK (ai_input_tokens >= 0),
  ADD COLUMN ai_output_tokens bigint NOT NULL DEFAULT 0 CHECK (ai_output_tokens >= 0),
  ADD COLUMN ai_cost_micros   bigint NOT NULL DEFAULT 0 CHECK (ai_cost_micros >= 0);
