import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Wire helpers for the AWS API servers: awsQuery form bodies → nested objects, values → XML, bodies with limits.
 * Hand-written on purpose (no XML library): the shapes are small and the SDK's parser is lenient about layout.
 */

export type FormValue = string | FormValue[] | { [k: string]: FormValue };

/**
 * `Targets.member.1.Id=a&Targets.member.1.Port=80&Matcher.HttpCode=200` →
 * `{Targets: [{Id: 'a', Port: '80'}], Matcher: {HttpCode: '200'}}`. Lists are `Name.member.N` (1-based); maps
 * `Name.entry.N.key/value` come out as lists of `{key, value}`. An empty list is sent as `Name=` and stays ''.
 * With `lists: 'flat'` (the EC2 query protocol) a list is `Name.N` with no `member`: `Filter.1.Value.2=x`.
 */
export function parseQueryForm(body: string, lists: 'member' | 'flat' = 'member'): Record<string, FormValue> {
  const root: Record<string, FormValue> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const raw = key.split('.');
    const path: Array<string | number> = [];
    for (let i = 0; i < raw.length; i++) {
      const seg = raw[i]!;
      const nxt = raw[i + 1];
      if (lists === 'flat' && /^\d+$/.test(seg) && i > 0) {
        path.push(Number(seg) - 1);
      } else if (lists === 'member' && (seg === 'member' || seg === 'entry') && nxt !== undefined && /^\d+$/.test(nxt)) {
        path.push(Number(nxt) - 1);
        i++;
      } else {
        path.push(seg);
      }
    }
    let cur: FormValue = root;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      const container = cur as Record<string | number, FormValue>;
      if (last) {
        container[seg] = value;
        break;
      }
      const wantArray = typeof path[i + 1] === 'number';
      let child = container[seg];
      if (child === undefined || typeof child === 'string') {
        child = wantArray ? [] : {};
        container[seg] = child;
      }
      cur = child;
    }
  }
  return compact(root) as Record<string, FormValue>;
}

function compact(v: FormValue): FormValue {
  if (Array.isArray(v)) return v.filter((x) => x !== undefined).map(compact);
  if (typeof v === 'object') {
    const o: Record<string, FormValue> = {};
    for (const [k, x] of Object.entries(v)) o[k] = compact(x);
    return o;
  }
  return v;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * An SDK-shaped value as awsQuery XML: objects → elements, arrays → `<member>` (`<item>` for the EC2 protocol),
 * Dates → ISO-8601.
 */
export function toXml(v: unknown, item = 'member'): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map((x) => `<${item}>${toXml(x, item)}</${item}>`).join('');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .filter(([k, x]) => x !== undefined && !k.startsWith('$'))
      .map(([k, x]) => `<${k}>${toXml(x, item)}</${k}>`)
      .join('');
  }
  return escapeXml(String(v));
}

/** Unseeded on purpose: a request id changes no behaviour and no ordering, and seeded ones would make every call draw. */
export function requestId(): string {
  return randomUUID();
}

/** Reads a request body (bounded: the APIs never need more than a few hundred KB). */
export function readBody(req: IncomingMessage, limit = 4 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error(`request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
