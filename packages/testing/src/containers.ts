// Used only where a Docker engine answers (never on machines without one, so not exercised there).
import { KafkaContainer } from '@testcontainers/kafka';
import { PostgreSqlContainer } from '@testcontainers/postgresql';
import { RedisContainer } from '@testcontainers/redis';
import type { KafkaBroker, LocalProcess } from './processes.ts';

export const startPostgresContainer = async (): Promise<LocalProcess> => {
  const c = await new PostgreSqlContainer('postgres:15-alpine')
    .withUsername('postgres')
    .withPassword('postgres')
    .start();
  return {
    url: c.getConnectionUri().replace(/\/[^/]*$/, '/postgres'),
    stop: async () => void (await c.stop()),
  };
};

export const startRedisContainer = async (): Promise<LocalProcess> => {
  const c = await new RedisContainer('redis:7-alpine').start();
  return { url: c.getConnectionUrl(), stop: async () => void (await c.stop()) };
};

const kafkaImage = 'confluentinc/cp-kafka:7.9.0';

export const startKafkaContainer = async (): Promise<LocalProcess> => {
  const c = await new KafkaContainer(kafkaImage).withKraft().start();
  return { url: `${c.getHost()}:${c.getMappedPort(9093)}`, stop: async () => void (await c.stop()) };
};

export const startPausableKafkaContainer = async (): Promise<KafkaBroker> => {
  const c = await new KafkaContainer(kafkaImage).withKraft().start();
  const url = `${c.getHost()}:${c.getMappedPort(9093)}`;
  const exec = async (cmd: string[]) => void (await c.exec(cmd));
  return {
    url,
    brokers: [url],
    stop: async () => void (await c.stop()),
    // the broker process is paused inside its container: clients see it vanish, data is kept
    pause: () => exec(['sh', '-c', 'kill -STOP $(pgrep -f kafka.Kafka)']),
    resume: () => exec(['sh', '-c', 'kill -CONT $(pgrep -f kafka.Kafka)']),
  };
};
