import { type Admin, AssignerProtocol, type GroupDescription } from 'kafkajs';

/** The polls of committed offsets: at once, then after 5, 10, 20, 40 and every 50 ms. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

/**
 * Whether every live consumer group of a deployment (group ids starting with `groupPrefix`) that
 * reads `topic`, with a member whose client id starts with `clientIdPrefix`, has committed past what
 * the topic holds now; polls until `deadline` (epoch ms). Groups without members are not waited for;
 * groups in a rebalance are.
 *
 * Which groups read the topic, their live members' subscriptions tell (the metadata each member
 * joined with), asked afresh on every call: a list and one description, two requests. Not their
 * committed offsets, which outlive a subscription (a group that stopped reading a topic would be
 * waited for until every deadline). A member whose subscription cannot be read counts as a reader.
 * Each poll then costs an offset fetch per group still behind, with growing gaps, not every 10 ms.
 */
export const subscribersCaughtUp = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
  deadline: number,
): Promise<boolean> => {
  const ends = await admin.fetchTopicOffsets(topic);
  let pending = await readers(admin, topic, groupPrefix, clientIdPrefix);
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const behind = await Promise.all(
      pending.map(async (groupId) => {
        const committed = await committedOf(admin, groupId, topic);
        // an offset is the next to read; none committed (-1) has read nothing: a partition never
        // written (high 0) holds nothing to wait for
        return ends.some((e) => Number(e.high) > Math.max(0, committed.get(e.partition) ?? 0))
          ? groupId
          : undefined;
      }),
    );
    pending = behind.filter((g): g is string => g !== undefined);
    if (pending.length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
  }
};

const committedOf = async (admin: Admin, groupId: string, topic: string) => {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]));
};

/**
 * Grantline's live groups that read `topic` (a rebalance included: a new instance joining must not
 * let a write answer early): not empty nor dead, with a member of ours subscribed to it.
 */
const readers = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
): Promise<string[]> => {
  const { groups } = await admin.listGroups();
  const ours = groups
    .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(groupPrefix))
    .map((g) => g.groupId);
  if (ours.length === 0) return [];
  const described = await admin.describeGroups(ours);
  return described.groups
    .filter(
      (g) =>
        g.state !== 'Empty' &&
        g.state !== 'Dead' &&
        g.members.some((m) => m.clientId.startsWith(clientIdPrefix) && subscribes(m, topic)),
    )
    .map((g) => g.groupId);
};

const subscribes = (member: GroupDescription['members'][number], topic: string): boolean => {
  try {
    const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
    return metadata ? metadata.topics.includes(topic) : true;
  } catch {
    return true;
  }
};
