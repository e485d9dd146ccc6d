import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ATTRS,
  LOG_FIELDS,
  lazyInstruments,
  METRIC_DEFINITIONS,
  METRICS,
  prometheusSeries,
  startTelemetry,
} from '../src/index.ts';

const definitions = Object.values(METRIC_DEFINITIONS);
const dashboard = JSON.parse(
  readFileSync(new URL('../../../deploy/grafana/grantline.json', import.meta.url), 'utf8'),
) as { panels: { targets?: { expr: string }[] }[] };
const expressions = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);

describe('telemetry names', () => {
  const telemetry = startTelemetry({ serviceName: 'names-test' });
  afterAll(() => telemetry.shutdown());

  it('are unique', () => {
    expect(new Set(Object.values(METRICS)).size).toBe(Object.values(METRICS).length);
    expect(new Set(Object.values(ATTRS)).size).toBe(Object.values(ATTRS).length);
    expect(new Set(Object.values(LOG_FIELDS)).size).toBe(Object.values(LOG_FIELDS).length);
  });

  it('are exported to Prometheus under the series names the dashboard is built on', async () => {
    const instruments = lazyInstruments('names-test', (meter) =>
      definitions.map((d) =>
        d.kind === 'counter'
          ? (v: number) => meter.createCounter(d.name).add(v)
          : d.kind === 'histogram'
            ? (v: number) => meter.createHistogram(d.name, d.unit ? { unit: d.unit } : {}).record(v)
            : (v: number) => meter.createObservableGauge(d.name).addCallback((r) => r.observe(v)),
      ),
    )();
    for (const record of instruments) record(1);
    const server = createServer((req, res) => telemetry.metricsHandler(req, res));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    const text = await res.text();
    server.close();
    const exported = new Set(
      text.split('\n').map((line) => /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)?.[1]),
    );
    for (const definition of definitions)
      for (const series of prometheusSeries(definition)) expect(exported, series).toContain(series);
  });
});

describe('the Grafana dashboard (deploy/grafana/grantline.json)', () => {
  const known = new Set(definitions.flatMap(prometheusSeries));
  // metric names: what remains once label groupings `by (...)` and selectors `{...}` are taken out
  const queried = new Set(
    expressions.flatMap(
      (e) =>
        e.replace(/by \([^)]*\)|\{[^}]*\}/g, '').match(/\b(?:grantline|http_server)_[a-z0-9_]+\b/g) ?? [],
    ),
  );

  it('queries only metrics that exist (names.ts): it cannot drift from the code', () => {
    expect(queried.size).toBeGreaterThan(0);
    for (const series of queried) expect(known, `${series} is not in METRIC_DEFINITIONS`).toContain(series);
  });

  it('groups and filters only by attributes that exist, or Prometheus’s own labels', () => {
    const labels = new Set([
      ...Object.values(ATTRS).map((a) => a.replace(/[^a-zA-Z0-9_]/g, '_')),
      'le',
      'job',
      'instance',
    ]);
    const used = expressions.flatMap((e) => [
      ...[...e.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())),
      ...[...e.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
        [...m[1]!.matchAll(/(\w+)\s*=~?/g)].map((l) => l[1]!),
      ),
    ]);
    expect(used.length).toBeGreaterThan(0);
    for (const label of used) expect(labels, `${label} is not an attribute in names.ts`).toContain(label);
  });

  it('has the panels operators need: token rate, HTTP errors and latency, relay and consumer lag, propagation, SDK staleness', () => {
    for (const metric of [
      METRIC_DEFINITIONS.tokensIssued,
      METRIC_DEFINITIONS.httpServerDuration,
      METRIC_DEFINITIONS.relayLag,
      METRIC_DEFINITIONS.consumerLag,
      METRIC_DEFINITIONS.revocationPropagation,
      METRIC_DEFINITIONS.sdkStaleness,
    ])
      expect(
        prometheusSeries(metric).some((s) => queried.has(s)),
        metric.name,
      ).toBe(true);
  });
});
