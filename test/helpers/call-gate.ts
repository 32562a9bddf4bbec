/**
 * Holds one group's calls to a test server until `target` of them are in
 * flight at once (or all `total` have arrived), then answers them together.
 * A test asserting a peak of concurrent calls then does not depend on how
 * fast a loaded machine claims: a worker that lets fewer run at once than
 * allowed leaves the calls held until the fallback, and the peak assertion
 * fails instead of passing by luck.
 */
export interface CallGate {
  /** Hold `answer` (the call's response) given the group's calls in flight now, this one included. */
  hold(answer: () => void, inFlight: number): void;
}

export function callGate(target: number, total: number, fallbackMs = 5_000): CallGate {
  let seen = 0;
  const held: Array<() => void> = [];
  const release = () => held.splice(0).forEach((a) => a());
  return {
    hold(answer, inFlight) {
      seen++;
      held.push(answer);
      if (inFlight >= target || seen >= total) release();
      else setTimeout(release, fallbackMs);
    },
  };
}
