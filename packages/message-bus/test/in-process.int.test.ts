import { PGlite } from '@electric-sql/pglite';
import { migrate, pglitePool } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { afterAll, beforeAll } from 'vitest';
import { InProcessMessageBus } from '../src/in-process.ts';
import { messageBusContract } from './contract.ts';

/** The embedded adapter of the message bus: its log and offsets in PGlite, in process. */
const pool = pglitePool(new PGlite());
const bus = new InProcessMessageBus({ pool, logger: { warn: () => {} } });
beforeAll(async () => {
  await migrate(pool, 'consent');
  await bus.ensureTopics([{ topic: TOPICS.revocations, compacted: true }]);
});
afterAll(async () => {
  await bus.close();
  await pool.end();
});

messageBusContract(
  'in-process (PGlite)',
  () => bus,
  () => ({ pool, schema: 'consent' }),
);
