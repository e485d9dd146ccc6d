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

/**
 * A broker's admin answers for three groups of the deployment: `reader` (stable, reads `grants`,
 * catches up at its third offset fetch), `other` (stable, reads another topic) and `joining` (in a
 * rebalance, so no subscriptions described, committed on `grants`; stable and reading another topic
 * from its second description). Counts what each group is asked.
 */
const fakeAdmin = () => {
  const asked = { listed: 0, described: [] as string[], fetched: [] as string[] };
  let readerFetches = 0;
  let joiningDescriptions = 0;
  const admin = {
    fetchTopicOffsets: async () => [{ partition: 0, offset: '10', high: '10', low: '0' }],
    listGroups: async () => {
      asked.listed++;
      return {
        groups: ['p-reader', 'p-other', 'p-joining', 'elsewhere'].map((groupId) => ({
          groupId,
          protocolType: 'consumer',
        })),
      };
    },
    describeGroups: async (ids: string[]) => {
      asked.described.push(...ids);
      return {
        groups: ids.map((groupId) => {
          if (groupId === 'p-joining' && joiningDescriptions++ === 0)
            return { groupId, state: 'PreparingRebalance', members: [member(undefined)] };
          const topics = groupId === 'p-reader' ? ['grants'] : ['tokens'];
          return { groupId, state: 'Stable', members: [member(topics)] };
        }),
      };
    },
    fetchOffsets: async ({ groupId }: { groupId: string }) => {
      asked.fetched.push(groupId);
      const offset = groupId === 'p-reader' ? (++readerFetches >= 3 ? '10' : '4') : '3';
      return [{ topic: 'grants', partitions: [{ partition: 0, offset }] }];
    },
  };
  return { admin: admin as unknown as Admin, asked };
};

describe('read-your-writes polls (subscribersCaughtUp)', () => {
  it('lists and describes the groups once, then asks only about the readers behind and the groups in a rebalance', async () => {
    const { admin, asked } = fakeAdmin();
    expect(await subscribersCaughtUp(admin, 'grants', 'p-', 'grantline', Date.now() + 5_000)).toBe(true);
    expect(asked.listed).toBe(1);
    // the first poll describes the deployment's three groups; the second only the one in a rebalance,
    // which then turns out to read another topic and is not asked about again
    expect(asked.described).toEqual(['p-reader', 'p-other', 'p-joining', 'p-joining']);
    // the reader until it caught up (third fetch); the group in a rebalance once (it had committed)
    expect(asked.fetched.filter((g) => g === 'p-reader')).toHaveLength(3);
    expect(asked.fetched.filter((g) => g === 'p-joining')).toHaveLength(1);
    expect(asked.fetched).not.toContain('p-other');
  });

  it('answers false at the deadline while a reader stays behind', async () => {
    const { admin } = fakeAdmin();
    const slow = Object.assign(Object.create(admin), {
      fetchOffsets: async () => [{ topic: 'grants', partitions: [{ partition: 0, offset: '4' }] }],
    }) as Admin;
    const started = Date.now();
    expect(await subscribersCaughtUp(slow, 'grants', 'p-', 'grantline', started + 200)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });
});
