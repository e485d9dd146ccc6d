// docker-compose.yml without `docker compose` (the docker client here has no compose plugin, and no
// engine runs): validated against the Compose specification's JSON schema (test/deploy/compose-spec/,
// from github.com/compose-spec/compose-spec, Apache-2.0), and checked against the repository: what
// it mounts exists, what it depends on is defined and healthy, the gateway routes as routes.ts does
// and keeps the management ports off the public origin, Prometheus scrapes every service's /metrics.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANAGEMENT_ROUTES, PUBLIC_FALLBACK, PUBLIC_ROUTES } from '@grantline/server';
import { repoRoot } from '@grantline/testing';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMANDS } from '../../scripts/build/entries.ts';
import { readCompose, readNginx } from './compose.ts';
import { readDockerfile } from './dockerfile.ts';

const compose = readCompose();
const services = compose.services;
const image = readDockerfile();
const grantline = Object.entries(services).filter(([, s]) => s.image === 'grantline:local');
const SERVICES = ['registry', 'authorization', 'token', 'consent', 'introspection'];

/**
 * The specification's validator. Its `$schema` names draft 07 by an https URL Ajv does not know by
 * that name; Ajv's default meta-schema is draft 07 itself, so the schema is compiled without it.
 */
const specification = (options: { allErrors?: boolean } = {}) => {
  const { $schema, ...schema } = JSON.parse(
    readFileSync(join(import.meta.dirname, 'compose-spec', 'compose-spec.json'), 'utf8'),
  );
  expect($schema).toBe('https://json-schema.org/draft-07/schema');
  const ajv = new Ajv({ ...options, strict: false });
  addFormats.default(ajv);
  return ajv.compile(schema);
};

