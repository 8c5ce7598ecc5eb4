import type { GetMetricDataInput, GetMetricDataOutput, MessageData, MetricDataQuery, MetricDataResult } from '@aws-sdk/client-cloudwatch';
import type { AlbCloud } from '../alb/cloud.js';
import { AwsApiError } from '../alb/errors.js';

/**
 * CloudWatch GetMetricData over the ALB model's per-minute counters (namespace `AWS/ApplicationELB`).
 *
 * - Time: StartTime/EndTime and the returned Timestamps are **simulated-epoch** seconds (see alb/metrics.ts:
 *   simulated = origin + (real − origin) × timeScale; `AlbCloud.simulatedNow()`). StartTime is rounded down to the
 *   minute and is inclusive, EndTime exclusive. Period must be a multiple of 60; periods are aligned to StartTime.
 * - Dimensions must be exactly a published combination: `LoadBalancer` for every metric, `TargetGroup + LoadBalancer`
 *   for RequestCount and HTTPCode_Target_*; any other combination (TargetGroup alone, extra dimensions) has no data,
 *   as on CloudWatch. Only periods with traffic produce points (missing = no requests).
 * - Stat: Sum and SampleCount give the count; Average/Minimum/Maximum give 1 (every sample of a count metric is 1).
 * - Unit: absent or `Count` (anything else has no data).
 * - Expressions: numbers, query ids, `+ - * /`, parentheses and `FILL(x, n)` are evaluated per timestamp (a point
 *   exists where every series operand has one; division by zero drops the point). Anything else returns the
 *   result with `StatusCode: InternalError` and a message naming what the lab supports.
 * - ScanBy (default TimestampDescending), MaxDatapoints (PartialData + NextToken), ReturnData, Label.
 */

export type LabGetMetricDataInput = Omit<GetMetricDataInput, 'StartTime' | 'EndTime'> & {
  StartTime: Date | number | string | undefined;
  EndTime: Date | number | string | undefined;
};

const ID_RE = /^[a-z][a-zA-Z0-9_]*$/;
const STATS = new Set(['Sum', 'SampleCount', 'Average', 'Minimum', 'Maximum']);
/** Metrics published with TargetGroup + LoadBalancer as well as LoadBalancer alone. */
const TG_METRICS = new Set(['RequestCount', 'HTTPCode_Target_2XX_Count', 'HTTPCode_Target_3XX_Count', 'HTTPCode_Target_4XX_Count', 'HTTPCode_Target_5XX_Count']);

type Series = Map<number, number>;

function seconds(v: Date | number | string | undefined, what: string): number {
  if (v === undefined || v === null || v === '') throw new AwsApiError('MissingParameter', `The parameter ${what} is required.`);
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  if (typeof v === 'number') return Math.floor(v);
  const n = Number(v);
  if (Number.isFinite(n)) return Math.floor(n);
  const d = Date.parse(v);
  if (Number.isNaN(d)) throw new AwsApiError('InvalidParameterValue', `The parameter ${what} must be a timestamp, not '${v}'.`);
  return Math.floor(d / 1000);
}

