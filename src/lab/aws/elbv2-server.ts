import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackHttpServer } from '../http.js';
import { AwsApiError } from '../alb/errors.js';
import { isElbv2Action, type AwsAccount, type Elbv2Action, type Elbv2Input } from './account.js';
import { escapeXml, parseQueryForm, readBody, requestId, toXml } from './wire.js';

/**
 * ELBv2 over awsQuery (what the unmodified AWS SDK v3 speaks): `POST /` with a form body `Action=<Op>&Version=2015-12-01&…`,
 * answered with `<OpResponse><OpResult>…</OpResult><ResponseMetadata><RequestId/></ResponseMetadata></OpResponse>` and the
 * request id in `x-amzn-requestid`. Errors: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`
 * with HTTP 400 (500 for server faults); an unknown Action is 400 `InvalidAction`. Signatures are not checked.
 */

const XMLNS = 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/';

export class Elbv2Server {
  private readonly http = new LoopbackHttpServer(
    (req, res) => this.handle(req, res),
    (res, err) => this.error(res, requestId(), new AwsApiError('InternalFailure', (err as Error).message, 500)),
  );

  constructor(private readonly account: AwsAccount) {}

  get url(): string {
    return this.http.url;
  }

  listen(): Promise<string> {
    return this.http.listen();
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = requestId();
    const query = (req.url ?? '/').split('?')[1] ?? '';
    const body = req.method === 'POST' ? await readBody(req) : query;
    const params = parseQueryForm(body);
    const action = typeof params.Action === 'string' ? params.Action : '';
    delete params.Action;
    delete params.Version;
    if (!isElbv2Action(action)) {
      this.error(res, id, new AwsApiError('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`, 400));
      return;
    }
    try {
      const out = await this.account.elbv2(action as Elbv2Action, params as unknown as Elbv2Input<Elbv2Action>, 'http');
      const xml =
        `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${XMLNS}"><${action}Result>${toXml(out)}</${action}Result>` +
        `<ResponseMetadata><RequestId>${id}</RequestId></ResponseMetadata></${action}Response>\n`;
      res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    } catch (err) {
      this.error(res, id, err instanceof AwsApiError ? err : new AwsApiError('InternalFailure', (err as Error).message, 500));
    }
  }

  private error(res: ServerResponse, id: string, e: AwsApiError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${XMLNS}"><Error><Type>${e.fault}</Type><Code>${escapeXml(e.code)}</Code>` +
      `<Message>${escapeXml(e.message)}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>\n`;
    res.writeHead(e.httpStatus, { 'content-type': 'text/xml', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  }
}
