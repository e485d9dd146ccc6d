import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const canBind = (port: number): Promise<boolean> =>
  new Promise((ok) => {
    const server = createServer();
    server.unref();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });

/**
 * `count` consecutive ports free right now, below the kernel's ephemeral range (32768 and up on
 * Linux), so that no outgoing connection of a parallel test can take one between this check and
 * the listen that follows it (a port the OS hands out for `listen(0)` is in that range and can).
 */
export const freePorts = async (count: number): Promise<number> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canBind(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports between 20000 and 32000`);
};

/** A port free right now, outside the ephemeral range (see `freePorts`). */
export const freePort = (): Promise<number> => freePorts(1);

export const portOpen = (port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> =>
  new Promise((ok) => {
    const socket = new Socket();
    const done = (open: boolean) => {
      socket.destroy();
      ok(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });

export const waitForPort = async (port: number, timeoutMs: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline) throw new Error(`${what} did not open port ${port} within ${timeoutMs} ms`);
    await sleep(100);
  }
};

export interface LocalProcess {
  url: string;
  stop(): Promise<void>;
}

const stopChild = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
};

/** Redis from Debian's `redis-server`, on a free port, keeping nothing on disk. */
export const startLocalRedis = async (): Promise<RestartableRedis> => {
  const port = await freePort();
  const spawnRedis = async () => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    await waitForPort(port, 10_000, 'redis-server');
    return child;
  };
  let child: ChildProcess | undefined = await spawnRedis();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child) await stopChild(child);
      child = undefined;
    },
    start: async () => {
      child ??= await spawnRedis();
    },
  };
};

export interface RestartableRedis extends LocalProcess {
  port: number;
  /** starts it again on the same port after `stop`, empty (it keeps nothing on disk) */
  start(): Promise<void>;
}

const postgresBin = (): string | undefined => {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  return version ? join(base, version, 'bin') : undefined;
};

export const postgresAvailable = (): boolean => postgresBin() !== undefined;

export interface PostgresServer extends LocalProcess {
  /** a fast shutdown (open sessions are ended with 57P01), keeping the data, as in a restart */
  pause(): Promise<void>;
  /** starts it again on the same port with the same data */
  resume(): Promise<void>;
}

/** Postgres from Debian's packages: a throwaway cluster in a temp dir, on a free port, trust auth. */
export const startLocalPostgres = async (): Promise<PostgresServer> => {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'grantline-pg-'));
  const data = join(dir, 'data');
  // initdb and postgres refuse to run as root; Debian's package creates the `postgres` user.
  const asUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asUser.length > 0) execFileSync('chown', ['postgres', dir]);
  const run = (cmd: string, args: string[]) => {
    const [file, ...rest] = [...asUser, join(bin, cmd), ...args];
    return { file: file!, args: rest };
  };
  const init = run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  execFileSync(init.file, init.args, { stdio: 'ignore' });
  const server = run('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
  ]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const start = async () => {
    const child = spawn(server.file, server.args, { stdio: 'ignore' });
    await waitForPort(port, 30_000, 'postgres');
    // the port opens before recovery ends ("the database system is starting up"): wait for a query
    for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      const ok = await client.connect().then(
        () => client.query('SELECT 1').then(() => true),
        () => false,
      );
      await client.end().catch(() => {});
      if (ok) return child;
      if (Date.now() > deadline) throw new Error('postgres did not accept queries within 30 s');
    }
  };
  let child = await start();
  // SIGINT to the postmaster itself (its pid heads postmaster.pid) is a fast shutdown; a signal to
  // `runuser` would reach it as SIGTERM (a smart shutdown that waits for every client) and then SIGKILL.
  const shutDown = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGINT');
    await Promise.race([exited, sleep(30_000).then(() => child.kill('SIGKILL'))]);
  };
  return {
    url,
    pause: shutDown,
    resume: async () => {
      child = await start();
    },
    stop: async () => {
      await shutDown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

export interface KafkaBroker extends LocalProcess {
  brokers: string[];
  /** stops the broker, keeping its data, as in an outage */
  pause(): Promise<void>;
  /** starts it again on the same port with the same data */
  resume(): Promise<void>;
}

const kafkaScript = join(repoRoot, 'test', 'infra', 'kafka-broker.sh');

/**
 * Apache Kafka 3.9.1 from Maven Central jars in KRaft mode, via test/infra/kafka-broker.sh;
 * `steadyState`: with the JVM's full tiered compilation (the script's KAFKA_JIT_OPTS empty).
 */
export const startLocalKafka = async (options: { steadyState?: boolean } = {}): Promise<KafkaBroker> => {
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const env = {
    ...process.env,
    ...(options.steadyState ? { KAFKA_JIT_OPTS: '' } : {}),
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_WORK_DIR: join(tmpdir(), `grantline-kafka-${port}`),
  };
  // Asynchronous, so the caller's event loop (writers, relays under test) keeps running meanwhile.
  const script = async (command: string, extra: Record<string, string> = {}) =>
    (
      await execFileAsync('bash', [kafkaScript, command], {
        env: { ...env, ...extra },
        encoding: 'utf8',
        timeout: 300_000,
      })
    ).stdout.trim();
  const address = await script('start');
  return {
    url: address,
    brokers: [address],
    stop: async () => {
      await script('stop');
    },
    pause: async () => {
      await script('stop', { KAFKA_KEEP_WORK_DIR: '1' });
    },
    resume: async () => {
      await script('start', { KAFKA_KEEP_DATA: '1' });
    },
  };
};

/** Whether an executable is on the PATH (looked up, not run: running `mvn -v` costs a JVM start). */
export const onPath = (name: string): boolean =>
  (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, name)));

export const javaAvailable = (): boolean => onPath('java') && onPath('mvn');

export const dockerAvailable = (): boolean => {
  try {
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], {
      stdio: 'ignore',
      timeout: 5_000,
    });
    return true;
  } catch {
    return false;
  }
};

export interface ScriptProcess {
  child: ChildProcess;
  /** stdout and stderr so far */
  output(): string;
  /** resolves with the exit code, or the signal's name */
  exited: Promise<number | string | null>;
}

/** Runs a TypeScript file of the repo in a Node process of its own (tsx), collecting its output. */
export const spawnScript = (script: string, env: Record<string, string | undefined> = {}): ScriptProcess => {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx/esm', join(repoRoot, script)], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  return { child, output: () => output, exited };
};
