import pRetry, { AbortError } from 'p-retry';
import { UnreachableError } from '../errors.js';

/**
 * One AWS API call with our retry policy, shared by the ELBv2 and CloudWatch readers: throttling and 5xx are
 * retried with jittered exponential backoff (the controller shares the account's limits, so back off rather than
 * hammer); missing/denied credentials and network failures are "unreachable" (exit 3); anything else fails at once.
 */

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown']);
const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
  'InvalidSignatureException',
  'MissingAuthenticationToken',
]);

export interface CallCounters {
  /** Attempts sent, by action. */
  calls: Record<string, number>;
  /** Attempts that failed transiently (throttling or 5xx) and were retried, by action. */
  retried: Record<string, number>;
  /** Attempts answered with a throttling error. */
  throttled: { count: number };
}

export interface RetrySettings {
  retries: number;
  minRetryDelayMs: number;
  maxRetryDelayMs: number;
}

export async function awsCall<T>(
  action: string,
  fn: () => Promise<T>,
  o: { counters: CallCounters; retry: RetrySettings; unreachable: (action: string, detail: string, err: unknown) => UnreachableError; signal?: AbortSignal },
): Promise<T> {
  const { counters } = o;
  return pRetry(
    async () => {
      counters.calls[action] = (counters.calls[action] ?? 0) + 1;
      try {
        return await fn();
      } catch (err) {
        const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; message?: string };
        const code = e.Code ?? e.name ?? '';
        if (THROTTLING.has(code) || (e.name !== undefined && THROTTLING.has(e.name))) {
          counters.throttled.count++;
          counters.retried[action] = (counters.retried[action] ?? 0) + 1;
          throw err;
        }
        if (e.name === 'CredentialsProviderError' || e.name === 'TimeoutError' || DENIED.has(code) || isNetwork(err)) {
          throw new AbortError(o.unreachable(action, e.message ?? e.name ?? 'unknown error', err));
        }
        if ((e.$metadata?.httpStatusCode ?? 0) >= 500) {
          counters.retried[action] = (counters.retried[action] ?? 0) + 1;
          throw err;
        }
        throw new AbortError(err as Error);
      }
    },
    {
      retries: o.retry.retries,
      minTimeout: o.retry.minRetryDelayMs,
      maxTimeout: o.retry.maxRetryDelayMs,
      randomize: true,
      // A caller's deadline ends the backoff too: a wait must never outlive its timeout sleeping between retries.
      ...(o.signal ? { signal: o.signal } : {}),
    },
  );
}

function isNetwork(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'EAI_AGAIN';
}
