import { DEFAULT_LIVE_HUB_OPTIONS, type LiveHubOptions } from './live-hub.js';
import { DEFAULT_SSE_LIMITS, type SseLimits } from './sse-connection.js';

export { LiveHub, DEFAULT_LIVE_HUB_OPTIONS, type LiveHubOptions, type LiveHubStats, type JobEventsSubscriber, type JobStreamSubscriber } from './live-hub.js';
export { SseConnection, DEFAULT_SSE_LIMITS, type SseEvent, type SseLimits, type CloseReason } from './sse-connection.js';

/** Settings of the live updates (server-sent events): the hub's and each connection's. */
export type LiveOptions = LiveHubOptions & SseLimits;

export const DEFAULT_LIVE_OPTIONS: LiveOptions = { ...DEFAULT_LIVE_HUB_OPTIONS, ...DEFAULT_SSE_LIMITS };
