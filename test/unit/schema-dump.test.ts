import { describe, expect, it } from 'vitest';
import { normaliseDump, SCHEMA_HEADER } from '../../scripts/lib/schema-dump.js';

const DUMP = `--
-- PostgreSQL database dump
--

\\restrict AbCdEf123

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: jobs; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.jobs (
    id uuid NOT NULL
);


--
-- Name: execution_log_2031_05; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_log_2031_05 (
    ts timestamp with time zone NOT NULL
);


--
-- Name: execution_log_2031_05; Type: TABLE ATTACH; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_log ATTACH PARTITION stepwise.execution_log_2031_05 FOR VALUES FROM ('2031-05-01 00:00:00+00') TO ('2031-06-01 00:00:00+00');


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
--

\\unrestrict AbCdEf123
`;

describe('normaliseDump', () => {
  const out = normaliseDump(DUMP);

  it('drops what differs between runs and servers, and month partitions made at run time', () => {
    expect(out).not.toMatch(/restrict|Dumped (from|by)|^SET |set_config/m);
    expect(out).not.toContain('2031_05');
  });

  it('keeps every other object, under the header, blank runs collapsed', () => {
    expect(out.startsWith(SCHEMA_HEADER)).toBe(true);
    expect(out).toContain('CREATE TABLE stepwise.jobs (\n    id uuid NOT NULL\n);');
    expect(out).toContain('ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);');
    expect(out).not.toMatch(/\n\n\n/);
    expect(out.endsWith('-- PostgreSQL database dump complete\n--\n')).toBe(true);
    expect(normaliseDump(DUMP)).toBe(out);
  });
});
