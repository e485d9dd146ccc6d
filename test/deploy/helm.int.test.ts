import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOPICS } from '@grantline/events';
import { CSRF_KEY_HOLDERS, CSRF_KEY_VARIABLE, KEY_PURPOSES, KEY_VARIABLES } from '@grantline/keys';
import { PUBLIC_FALLBACK, PUBLIC_ROUTES } from '@grantline/server';
import { beforeAll, describe, expect, it } from 'vitest';

// deploy/helm/validate lints and renders the chart with Helm's own engine (helm-java) and validates
// every object against the Kubernetes schema (ValidateChart.java). This test runs it, and compares
// what it rendered with the code's own tables: the gateway's routes, the key purposes, the topics.
const root = fileURLToPath(new URL('../..', import.meta.url));
const pom = `${root}deploy/helm/validate/pom.xml`;

const has = (command: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const missing = ['java', 'mvn'].filter((c) => !has(c));
if (missing.length > 0)
  console.warn(
    `skipping the Helm chart validation: ${missing.join(' and ')} not installed (.ci/run installs them)`,
  );

interface Run {
  code: number;
  lines: string[];
}

/** Lines of one kind (`INGRESS`, `SECRETENV`, ...) of one scenario, without those two words. */
const facts = (run: Run, kind: string, scenario: string) =>
  run.lines.filter((l) => l.startsWith(`${kind} ${scenario} `)).map((l) => l.split(' ').slice(2));

describe.skipIf(missing.length > 0)('the Helm chart (deploy/helm/grantline)', () => {
  let run: Run;
  let keys: string;
  beforeAll(async () => {
    // the newcomer's path: a values file of new keys from `pnpm keys:generate --helm`
    const dir = mkdtempSync(join(tmpdir(), 'grantline-helm-'));
    keys = execFileSync('node', ['--import', 'tsx', `${root}scripts/generate-keys.ts`, '--helm'], {
      cwd: root,
      encoding: 'utf8',
    });
    writeFileSync(join(dir, 'keys.yaml'), keys);
    // and the README's values file, as "Run it on Kubernetes" writes it
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const values = /cat > grantline-values\.yaml <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(readme)?.[1];
    expect(values, 'the values file of "Run it on Kubernetes"').toBeDefined();
    writeFileSync(join(dir, 'readme.yaml'), values!);
    const args = [
      `${root}deploy/helm/grantline`,
      `${root}deploy/helm/validate/target/rendered`,
      `generated=${dir}/keys.yaml`,
      `readme=${dir}/readme.yaml,${dir}/keys.yaml`,
    ].join(' ');
    run = await new Promise<Run>((resolve) => {
      // the first run on a machine resolves helm-java and the Kubernetes models from Maven Central
      execFile(
        'mvn',
        ['-q', '-B', '-f', pom, 'compile', 'exec:java', `-Dexec.args=${args}`],
        { timeout: 540_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          if (code !== 0) console.error(stdout, stderr);
          resolve({ code, lines: stdout.split('\n').map((l) => l.trim()) });
        },
      );
    });
    rmSync(dir, { recursive: true, force: true });
  }, 600_000);

  it('lints, renders both value sets, and every object passes the Kubernetes schema and the chart checks', () => {
    expect(run.lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.lines).toContain('LINT ok');
    expect(run.lines).toContain('OK');
    for (const scenario of ['default', 'production'])
      expect(run.lines.some((l) => new RegExp(`^RENDER ${scenario} [1-9][0-9]* objects$`).test(l))).toBe(
        true,
      );
    // the checks can fail: a misspelt field, a misspelt value and an Ingress path to the management
    // port were refused
    expect(run.lines.some((l) => l.startsWith('SELFCHECK schema refuses an unknown field'))).toBe(true);
    expect(run.lines.some((l) => l.startsWith('SELFCHECK values schema refuses a misspelt key'))).toBe(true);
    expect(run.lines.some((l) => l.startsWith('SELFCHECK chart checks refuse the management port'))).toBe(
      true,
    );
  });

  it('routes on the Ingress exactly the paths of the gateway route table, each to its service, on the public port', () => {
    const expected = [
      ...PUBLIC_ROUTES.map((r) => [r.prefix, 'Prefix', r.service, 'http']),
      ['/', 'Prefix', PUBLIC_FALLBACK, 'http'],
    ];
    for (const scenario of ['default', 'production'])
      expect(facts(run, 'INGRESS', scenario)).toEqual(expected);
  });

  it('gives each service exactly the keys of its role, each purpose from its own Secret', () => {
    const expected = new Set<string>();
    for (const spec of Object.values(KEY_PURPOSES)) {
      expected.add(`${spec.holder.service} ${spec.holder.variable}`);
      for (const user of spec.users) expected.add(`${user.service} ${user.variable}`);
    }
    for (const service of CSRF_KEY_HOLDERS) expected.add(`${service} ${CSRF_KEY_VARIABLE}`);
    for (const scenario of ['default', 'production']) {
      const given = facts(run, 'SECRETENV', scenario).filter(
        ([service, variable]) =>
          ['registry', 'authorization', 'consent', 'token', 'introspection'].includes(service!) &&
          KEY_VARIABLES.includes(variable!),
      );
      expect(new Set(given.map(([service, variable]) => `${service} ${variable}`))).toEqual(expected);
      // a private key's Secret reaches no service but its holder
      const secretOf = new Map(
        given.map(([service, variable, secret]) => [`${service} ${variable}`, secret]),
      );
      for (const spec of Object.values(KEY_PURPOSES)) {
        const privateSecret = secretOf.get(`${spec.holder.service} ${spec.holder.variable}`);
        const holders = given.filter(([, , secret]) => secret === privateSecret).map(([service]) => service);
        expect(holders).toEqual([spec.holder.service]);
      }
      const admin = facts(run, 'SECRETENV', scenario).filter(
        ([, variable]) => variable === 'GRANTLINE_ADMIN_TOKEN',
      );
      // the admin token: the services that check it, never the example resource server
      expect(admin.map(([service]) => service).sort()).toEqual(['consent', 'registry', 'token']);
    }
    // the example (enabled in production) runs on its pre-registered client's id and secret
    const example = facts(run, 'SECRETENV', 'production').filter(
      ([service]) => service === 'example-resource-server',
    );
    expect(example.map(([, variable, secret]) => `${variable} ${secret}`).sort()).toEqual([
      'GRANTLINE_CLIENT_ID grantline-example-resource-server/clientId',
      'GRANTLINE_CLIENT_SECRET grantline-example-resource-server/clientSecret',
    ]);
  });

  it('renders a NetworkPolicy only when asked: the public port from the ingress controller, the management port from the listed sources', () => {
    expect(facts(run, 'NETPOL', 'default')).toEqual([]);
    const rules: Record<string, { namespaceSelector?: unknown }[]> = Object.fromEntries(
      facts(run, 'NETPOL', 'production').map(([port, peers]) => [port, JSON.parse(peers!)]),
    );
    expect(Object.keys(rules).sort()).toEqual(['http', 'management']);
    const ingressController = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
    };
    expect(rules.http).toContainEqual(ingressController);
    expect(rules.management).not.toContainEqual(ingressController);
    expect(rules.management).toContainEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    });
    // within the release, the management port admits the five services only (not the example)
    const own = rules.management!.filter((p) => !p.namespaceSelector);
    expect(own).toEqual([
      {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': 'grantline', 'app.kubernetes.io/instance': 'grantline' },
          matchExpressions: [
            {
              key: 'app.kubernetes.io/component',
              operator: 'In',
              values: ['registry', 'authorization', 'consent', 'token', 'introspection'],
            },
          ],
        },
      },
    ]);
  });

  it('autoscales token and introspection, listens on every interface, and sets a partition count per topic', () => {
    for (const scenario of ['default', 'production']) {
      const scaled = facts(run, 'HPA', scenario).map(([service]) => service);
      expect(scaled).toEqual(expect.arrayContaining(['token', 'introspection']));
      const config: Record<string, string | undefined> = Object.fromEntries(
        facts(run, 'CONFIG', scenario).map(([key, value]) => [key, value]),
      );
      // the services listen on loopback by default: in a pod that is unreachable
      expect(config.HOST).toBe('0.0.0.0');
      expect(config.NODE_ENV).toBe('production');
      expect(config.PORT).not.toBe(config.MANAGEMENT_PORT);
      const partitions = Object.fromEntries(
        (config.KAFKA_TOPIC_PARTITIONS ?? '').split(',').map((pair: string) => pair.split('=')),
      );
      expect(Object.keys(partitions).sort()).toEqual(Object.values(TOPICS).sort());
      for (const count of Object.values(partitions)) expect(Number(count)).toBeGreaterThanOrEqual(1);
    }
    // the example resource server only when asked for
    expect(
      facts(run, 'OBJECT', 'default').some(([, name]) => name?.endsWith('example-resource-server')),
    ).toBe(false);
    expect(
      facts(run, 'OBJECT', 'production').some(([, name]) => name?.endsWith('example-resource-server')),
    ).toBe(true);
  });

  it('takes `pnpm keys:generate --helm` as it is: a Secret of its own for every key and token', () => {
    const ids = [...keys.matchAll(/^ {2}([a-zA-Z]+):$/gm)].map((m) => m[1]!);
    expect(ids.length).toBe(KEY_VARIABLES.length + 3); // one CSRF variable, two keys; the admin token; the KEK
    const secrets = facts(run, 'OBJECT', 'generated')
      .filter(([kind]) => kind === 'Secret')
      .map(([, name]) => name);
    for (const id of ids)
      expect(secrets).toContain(`grantline-${id.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  });

  it('installs as the README says: its values with the generated keys leave no Secret or connection unset', () => {
    const secrets = new Set(
      facts(run, 'OBJECT', 'readme')
        .filter(([kind]) => kind === 'Secret')
        .map(([, name]) => name),
    );
    const referenced = facts(run, 'SECRETENV', 'readme').map(([, , secret]) => secret!.split('/')[0]!);
    expect(referenced.length).toBeGreaterThan(0);
    for (const secret of referenced) expect(secrets).toContain(secret);
    expect(facts(run, 'INGRESS', 'readme').length).toBe(PUBLIC_ROUTES.length + 1);
  });
});
