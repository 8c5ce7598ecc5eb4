import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsApiError } from '../alb/errors.js';
import { isCloudWatchAction, type AwsAccount } from './account.js';
import { AwsApiServer } from './api-server.js';
import type { LabGetMetricDataInput } from './cloudwatch.js';
import { readBody, requestId } from './wire.js';

/**
 * CloudWatch over awsJson1_0 (query-compatible), as the SDK v3 ≥ 3.949 speaks it: `POST /` with
 * `x-amz-target: GraniteServiceVersion20100801.<Op>` and a JSON body whose timestamps are epoch seconds.
 * Errors: HTTP 400/500 with `x-amzn-query-error: <Code>;<Sender|Receiver>` and `{"__type": "...#<Code>…", "message"}`.
 */

const PREFIX = 'GraniteServiceVersion20100801.';

const ERROR_TYPES: Record<string, string> = {
  Throttling: 'ThrottlingException',
  InvalidParameterValue: 'InvalidParameterValueException',
  MissingParameter: 'MissingRequiredParameterException',
  InvalidParameterCombination: 'InvalidParameterCombinationException',
  InternalServiceError: 'InternalServiceFault',
  InvalidNextToken: 'InvalidNextToken',
  UnknownOperation: 'UnknownOperationException',
};

export class CloudWatchServer extends AwsApiServer {
  constructor(private readonly account: AwsAccount) {
    super('InternalServiceError');
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = requestId();
    const body = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = target.startsWith(PREFIX) ? target.slice(PREFIX.length) : '';
    if (!isCloudWatchAction(action)) {
      this.error(res, id, new AwsApiError('UnknownOperation', `The lab's CloudWatch does not implement '${target || '(no x-amz-target)'}'; it answers GetMetricData.`, 400));
      return;
    }
    let input: LabGetMetricDataInput;
    try {
      input = (body ? JSON.parse(body) : {}) as LabGetMetricDataInput;
    } catch {
      this.error(res, id, new AwsApiError('InvalidParameterValue', 'The request body is not valid JSON.', 400));
      return;
    }
    try {
      const out = await this.account.cloudwatch(action, input, 'http');
      const json = toJson(out);
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(json) });
      res.end(json);
    } catch (err) {
      this.error(res, id, err instanceof AwsApiError ? err : new AwsApiError('InternalServiceError', (err as Error).message, 500));
    }
  }

  protected error(res: ServerResponse, id: string, e: AwsApiError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({ __type: `com.amazonaws.cloudwatch#${ERROR_TYPES[e.code] ?? e.code}`, message: e.message });
    res.writeHead(e.httpStatus, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': id,
      'x-amzn-query-error': `${e.code};${e.fault}`,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}

/** JSON with Dates as epoch seconds (awsJson timestamps). */
function toJson(v: unknown): string {
  return JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const orig = this[k];
    return orig instanceof Date ? orig.getTime() / 1000 : x;
  });
}
