/**
 * An ELBv2/CloudWatch API error as the service reports it: the error code the SDKs map to an exception
 * (`Throttling`, `TargetGroupNotFound`, `ValidationError`, …), the HTTP status, and Sender/Receiver fault.
 * The ALB model throws these; the API servers render them on the wire; the in-process LBC sees them as is.
 */
export class AwsApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus = 400,
    readonly fault: 'Sender' | 'Receiver' = httpStatus >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
    this.name = code;
  }
}

export const THROTTLING_CODES = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException']);

export function isAwsApiError(e: unknown): e is AwsApiError {
  return e instanceof AwsApiError;
}

/** The SDK-side view of an error: its code (AwsApiError.code or the SDK exception name). */
export function awsErrorCode(e: unknown): string | undefined {
  if (e instanceof AwsApiError) return e.code;
  if (e && typeof e === 'object') {
    const o = e as { Code?: unknown; name?: unknown };
    if (typeof o.Code === 'string') return o.Code;
    if (typeof o.name === 'string') return o.name;
  }
  return undefined;
}
