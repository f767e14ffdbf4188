import { isEmpty, type CallInput, type MessageInit, type MetadataColumns, type Wanted } from '@throughway/workers/internal';
import { wantsData, type MainMessage } from '../message.js';

function initOf(m: MainMessage, withMetadata: boolean): MessageInit | undefined {
  const metadata = withMetadata && !isEmpty(m.metadata);
  if (m.batcher === 'default' && m.batchKey === 'default' && m.batchMode === 'bulk' && !metadata) return undefined;
  return { metadata: metadata ? m.metadata : undefined, batcher: m.batcher, batchKey: m.batchKey, batchMode: m.batchMode };
}

/** Columns when every message has the keys of the first, all with primitive values. */
function metadataColumns(messages: MainMessage[]): MetadataColumns | undefined {
  const first = messages[0]!.metadata;
  const keys = Object.keys(first);
  if (keys.length === 0) return undefined;
  const columns: unknown[][] = keys.map(() => new Array(messages.length));
  for (let i = 0; i < messages.length; i++) {
    const metadata = messages[i]!.metadata;
    let count = 0;
    for (const key in metadata) {
      const k = keys.indexOf(key);
      const value = metadata[key];
      if (k < 0 || (value !== null && typeof value === 'object') || typeof value === 'function') return undefined;
      columns[k]![i] = value;
      count++;
    }
    if (count !== keys.length) return undefined;
  }
  return { keys, columns };
}

/** Which messages' acknowledgers read processed data: all (`true`), some (indices) or none. */
export function wantedOf(messages: readonly MainMessage[]): Wanted | undefined {
  let some: number[] | undefined;
  let all = true;
  for (let i = 0; i < messages.length; i++) {
    if (wantsData(messages[i]!)) (some ??= []).push(i);
    else all = false;
  }
  if (all && messages.length > 0) return true;
  return some;
}

/**
 * One processor call as it goes to the runners: data, the fields that are not defaults, and
 * which messages want their processed data back. `columns`: send uniform metadata as columns,
 * which cross threads several times cheaper than one object per message.
 */
export function toCallInput(messages: MainMessage[], columns: boolean): CallInput {
  const n = messages.length;
  const datas = new Array(n);
  const metadata = columns ? metadataColumns(messages) : undefined;
  let inits: (MessageInit | undefined)[] | undefined;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    datas[i] = m.data;
    const init = initOf(m, metadata === undefined);
    if (init) (inits ??= new Array(n))[i] = init;
  }
  const input: CallInput = { datas };
  if (inits) input.inits = inits;
  if (metadata) input.metadataColumns = metadata;
  const want = wantedOf(messages);
  if (want) input.want = want;
  return input;
}