describe('docker-compose.yml', () => {
  it('is valid under the Compose specification', () => {
    const validate = specification({ allErrors: true });
    validate(compose);
    expect(validate.errors ?? []).toEqual([]);
  });

  it('the schema check fails a file that breaks the specification', () => {
    const validate = specification();
    const broken = structuredClone(compose) as unknown as {
      services: Record<string, Record<string, unknown>>;
    };
    broken.services.registry!.depends_on = { postgres: { condition: 'when_it_feels_like_it' } };
    expect(validate(broken)).toBe(false);
  });

  it('starts every service of the image, each with its own keys file, healthy before what needs it', () => {
    expect(grantline.map(([name]) => name).sort()).toEqual(
      [...SERVICES, 'keys', 'resource-server-example'].sort(),
    );
    for (const [name, service] of grantline) {
      expect(Object.keys(COMMANDS), name).toContain(service.command?.[0]);
      expect(service.build).toEqual({ context: '.', dockerfile: 'deploy/docker/Dockerfile' });
      if (name !== 'keys')
        expect(service.environment?.GRANTLINE_ENV_FILE).toBe(`/keys/${service.command?.[0]}.env`);
    }
    for (const name of SERVICES) {
      expect(services[name]!.healthcheck?.test).toEqual(['CMD', ...image.healthcheckCommand!]);
      expect(services[name]!.depends_on?.keys?.condition).toBe('service_completed_successfully');
    }
  });

  it('every dependency exists, and waits for a healthcheck or a completed one-shot', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(services, `${name} depends on ${target}`).toHaveProperty([target]);
        if (condition === 'service_healthy') {
          const check = services[target]!.healthcheck;
          expect(check?.test && !check.disable, `${target} has a healthcheck`).toBeTruthy();
        }
        if (condition === 'service_completed_successfully') expect(services[target]!.restart).toBe('no');
      }
      const shared = service.network_mode?.replace(/^service:/, '');
      if (shared) expect(services).toHaveProperty([shared]);
    }
  });

  it('mounts only files of this repository and declared volumes', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':') as [string];
        if (source.startsWith('.'))
          expect(existsSync(join(repoRoot, source)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: volume ${source}`).toHaveProperty([source]);
      }
    }
    expect(existsSync(join(repoRoot, 'deploy/docker/Dockerfile'))).toBe(true);
  });

  it('persists Kafka, Postgres and Redis on volumes; Redis never evicts', () => {
    const kafka = services.kafka!;
    expect(kafka.image).toMatch(/^apache\/kafka:3\.9\./);
    expect(kafka.volumes).toContain(`kafka-data:${kafka.environment?.KAFKA_LOG_DIRS}`);
    expect(services.postgres!.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(services.redis!.volumes).toContain('redis-data:/data');
    expect(services.redis!.command?.join(' ')).toContain('--appendonly yes');
    expect(services.redis!.command?.join(' ')).toContain('--maxmemory-policy noeviction');
  });

  it('believes X-Forwarded-For from the gateway only', () => {
    const gateway = services.gateway!.networks?.default?.ipv4_address;
    expect(gateway).toBeDefined();
    expect(compose.networks.default?.ipam?.config?.[0]?.subnet).toBe('10.213.0.0/24');
    for (const name of SERVICES) expect(services[name]!.environment?.GRANTLINE_TRUSTED_PROXIES).toBe(gateway);
  });
});

describe('the gateway (deploy/nginx/grantline.conf)', () => {
  const { upstreams, servers } = readNginx();
  const publicPort = Number(image.env.PORT);
  const managementPort = Number(image.env.MANAGEMENT_PORT);
  const publicServer = servers.find((s) => s.listen === publicPort)!;
  const managementServer = servers.find((s) => s.listen === managementPort)!;
  /** the location table a route table becomes: each prefix as itself and as a parent of sub-paths */
  const expected = (routes: readonly { prefix: string; service: string }[], suffix: string) =>
    routes.flatMap((r) => [
      { modifier: '=', path: r.prefix, upstream: `${r.service}_${suffix}` },
      { modifier: '^~', path: `${r.prefix}/`, upstream: `${r.service}_${suffix}` },
    ]);

  it('routes the public origin exactly as PUBLIC_ROUTES, the rest to the fallback', () => {
    expect(publicServer.locations).toEqual([
      ...expected(PUBLIC_ROUTES, 'public'),
      { modifier: '', path: '/', upstream: `${PUBLIC_FALLBACK}_public` },
    ]);
  });

  it('routes the management listener exactly as MANAGEMENT_ROUTES', () => {
    expect(managementServer.locations.filter((l) => l.upstream)).toEqual(
      expected(MANAGEMENT_ROUTES, 'management'),
    );
  });

  it('proxies to compose services on their public port from the public origin, management ports only from the management listener', () => {
    for (const [name, { host, port }] of Object.entries(upstreams)) {
      expect(services, name).toHaveProperty([host]);
      expect(port, name).toBe(name.endsWith('_public') ? publicPort : managementPort);
    }
    for (const location of publicServer.locations) expect(location.upstream).toMatch(/_public$/);
    // the management listener is published on the host's loopback only
    expect(services.gateway!.ports).toContain(`127.0.0.1:${managementPort}:${managementPort}`);
    expect(services.gateway!.ports).toContain(`${publicPort}:${publicPort}`);
  });
});

describe('telemetry', () => {
  it("Prometheus scrapes every service's /metrics on its management port", () => {
    const config = parse(readFileSync(join(repoRoot, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'grantline');
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs[0].targets.sort()).toEqual(
      SERVICES.map((s) => `${s}:${image.env.MANAGEMENT_PORT}`).sort(),
    );
  });

  it('Grafana provisions Prometheus and every dashboard JSON of deploy/grafana/', () => {
    const provider = parse(
      readFileSync(join(repoRoot, 'deploy/grafana/provisioning/dashboards/grantline.yaml'), 'utf8'),
    );
    expect(services.grafana!.volumes).toContain(`./deploy/grafana:${provider.providers[0].options.path}:ro`);
    const sources = parse(
      readFileSync(join(repoRoot, 'deploy/grafana/provisioning/datasources/grantline.yaml'), 'utf8'),
    );
    expect(sources.datasources.map((d: { url: string }) => d.url)).toEqual([
      'http://prometheus:9090',
      'http://jaeger:16686',
    ]);
    for (const file of readdirSync(join(repoRoot, 'deploy/grafana')).filter((f) => f.endsWith('.json')))
      expect(
        () => JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana', file), 'utf8')),
        file,
      ).not.toThrow();
  });

  it('the collector receives OTLP where the services send it and passes traces to Jaeger', () => {
    const collector = parse(readFileSync(join(repoRoot, 'deploy/otel/collector.yaml'), 'utf8'));
    const endpoint = new URL(services.registry!.environment!.OTEL_EXPORTER_OTLP_ENDPOINT!);
    expect(services).toHaveProperty([endpoint.hostname]);
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe(`0.0.0.0:${endpoint.port}`);
    expect(collector.service.pipelines.traces.exporters).toContain('otlp/jaeger');
    expect(new URL(`http://${collector.exporters['otlp/jaeger'].endpoint}`).hostname).toBe('jaeger');
  });
});
