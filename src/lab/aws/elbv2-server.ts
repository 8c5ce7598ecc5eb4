import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
  url = '';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly account: AwsAccount) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.error(res, requestId(), new AwsApiError('InternalFailure', (err as Error).message, 500)));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        this.server.unref();
        resolve(this.url);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
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
