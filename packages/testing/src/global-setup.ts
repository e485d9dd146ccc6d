import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { resolveInfrastructure } from './infra.ts';

/** Vitest global setup: real infrastructure once per run, shared by every test file through `inject`. */
export default async function setup(project: TestProject) {
  const { infra, stop } = await resolveInfrastructure();
  console.log(
    `infrastructure: postgres (${infra.origin.postgres}), redis (${infra.origin.redis}), kafka ${infra.kafkaBrokers.join(',')} (${infra.origin.kafka})`,
  );
  project.provide('infra', infra);
  return stop;
}

declare module 'vitest' {
  export interface ProvidedContext {
    infra: import('./infra.ts').Infrastructure;
  }
}
