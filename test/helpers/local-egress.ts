import { parseEgressAllow } from '../../src/net/address-policy.js';

/**
 * What test workers and test processes admit past the egress policy: the
 * test's own local servers (HTTP, SMTP, LLM fakes, the databases), which all
 * listen on 127.0.0.1 — an address the policy refuses unless it is named.
 * Tests of the policy itself pass their own allowlist instead.
 */
export const LOCAL_TEST_EGRESS = '127.0.0.1';

/** LOCAL_TEST_EGRESS parsed, as WorkerConfig.egressAllow holds it. */
export const LOCAL_TEST_EGRESS_ENTRIES = Object.freeze(parseEgressAllow(LOCAL_TEST_EGRESS));
