import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@grantline/testing';
import { parse } from 'yaml';

/** A volume of the long syntax (`type: volume`, `subpath`) or a bind mount's. */
export interface VolumeMount {
  type: string;
  source: string;
  target: string;
  read_only?: boolean;
  volume?: { subpath?: string };
}

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | VolumeMount)[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  network_mode?: string;
  networks?: Record<string, { ipv4_address?: string } | null>;
  restart?: string;
}

export interface ComposeFile {
  name: string;
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
  networks: Record<string, { ipam?: { config?: { subnet: string }[] } }>;
}

/** Each mount of a service in one shape: the short syntax `source:target[:ro]` as the long one. */
export const mountsOf = (service: ComposeService): VolumeMount[] =>
  (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return v;
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    return {
      type: source.startsWith('.') || source.startsWith('/') ? 'bind' : 'volume',
      source,
      target,
      read_only: mode === 'ro',
    };
  });

/** docker-compose.yml as compose reads it: YAML with merge keys (`<<: *anchor`) resolved. */
export const readCompose = (): ComposeFile =>
  parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as ComposeFile;

export interface NginxServer {
  listen: number;
  /** `= /p` and `^~ /p/` and `/`, each with the upstream it proxies to (undefined: answered by nginx) */
  locations: { modifier: string; path: string; upstream: string | undefined }[];
}

/** The upstreams and servers of deploy/nginx/grantline.conf (the one-line forms it is written in). */
export const readNginx = () => {
  const text = readFileSync(join(repoRoot, 'deploy', 'nginx', 'grantline.conf'), 'utf8').replace(
    /#.*$/gm,
    '',
  );
  const upstreams = Object.fromEntries(
    [...text.matchAll(/upstream\s+(\w+)\s*\{\s*server\s+([\w.-]+):(\d+);\s*\}/g)].map((m) => [
      m[1]!,
      { host: m[2]!, port: Number(m[3]) },
    ]),
  );
  const servers: NginxServer[] = text
    .split(/\bserver\s*\{/)
    .slice(1)
    .map((body) => ({
      listen: Number(/listen\s+(\d+);/.exec(body)?.[1]),
      locations: [...body.matchAll(/location\s+(=|\^~)?\s*(\S+)\s*\{([^}]*)\}/g)].map((m) => ({
        modifier: m[1] ?? '',
        path: m[2]!,
        upstream: /proxy_pass\s+http:\/\/(\w+);/.exec(m[3]!)?.[1],
      })),
    }));
  return { upstreams, servers };
};
