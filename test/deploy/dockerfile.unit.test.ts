// A Dockerfile lint without a Docker engine or hadolint (neither exists here): dockerfile-utils'
// validator (the VS Code Docker extension's: syntax, flags, instruction arguments) plus the rules this
// project holds its image to, checked on dockerfile-ast's parse. It does not build the image; the
// production start test (production-start.e2e.test.ts) runs what the image runs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@grantline/testing';
import type { ModifiableInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../scripts/build/entries.ts';
import { readDockerfile } from './dockerfile.ts';

const image = readDockerfile();

describe('deploy/docker/Dockerfile', () => {
  it('has no problem dockerfile-utils reports', () => {
    const problems = validate(image.text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('is multi-stage, every base image pinned to an exact version (no latest, no floating major)', () => {
    expect(image.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of image.stages) {
      expect(stage.digest ?? stage.tag, stage.reference).toMatch(
        /^(sha256:[a-f0-9]{64}|\d+\.\d+\.\d+(-[\w.-]+)?)$/,
      );
    }
  });

  it('runs as an unprivileged user, in exec form, with a HEALTHCHECK in exec form', () => {
    expect(image.user).toBeDefined();
    expect(image.user).not.toMatch(/^(root|0)(:|$)/);
    expect(image.entrypoint, 'ENTRYPOINT in exec form').toBeDefined();
    expect(image.cmd, 'CMD in exec form').toBeDefined();
    expect(image.healthcheck, 'HEALTHCHECK').toBeDefined();
    expect(image.healthcheckCommand?.[0]).toBe('node');
    expect(image.env.NODE_ENV).toBe('production');
  });

  it('starts the embedded mode by default, and every command it documents exists', () => {
    expect(image.entrypoint?.at(-1)).toBe('/app/dist/grantline.js');
    expect(image.cmd).toEqual(['embedded']);
    const documented = [...image.text.matchAll(/grantline ([a-z-]+(?:\|[a-z-]+)*)/g)]
      .flatMap((m) => m[1]!.split('|'))
      .filter((c) => c !== 'grantline');
    for (const command of documented) expect(Object.keys(COMMANDS)).toContain(command);
  });

  it('exposes the public and management ports it listens on', () => {
    expect(image.exposed).toEqual([image.env.PORT, image.env.MANAGEMENT_PORT]);
  });

  it('fetches nothing with ADD, and copies only files that exist and are in the build context', () => {
    expect(image.instructions.filter((i) => i.getKeyword() === 'ADD')).toEqual([]);
    const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['.git', '**/node_modules', '.grantline', 'dist', 'build'])
      expect(ignored).toContain(entry);
    const copies = image.runtime.filter((i) => i.getKeyword() === 'COPY');
    for (const copy of copies) {
      const flags = (copy as ModifiableInstruction).getFlags().map((f) => f.getName());
      if (flags.includes('from')) continue;
      const sources = copy
        .getArguments()
        .map((a) => a.getValue())
        .slice(0, -1);
      for (const source of sources) expect(existsSync(join(repoRoot, source)), source).toBe(true);
    }
  });
});