export function getMetricData(alb: AlbCloud, input: LabGetMetricDataInput): GetMetricDataOutput {
  const queries = Array.isArray(input.MetricDataQueries) ? input.MetricDataQueries : [];
  if (queries.length === 0) throw new AwsApiError('MissingParameter', 'The parameter MetricDataQueries is required.');
  if (queries.length > 500) throw new AwsApiError('InvalidParameterValue', 'The collection MetricDataQueries must not have a size greater than 500.');
  const start = Math.floor(seconds(input.StartTime, 'StartTime') / 60) * 60;
  const end = seconds(input.EndTime, 'EndTime');
  if (start >= end) throw new AwsApiError('InvalidParameterValue', 'The parameter StartTime must be less than the parameter EndTime.');
  const scanBy = input.ScanBy ?? 'TimestampDescending';
  if (scanBy !== 'TimestampDescending' && scanBy !== 'TimestampAscending') {
    throw new AwsApiError('InvalidParameterValue', `The parameter ScanBy must be TimestampDescending or TimestampAscending, not '${String(scanBy)}'.`);
  }
  const seen = new Set<string>();
  queries.forEach((q, i) => {
    const n = i + 1;
    if (!q.Id || !ID_RE.test(q.Id)) {
      throw new AwsApiError('InvalidParameterValue', `The value ${String(q.Id)} for parameter MetricDataQueries.member.${n}.Id is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$.`);
    }
    if (seen.has(q.Id)) throw new AwsApiError('InvalidParameterValue', `The value ${q.Id} for parameter MetricDataQueries.member.${n}.Id is a duplicate.`);
    seen.add(q.Id);
    if (!!q.MetricStat === !!q.Expression) {
      throw new AwsApiError('InvalidParameterValue', `Exactly one element of the MetricDataQueries.member.${n} must have either Expression or MetricStat.`);
    }
    if (q.MetricStat) {
      const p = Number(q.MetricStat.Period);
      if (!Number.isInteger(p) || p <= 0 || p % 60 !== 0) {
        throw new AwsApiError('InvalidParameterValue', `The parameter MetricDataQueries.member.${n}.MetricStat.Period must be a multiple of 60.`);
      }
      if (!STATS.has(String(q.MetricStat.Stat))) {
        throw new AwsApiError('InvalidParameterValue', `The parameter MetricDataQueries.member.${n}.MetricStat.Stat '${String(q.MetricStat.Stat)}' is not supported by the lab (Sum, SampleCount, Average, Minimum, Maximum).`);
      }
    }
  });

  const series = new Map<string, Series>();
  const periods = new Map<string, number>();
  for (const q of queries) {
    if (!q.MetricStat) continue;
    series.set(q.Id!, metricSeries(alb, q, start, end));
    periods.set(q.Id!, Number(q.MetricStat.Period));
  }
  const results: MetricDataResult[] = [];
  const messages: MessageData[] = [];
  for (const q of queries) {
    let s: Series | undefined = series.get(q.Id!);
    let status: MetricDataResult['StatusCode'] = 'Complete';
    const resultMessages: MessageData[] = [];
    if (q.Expression) {
      const period = Number(q.Period ?? [...periods.values()][0] ?? 60);
      try {
        s = evaluate(q.Expression, series, start, end, period);
        series.set(q.Id!, s);
      } catch (e) {
        status = 'InternalError';
        s = new Map();
        resultMessages.push({ Code: 'InternalError', Value: `${(e as Error).message}` });
      }
    }
    if (q.ReturnData === false) continue;
    const points = [...(s ?? new Map()).entries()].sort((a, b) => (scanBy === 'TimestampAscending' ? a[0] - b[0] : b[0] - a[0]));
    results.push({
      Id: q.Id,
      Label: q.Label ?? (q.MetricStat?.Metric?.MetricName ?? q.Id),
      Timestamps: points.map(([t]) => new Date(t * 1000)),
      Values: points.map(([, v]) => v),
      StatusCode: status,
      ...(resultMessages.length ? { Messages: resultMessages } : {}),
    });
  }
  return paginateResults(results, input.MaxDatapoints, input.NextToken, messages);
}

function metricSeries(alb: AlbCloud, q: MetricDataQuery, start: number, end: number): Series {
  const out: Series = new Map();
  const ms = q.MetricStat!;
  const metric = ms.Metric;
  if (!metric || metric.Namespace !== 'AWS/ApplicationELB' || !metric.MetricName) return out;
  if (ms.Unit !== undefined && ms.Unit !== 'Count') return out;
  const dims: Record<string, string> = {};
  for (const d of metric.Dimensions ?? []) if (d.Name) dims[d.Name] = String(d.Value ?? '');
  const names = Object.keys(dims).sort().join(',');
  const published = names === 'LoadBalancer' || (names === 'LoadBalancer,TargetGroup' && TG_METRICS.has(metric.MetricName));
  if (!published) return out;
  const period = Number(ms.Period);
  for (const [minute, v] of alb.metrics.minutes(metric.MetricName, dims, start, end)) {
    const bucket = start + Math.floor((minute - start) / period) * period;
    out.set(bucket, (out.get(bucket) ?? 0) + v);
  }
  if (['Average', 'Minimum', 'Maximum'].includes(String(ms.Stat))) for (const k of out.keys()) out.set(k, 1);
  return out;
}

function paginateResults(results: MetricDataResult[], maxDatapoints: number | undefined, nextToken: string | undefined, messages: MessageData[]): GetMetricDataOutput {
  let offsets: Record<string, number> = {};
  if (nextToken) {
    try {
      offsets = JSON.parse(Buffer.from(nextToken, 'base64').toString('utf8')) as Record<string, number>;
    } catch {
      throw new AwsApiError('InvalidNextToken', 'The service returned an invalid NextToken.');
    }
  }
  let budget = maxDatapoints !== undefined ? Number(maxDatapoints) : 100_800;
  const next: Record<string, number> = {};
  let partial = false;
  const out = results.map((r) => {
    const off = offsets[r.Id!] ?? 0;
    const ts = (r.Timestamps ?? []).slice(off);
    const vs = (r.Values ?? []).slice(off);
    const take = Math.max(0, Math.min(ts.length, budget));
    budget -= take;
    if (take < ts.length) {
      partial = true;
      next[r.Id!] = off + take;
    }
    return { ...r, Timestamps: ts.slice(0, take), Values: vs.slice(0, take), StatusCode: take < ts.length ? ('PartialData' as const) : r.StatusCode };
  });
  if (partial) {
    for (const r of results) if (next[r.Id!] === undefined) next[r.Id!] = Number.MAX_SAFE_INTEGER;
    return { MetricDataResults: out, NextToken: Buffer.from(JSON.stringify(next)).toString('base64'), Messages: messages };
  }
  return { MetricDataResults: out, Messages: messages };
}

