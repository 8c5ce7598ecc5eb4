import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackHttpServer } from '../http.js';
import { AwsApiError } from '../alb/errors.js';
import { requestId } from './wire.js';

/**
 * The loopback HTTP server every lab AWS API runs on: a protocol answers `handle` and renders its own errors;
 * a handler that throws is answered as an internal error with `internalErrorCode`.
 */
export abstract class AwsApiServer {
  private readonly http = new LoopbackHttpServer(
    (req, res) => this.handle(req, res),
    (res, err) => this.error(res, requestId(), new AwsApiError(this.internalErrorCode, (err as Error).message, 500)),
  );

  constructor(private readonly internalErrorCode: string) {}

  get url(): string {
    return this.http.url;
  }

  listen(): Promise<string> {
    return this.http.listen();
  }

  close(): Promise<void> {
    return this.http.close();
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  protected abstract error(res: ServerResponse, id: string, e: AwsApiError): void;
}
