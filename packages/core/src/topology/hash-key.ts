/**
 * FNV-1a of a key's text: where a partition or a batch key is placed among slots. Strings hash as
 * they are; anything else by its JSON (keys cross threads by copy, so content is what counts).
 */
export function hashKey(value: unknown): number {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