// ------------------------------------------------------------------ metric math (a small subset)

type Value = number | Series;
type Token = { t: 'num'; v: number } | { t: 'id'; v: string } | { t: 'op'; v: string };

const SUPPORTED = 'the lab evaluates numbers, query ids, + - * /, parentheses and FILL(x, n)';

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/(),]))/y;
  let i = 0;
  while (i < expr.length) {
    if (/^\s*$/.test(expr.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(expr);
    if (!m) throw new Error(`Unsupported expression '${expr}' at '${expr.slice(i)}': ${SUPPORTED}`);
    if (m[1] !== undefined) out.push({ t: 'num', v: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ t: 'id', v: m[2] });
    else out.push({ t: 'op', v: m[3]! });
    i = re.lastIndex;
  }
  return out;
}

function evaluate(expr: string, series: Map<string, Series>, start: number, end: number, period: number): Series {
  const toks = tokenize(expr);
  let pos = 0;
  const peek = (): Token | undefined => toks[pos];
  const expectOp = (v: string): void => {
    const t = toks[pos++];
    if (!t || t.t !== 'op' || t.v !== v) throw new Error(`Unsupported expression '${expr}': expected '${v}'; ${SUPPORTED}`);
  };
  const primary = (): Value => {
    const t = toks[pos++];
    if (!t) throw new Error(`Unsupported expression '${expr}': unexpected end; ${SUPPORTED}`);
    if (t.t === 'num') return t.v;
    if (t.t === 'op' && t.v === '(') {
      const v = sum();
      expectOp(')');
      return v;
    }
    if (t.t === 'op' && t.v === '-') return binary(-1, primary(), '*');
    if (t.t === 'id') {
      const nxt = peek();
      if (nxt && nxt.t === 'op' && nxt.v === '(') {
        if (t.v.toUpperCase() !== 'FILL') throw new Error(`Unsupported function ${t.v} in '${expr}': ${SUPPORTED}`);
        pos++;
        const arg = sum();
        expectOp(',');
        const fill = sum();
        expectOp(')');
        if (typeof fill !== 'number') throw new Error(`FILL's second argument must be a number in '${expr}'`);
        const s: Series = typeof arg === 'number' ? new Map() : new Map(arg);
        for (let ts = start; ts < end; ts += period) if (!s.has(ts)) s.set(ts, typeof arg === 'number' ? arg : fill);
        return s;
      }
      const s = series.get(t.v);
      if (!s) throw new Error(`Unknown query id '${t.v}' in '${expr}'`);
      return s;
    }
    throw new Error(`Unsupported expression '${expr}': ${SUPPORTED}`);
  };
  const product = (): Value => {
    let v = primary();
    for (let t = peek(); t && t.t === 'op' && (t.v === '*' || t.v === '/'); t = peek()) {
      pos++;
      v = binary(v, primary(), t.v);
    }
    return v;
  };
  const sum = (): Value => {
    let v = product();
    for (let t = peek(); t && t.t === 'op' && (t.v === '+' || t.v === '-'); t = peek()) {
      pos++;
      v = binary(v, product(), t.v);
    }
    return v;
  };
  const v = sum();
  if (pos !== toks.length) throw new Error(`Unsupported expression '${expr}': ${SUPPORTED}`);
  if (typeof v === 'number') {
    const s: Series = new Map();
    for (let ts = start; ts < end; ts += period) s.set(ts, v);
    return s;
  }
  return v;
}

function apply(a: number, b: number, op: string): number | undefined {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    default:
      return b === 0 ? undefined : a / b;
  }
}

function binary(a: Value, b: Value, op: string): Value {
  if (typeof a === 'number' && typeof b === 'number') return apply(a, b, op) ?? Number.NaN;
  const out: Series = new Map();
  if (typeof a === 'number') {
    for (const [t, v] of b as Series) {
      const r = apply(a, v, op);
      if (r !== undefined) out.set(t, r);
    }
  } else if (typeof b === 'number') {
    for (const [t, v] of a) {
      const r = apply(v, b, op);
      if (r !== undefined) out.set(t, r);
    }
  } else {
    for (const [t, v] of a) {
      const w = b.get(t);
      if (w === undefined) continue;
      const r = apply(v, w, op);
      if (r !== undefined) out.set(t, r);
    }
  }
  return out;
}
