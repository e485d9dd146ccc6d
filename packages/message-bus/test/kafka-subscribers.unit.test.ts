import { type Admin, AssignerProtocol } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { subscribersCaughtUp } from '../src/kafka-subscribers.ts';

const member = (topics: string[] | undefined) => ({
  memberId: 'm',
  clientId: 'grantline-x',
  clientHost: '/127.0.0.1',
  memberMetadata: topics
    ? AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) })
    : Buffer.alloc(0),
  memberAssignment: Buffer.alloc(0),
});

type State = 'reads grants' | 'reads tokens' | 'rebalancing' | 'empty';
/** a group's answers: its state at its nth description, its committed grants offset at its nth fetch (the last repeats) */
type Script = { states: State[]; offsets: string[] };

/** A broker's admin for the groups scripted (plus one of another deployment); counts what each is asked. */
const fakeAdmin = (groups: Record<string, Script>) => {
  const asked = { listed: 0, described: [] as string[], fetched: [] as string[] };
  const nth = <T>(xs: T[], n: number) => xs[Math.min(n, xs.length - 1)]!;
  const count = (xs: string[], id: string) => xs.filter((x) => x === id).length;
  const admin = {
    fetchTopicOffsets: async () => [{ partition: 0, offset: '10', high: '10', low: '0' }],
    listGroups: async () => {
      asked.listed++;
      return {
        groups: [...Object.keys(groups), 'elsewhere'].map((groupId) => ({
          groupId,
          protocolType: 'consumer',
        })),
      };
    },
    describeGroups: async (ids: string[]) => ({
      groups: ids.map((groupId) => {
        const state = nth(groups[groupId]!.states, count(asked.described, groupId));
        asked.described.push(groupId);
        if (state === 'empty') return { groupId, state: 'Empty', members: [] };
        if (state === 'rebalancing')
          return { groupId, state: 'PreparingRebalance', members: [member(undefined)] };
        return { groupId, state: 'Stable', members: [member([state.slice(6)])] };
      }),
    }),
    fetchOffsets: async ({ groupId }: { groupId: string }) => {
      const offset = nth(groups[groupId]!.offsets, count(asked.fetched, groupId));
      asked.fetched.push(groupId);
      return [{ topic: 'grants', partitions: [{ partition: 0, offset }] }];
    },
  };
  return { admin: admin as unknown as Admin, asked };
};

const wait = (admin: Admin, ms = 5_000) =>
  subscribersCaughtUp(admin, 'grants', 'p-', 'grantline', Date.now() + ms);

describe('read-your-writes polls (subscribersCaughtUp)', () => {
  it('lists the groups once, then describes and fetches only those not settled: readers behind and groups in a rebalance', async () => {
    const { admin, asked } = fakeAdmin({
      'p-reader': { states: ['reads grants'], offsets: ['4', '4', '10'] },
      'p-other': { states: ['reads tokens'], offsets: ['3'] },
      // in a rebalance, committed behind on grants: waited for, until it turns out to read tokens
      'p-moving': { states: ['rebalancing', 'reads tokens'], offsets: ['3'] },
    });
    expect(await wait(admin)).toBe(true);
    expect(asked.listed).toBe(1);
    expect(asked.described).toEqual(['p-reader', 'p-other', 'p-moving', 'p-reader', 'p-moving', 'p-reader']);
    expect(asked.fetched).toEqual(['p-reader', 'p-moving', 'p-reader', 'p-reader']);
  });

  it('waits for a group first seen in a rebalance with no commits that turns out to read the topic', async () => {
    const { admin, asked } = fakeAdmin({
      'p-reader': { states: ['reads grants'], offsets: ['4', '10'] },
      'p-new': { states: ['rebalancing', 'reads grants'], offsets: ['-1', '-1', '-1', '10'] },
    });
    expect(await wait(admin)).toBe(true);
    // asked about until it caught up, although the other reader was done at the second poll
    expect(asked.fetched.filter((g) => g === 'p-new')).toHaveLength(4);
  });

  it('is done without a group in a rebalance that never committed on the topic, once the readers are', async () => {
    const { admin } = fakeAdmin({
      'p-reader': { states: ['reads grants'], offsets: ['10'] },
      'p-new': { states: ['rebalancing'], offsets: ['-1'] },
    });
    expect(await wait(admin, 200)).toBe(true);
  });

  it('stops waiting for a reader whose group went empty, and answers false at the deadline while one stays behind', async () => {
    const gone = fakeAdmin({ 'p-reader': { states: ['reads grants', 'empty'], offsets: ['4'] } });
    expect(await wait(gone.admin)).toBe(true);
    const stuck = fakeAdmin({ 'p-reader': { states: ['reads grants'], offsets: ['4'] } });
    const started = Date.now();
    expect(await wait(stuck.admin, 200)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('answers false by the deadline when the broker stops answering (a silent host), not after its request timeout', async () => {
    const { admin } = fakeAdmin({ 'p-reader': { states: ['reads grants'], offsets: ['4'] } });
    const silent = Object.assign(Object.create(admin), {
      fetchOffsets: () => new Promise(() => {}),
    }) as Admin;
    const started = Date.now();
    expect(await wait(silent, 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
