import type { ConsumeMessage } from 'amqplib';

/** The AMQP delivery fields and message properties `metadata` may copy into `message.metadata`. */
export const METADATA_KEYS = [
  'deliveryTag',
  'redelivered',
  'exchange',
  'routingKey',
  'consumerTag',
  'headers',
  'contentType',
  'contentEncoding',
  'deliveryMode',
  'priority',
  'correlationId',
  'replyTo',
  'expiration',
  'messageId',
  'timestamp',
  'type',
  'userId',
  'appId',
  'clusterId',
] as const;

export type MetadataKey = (typeof METADATA_KEYS)[number];

const FIELDS = new Set<string>(['deliveryTag', 'redelivered', 'exchange', 'routingKey', 'consumerTag']);

/**
 * Builds `message.metadata` from the selected keys. Absent properties are left out, so that a
 * message with none stays `{}`: an empty metadata object is what lets a string payload cross to
 * a thread without the v8 serializer.
 */
export function selectMetadata(keys: readonly MetadataKey[], msg: ConsumeMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (keys.length === 0) return out;
  const fields = msg.fields as unknown as Record<string, unknown>;
  const properties = msg.properties as unknown as Record<string, unknown>;
  for (const key of keys) {
    const value = FIELDS.has(key) ? fields[key] : properties[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
