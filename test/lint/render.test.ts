import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Finding } from '../../src/lint/index.js';
import { escapeData, escapeProperty, renderFindingsGithub, renderFindingsJson, renderFindingsText } from '../../src/lint/render.js';

const findings: Finding[] = [
  {
    rule: 'prestop-missing',
    severity: 'error',
    message: 'no preStop: 502, 504',
    fix: 'add a sleep',
    file: 'k8s/app.yaml',
    line: 12,
    object: { kind: 'Deployment', namespace: 'shop', name: 'web' },
  },
  {
    rule: 'healthcheck-path',
    severity: 'warning',
    message: 'paths differ',
    fix: 'align them',
    file: 'k8s/app.yaml',
    line: 40,
    object: { kind: 'Ingress', namespace: 'shop', name: 'web' },
  },
  {
    rule: 'readiness-gate-label',
    severity: 'info',
    message: 'deploy adds the label\nlater',
    fix: 'nothing (100%)',
    file: 'k8s/ns,1:a.yaml',
    line: 3,
    object: { kind: 'Namespace', namespace: '', name: 'shop' },
  },
];

describe('lint renderers', () => {
  it('text: grouped by file, a fix line each, a final count', () => {
    assert.equal(
      renderFindingsText(findings),
      'k8s/app.yaml:12 error prestop-missing  no preStop: 502, 504\n  fix: add a sleep\n' +
        'k8s/app.yaml:40 warning healthcheck-path  paths differ\n  fix: align them\n' +
        '\n' +
        'k8s/ns,1:a.yaml:3 info readiness-gate-label  deploy adds the label\nlater\n  fix: nothing (100%)\n' +
        '\n1 error, 1 warning, 1 info\n',
    );
    assert.equal(renderFindingsText([]), '0 errors, 0 warnings, 0 info\n');
  });

  it('json: exactly the documented shape and key order', () => {
    const text = renderFindingsJson([{ ...findings[0], extra: 'dropped' } as Finding]);
    assert.equal(
      text,
      '{"findings":[{"rule":"prestop-missing","severity":"error","message":"no preStop: 502, 504","fix":"add a sleep","file":"k8s/app.yaml","line":12,"object":{"kind":"Deployment","namespace":"shop","name":"web"}}]}\n',
    );
    assert.equal(renderFindingsJson([]), '{"findings":[]}\n');
  });

  it('github: workflow commands with GitHub escaping', () => {
    const lines = renderFindingsGithub(findings).split('\n');
    assert.equal(lines[0], '::error file=k8s/app.yaml,line=12,title=alb-rollout prestop-missing::no preStop: 502, 504 (fix: add a sleep)');
    assert.equal(lines[1], '::warning file=k8s/app.yaml,line=40,title=alb-rollout healthcheck-path::paths differ (fix: align them)');
    assert.equal(lines[2], '::notice file=k8s/ns%2C1%3Aa.yaml,line=3,title=alb-rollout readiness-gate-label::deploy adds the label%0Alater (fix: nothing (100%25))');
    assert.equal(lines.length, 4, 'one line per finding and a final newline');
    assert.equal(escapeData('a%b\r\nc:d,e'), 'a%25b%0D%0Ac:d,e');
    assert.equal(escapeProperty('a%b\r\nc:d,e'), 'a%25b%0D%0Ac%3Ad%2Ce');
  });
});
