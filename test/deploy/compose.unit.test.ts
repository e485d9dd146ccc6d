// docker-compose.yml without `docker compose` (the docker client here has no compose plugin, and no
// engine runs): validated against the Compose specification's JSON schema (test/deploy/compose-spec/,
// from github.com/compose-spec/compose-spec, Apache-2.0), and checked against the repository: what
// it mounts exists, what it depends on is defined and healthy, the gateway routes as routes.ts does
// and keeps the management ports off the public origin, Prometheus scrapes every service's /metrics.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANAGEMENT_ROUTES, PUBLIC_FALLBACK, PUBLIC_ROUTES } from '@grantline/server';
import { repoRoot } from '@grantline/testing';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMANDS } from '../../scripts/build/entries.ts';
import { mountsOf, readCompose, readNginx } from './compose.ts';
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
      [...SERVICES, 'keys', 'example-registration', 'resource-server-example'].sort(),
    );
    for (const [name, service] of grantline) {
      expect(Object.keys(COMMANDS), name).toContain(service.command?.[0]);
      expect(service.build).toEqual({ context: '.', dockerfile: 'deploy/docker/Dockerfile' });
      if (name !== 'keys' && name !== 'example-registration')
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
      for (const { source } of mountsOf(service)) {
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

describe('keys by purpose in compose: each container reads only its own', () => {
  /** the directories of the `keys` volume each service may mount (the volume's root: `keys` alone) */
  const ALLOWED: Record<string, string[]> = {
    ...Object.fromEntries(SERVICES.map((s) => [s, [s]])),
    'example-registration': ['admin', 'resource-server-example'],
    'resource-server-example': ['resource-server-example'],
  };
  /** every mount of the `keys` volume: service, directory (undefined: the whole volume), read-only */
  const keyMounts = Object.entries(services).flatMap(([name, service]) =>
    mountsOf(service)
      .filter((m) => m.type === 'volume' && m.source === 'keys')
      .map((m) => ({ name, subpath: m.volume?.subpath, readOnly: m.read_only === true, target: m.target })),
  );

  it('no service but the one-shot `keys` mounts the whole volume, and each mounts only its own directories', () => {
    expect(keyMounts.filter((m) => m.subpath === undefined).map((m) => m.name)).toEqual(['keys']);
    const mounted: Record<string, string[]> = {};
    for (const m of keyMounts.filter((k) => k.subpath !== undefined))
      mounted[m.name] = [...(mounted[m.name] ?? []), m.subpath!];
    expect(mounted).toEqual(ALLOWED);
    // long-running services mount their keys read-only; only the registration step writes (its output)
    for (const m of keyMounts.filter((k) => k.name !== 'keys'))
      if (!(m.name === 'example-registration' && m.subpath === 'resource-server-example'))
        expect(m.readOnly, `${m.name}: ${m.subpath}`).toBe(true);
  });

  it("what the `keys` command writes puts each service's keys, and the admin token, only where compose lets the right containers see them", () => {
    const dir = mkdtempSync(join(tmpdir(), 'grantline-compose-keys-'));
    try {
      execFileSync('node', ['--import', 'tsx', join(repoRoot, 'scripts/write-keys.ts'), 'keys', dir], {
        cwd: repoRoot,
        stdio: 'pipe',
      });
      const adminToken = readFileSync(join(dir, 'admin', 'admin-token'), 'utf8').trim();
      expect(adminToken.length).toBeGreaterThanOrEqual(32);
      /** every file a service sees: the directories it mounts */
      const visible = (name: string) =>
        keyMounts
          .filter((m) => m.name === name)
          .flatMap((m) =>
            readdirSync(join(dir, m.subpath!)).map((f) => ({
              path: `${m.target}/${f}`,
              text: readFileSync(join(dir, m.subpath!, f), 'utf8'),
            })),
          );
      const secretsOf = (text: string) => [...text.matchAll(/^\w+='(.*)'$/gm)].map((m) => m[1]!);
      const ownSecrets = Object.fromEntries(
        SERVICES.map((s) => [s, secretsOf(readFileSync(join(dir, s, `${s}.env`), 'utf8'))]),
      );
      for (const name of Object.keys(ALLOWED)) {
        const files = visible(name);
        const text = files.map((f) => f.text).join('\n');
        // the admin token: the services that check it, and the step that registers the example
        expect(text.includes(adminToken), `${name} sees the admin token`).toBe(
          ['registry', 'token', 'consent', 'example-registration'].includes(name),
        );
        // no key of another service
        for (const other of SERVICES.filter((s) => s !== name))
          for (const secret of ownSecrets[other]!.filter((v) => v !== adminToken))
            expect(text.includes(secret), `${name} sees a key of ${other}`).toBe(false);
        const envFile = services[name]!.environment?.GRANTLINE_ENV_FILE;
        if (name !== 'resource-server-example')
          expect(
            files.map((f) => f.path),
            name,
          ).toContain(envFile);
      }
      // the example's directory is there to be mounted, empty until the registration step
      expect(readdirSync(join(dir, 'resource-server-example'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the example resource server holds no admin token and does not share the gateway network namespace', () => {
    const example = services['resource-server-example']!;
    expect(Object.keys(example.environment ?? {}).filter((k) => /ADMIN|MANAGEMENT/.test(k))).toEqual([]);
    // the admin token by environment: nowhere (it comes from the admin/ directory)
    for (const [name, service] of Object.entries(services))
      expect(service.environment?.GRANTLINE_ADMIN_TOKEN, name).toBeUndefined();
    const owner = example.network_mode?.replace(/^service:/, '');
    expect(owner).toBe('example-network');
    const namespace = services[owner!]!;
    expect(namespace.image).toMatch(/^nginx:/);
    expect(namespace.network_mode).toBeUndefined();
    // on its own network, with the gateway only; not on the services' network
    expect(Object.keys(namespace.networks ?? {})).toEqual(['example']);
    for (const [name, service] of Object.entries(services))
      if (name !== owner && Object.hasOwn(service.networks ?? {}, 'example')) expect(name).toBe('gateway');
    const address = namespace.networks!.example!.ipv4_address!;
    expect(address).toMatch(/^10\.213\.1\./);
    expect(compose.networks.example?.ipam?.config?.[0]?.subnet).toBe('10.213.1.0/24');
    // its published port is its own, no longer the gateway's
    expect(namespace.ports).toContain('8090:8090');
    expect(services.gateway!.ports?.some((p) => p.endsWith(':8090'))).toBe(false);
    // the gateway's management listener refuses the example's address
    const nginx = readFileSync(join(repoRoot, 'deploy/nginx/grantline.conf'), 'utf8').replace(/#.*$/gm, '');
    const management = nginx.split(/\bserver\s*\{/).find((b) => /listen\s+9080;/.test(b))!;
    expect(management).toContain(`deny ${address};`);
    // the issuer origin inside its namespace is forwarded to the gateway's public port, not the management one
    const forward = readFileSync(join(repoRoot, 'deploy/nginx/example-issuer.conf'), 'utf8');
    expect(namespace.volumes).toContain('./deploy/nginx/example-issuer.conf:/etc/nginx/nginx.conf:ro');
    const issuer = new URL(example.environment!.GRANTLINE_ISSUER!);
    expect(forward).toMatch(new RegExp(`listen ${issuer.hostname}:${issuer.port};`));
    expect(forward).toMatch(/proxy_pass gateway:8080;/);
    expect(issuer.origin).toBe(new URL(services.registry!.environment!.GRANTLINE_ISSUER!).origin);
  });

  it('the example is registered once, by a one-shot step after the gateway is healthy, for its own URL', () => {
    const step = services['example-registration']!;
    expect(step.restart).toBe('no');
    expect(step.command).toEqual(['keys', '--register-example', '/example']);
    expect(step.depends_on?.gateway?.condition).toBe('service_healthy');
    expect(step.environment?.GRANTLINE_EXAMPLE_RESOURCE).toBe(
      services['resource-server-example']!.environment?.PUBLIC_URL,
    );
    expect(services['resource-server-example']!.depends_on?.['example-registration']?.condition).toBe(
      'service_completed_successfully',
    );
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
