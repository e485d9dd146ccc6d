import type { Admin } from 'kafkajs';

/**
 * Whether every live consumer group of a deployment (group ids starting with `groupPrefix`) that
 * reads `topic` (it has offsets committed there), with a member whose client id starts with
 * `clientIdPrefix`, has committed past what the topic holds now; polls until `deadline` (epoch ms).
 * Groups without members are not waited for; groups in a rebalance are.
 */
export const subscribersCaughtUp = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
  deadline: number,
): Promise<boolean> => {
  const ends = await admin.fetchTopicOffsets(topic);
  const { groups } = await admin.listGroups();
  const ours = groups
    .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(groupPrefix))
    .map((g) => g.groupId);
  if (ours.length === 0) return true;
  const described = await admin.describeGroups(ours);
  // Grantline's live groups (a rebalance included: a new instance joining must not let a write
  // answer early); which of them read this topic, their committed offsets tell.
  const live = described.groups
    .filter(
      (g) =>
        g.state !== 'Empty' &&
        g.state !== 'Dead' &&
        g.members.some((m) => m.clientId.startsWith(clientIdPrefix)),
    )
    .map((g) => g.groupId);
  const committedOf = async (groupId: string) => {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]));
  };
  const initial = await Promise.all(live.map(async (g) => [g, await committedOf(g)] as const));
  let pending = initial.filter(([, c]) => [...c.values()].some((o) => o >= 0)).map(([g]) => g);
  for (;;) {
    const behind = await Promise.all(
      pending.map(async (groupId) => {
        const committed = await committedOf(groupId);
        return ends.some((e) => Number(e.high) > (committed.get(e.partition) ?? -1)) ? groupId : undefined;
      }),
    );
    pending = behind.filter((g): g is string => g !== undefined);
    if (pending.length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
};
