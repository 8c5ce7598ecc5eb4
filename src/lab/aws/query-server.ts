import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsApiError } from '../alb/errors.js';
import { AwsApiServer } from './api-server.js';
import { escapeXml, parseQueryForm, readBody, requestId, toXml, type FormValue } from './wire.js';

/**
 * One server for the two query protocols the SDK speaks here: `POST /` with a form body `Action=<Op>&Version=…&…`.
 *
 * - awsQuery (ELBv2): lists `Name.member.N`; answer `<OpResponse><OpResult>…</OpResult><ResponseMetadata><RequestId/>`
 *   with `<member>` list items; errors `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 * - ec2Query (EC2): lists `Name.N`; answer `<OpResponse><requestId/>…</OpResponse>` with `<item>` list items;
 *   errors `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 *
 * The request id is also in `x-amzn-requestid`. An unknown Action is 400 `InvalidAction`. Signatures are not checked.
 */
export interface QueryProtocol {
  style: 'awsQuery' | 'ec2Query';
  xmlns: string;
  isAction(action: string): boolean;
  call(action: string, params: Record<string, FormValue>): Promise<unknown>;
}

export class QueryProtocolServer extends AwsApiServer {
  constructor(private readonly protocol: QueryProtocol) {
    super('InternalFailure');
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = requestId();
    const query = (req.url ?? '/').split('?')[1] ?? '';
    const body = req.method === 'POST' ? await readBody(req) : query;
    const ec2 = this.protocol.style === 'ec2Query';
    const params = parseQueryForm(body, ec2 ? 'flat' : 'member');
    const action = typeof params.Action === 'string' ? params.Action : '';
    delete params.Action;
    delete params.Version;
    if (!this.protocol.isAction(action)) {
      this.error(res, id, new AwsApiError('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`, 400));
      return;
    }
    try {
      const out = await this.protocol.call(action, params);
      const xmlns = this.protocol.xmlns;
      const xml = ec2
        ? `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${xmlns}"><requestId>${id}</requestId>${toXml(out, 'item')}</${action}Response>\n`
        : `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${xmlns}"><${action}Result>${toXml(out)}</${action}Result>` +
          `<ResponseMetadata><RequestId>${id}</RequestId></ResponseMetadata></${action}Response>\n`;
      res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    } catch (err) {
      this.error(res, id, err instanceof AwsApiError ? err : new AwsApiError('InternalFailure', (err as Error).message, 500));
    }
  }

  protected error(res: ServerResponse, id: string, e: AwsApiError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const code = escapeXml(this.protocol.style === 'ec2Query' && e.code === 'Throttling' ? 'RequestLimitExceeded' : e.code);
    const xml =
      this.protocol.style === 'ec2Query'
        ? `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${escapeXml(e.message)}</Message></Error></Errors><RequestID>${id}</RequestID></Response>\n`
        : `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${this.protocol.xmlns}"><Error><Type>${e.fault}</Type><Code>${code}</Code>` +
          `<Message>${escapeXml(e.message)}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>\n`;
    res.writeHead(e.httpStatus, { 'content-type': 'text/xml', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  }
}
