// The files of pack-check.mjs's scratch projects: handler modules and main files written as the
// READMEs show them. Each main file checks its own outcome (rows in the table, acks) and prints
// one line that pack-check.mjs looks for; a pipeline that does not finish fails by timeout.

const sqliteHandlersJs = `// handlers.js — loaded in every worker thread
import Database from 'better-sqlite3';
import { definePipeline, Message, sqliteRepo, timestamps, expectCount } from '@throughway/workers';

export default definePipeline({
  setup(context, { kind }) {
    if (kind !== 'batcher') return context; // only batch threads write
    const db = new Database(context.file, { timeout: 10000 });
    return { ...context, db, repo: sqliteRepo(db) };
  },
  handleMessage(_processor, message) {
    const order = JSON.parse(message.data);
    if (!order.id) return Message.failed(message, 'missing id');
    return Message.putBatchKey(Message.putData(message, order), order.kind);
  },
  async handleBatch(_batcher, messages, _batchInfo, { repo }) {
    const rows = messages.map((m) => ({ ...m.data, ...timestamps() }));
    expectCount(await repo.insertAll('orders', rows, { onConflict: 'nothing' }), rows);
    return messages;
  },
  teardown: (context) => context.db?.close(),
});
`;

const sqliteMainJs = `// main.js — the coordinator, on the main thread
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Pipeline, fromIterable } from '@throughway/core';

const file = fileURLToPath(new URL('./js.db', import.meta.url));
const setup = new Database(file);
setup.exec('DROP TABLE IF EXISTS orders; CREATE TABLE orders (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL)');
setup.close();

const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: i + 1, kind: ['pizza', 'drink', 'side'][i % 3], amount: i }));
lines.splice(150, 0, JSON.stringify({ kind: 'pizza', amount: 1 })); // no id: fails

let acked = 0;
let failed = 0;
let done;
const finished = new Promise((resolve) => (done = resolve));
const acknowledger = {
  ack(_ref, successful, failedMessages) {
    acked += successful.length;
    failed += failedMessages.length;
    if (acked + failed === lines.length) done();
  },
};

const pipeline = await Pipeline.start({
  name: 'pack-check-js',
  handlers: new URL('./handlers.js', import.meta.url),
  producer: { module: fromIterable(lines, { acknowledger: { module: acknowledger, ref: 'lines' } }) },
  processors: { default: { concurrency: 2 } },
  batchers: { default: { batchSize: 50, batchTimeout: 100 } },
  context: { file },
});
await finished;
const { unacked } = await pipeline.stop();

const db = new Database(file, { readonly: true });
const { rows, total } = db.prepare('SELECT count(*) AS rows, sum(amount) AS total FROM orders').get();
db.close();
if (rows !== 300 || total !== (299 * 300) / 2 || unacked !== 0) throw new Error(\`expected 300 rows summing to 44850 and nothing unacked, got \${rows} rows, sum \${total}, \${unacked} unacked\`);
console.log(\`js: \${rows} rows written, \${acked} acked, \${failed} failed\`);
`;

const sqliteHandlersTs = `// handlers.ts — loaded in every worker thread, through tsx
import Database from 'better-sqlite3';
import { definePipeline, Message, sqliteRepo, timestamps, expectCount, type Repo, type ThroughwayMessage } from '@throughway/workers';

interface Order {
  id: number;
  kind: string;
  amount: number;
}
interface Context {
  file: string;
  db?: Database.Database;
  repo?: Repo;
}

function isOrder(value: unknown): value is Order {
  const o = value as Partial<Order>;
  return typeof o?.id === 'number' && typeof o.kind === 'string' && typeof o.amount === 'number';
}

export default definePipeline<Context>({
  setup(context, { kind }) {
    if (kind !== 'batcher') return context;
    const db = new Database(context.file, { timeout: 10000 });
    return { ...context, db, repo: sqliteRepo(db) };
  },
  handleMessage(_processor, message: ThroughwayMessage) {
    const order: unknown = JSON.parse(String(message.data));
    // retry: false dead-letters the row at once instead of retrying it
    if (!isOrder(order)) return Message.configureAck(Message.failed(message, 'not an order'), { retry: false });
    return Message.putData(message, order);
  },
  async handleBatch(_batcher, messages, _batchInfo, { repo }) {
    const rows = messages.map((m) => ({ ...(m.data as Order), ...timestamps() }));
    expectCount(await repo!.insertAll('orders', rows), rows);
    return messages;
  },
  teardown: (context) => {
    context.db?.close();
  },
});
`;

const sqliteMainTs = `// main.ts — run with: npx tsx main.ts
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Pipeline } from '@throughway/core';
import { countPending, deadLetters, enqueue, migrate, sqliteQueue } from '@throughway/sqlite-producer';

const file = fileURLToPath(new URL('./ts.db', import.meta.url));
const db = new Database(file);
db.exec('DROP TABLE IF EXISTS orders; CREATE TABLE orders (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL)');
migrate(db, { table: 'incoming' });
const payloads: string[] = Array.from({ length: 250 }, (_, i) => JSON.stringify({ id: i + 1, kind: 'pizza', amount: 2 }));
payloads.push('{"broken": true}');
enqueue(db, payloads, { table: 'incoming' });

const queue = sqliteQueue({ database: file, table: 'incoming', maxAttempts: 3 });
const pipeline: Pipeline = await Pipeline.start({
  name: 'pack-check-ts',
  handlers: new URL('./handlers.ts', import.meta.url),
  producer: { module: queue },
  processors: { default: { concurrency: 2 } },
  batchers: { default: { batchSize: 40, batchTimeout: 100 } },
  context: { file },
});

const deadline = Date.now() + 60_000;
while (countPending(db, { table: 'incoming' }) > 0) {
  if (Date.now() > deadline) throw new Error(\`the queue did not drain: \${countPending(db, { table: 'incoming' })} rows pending\`);
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await pipeline.stop();

const rows = (db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n;
const dead = deadLetters(db, { table: 'incoming' });
db.close();
if (rows !== 250 || dead.length !== 1) throw new Error(\`expected 250 rows and 1 dead letter, got \${rows} and \${dead.length}\`);
console.log(\`ts: \${rows} rows written, queue empty, \${dead.length} dead-lettered (\${queue.stats().acked} acked)\`);
`;

const tsconfig = JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: ['node'],
    },
    files: ['main.ts', 'handlers.ts'],
  },
  null,
  2,
);

const pgHandlersJs = `// handlers.js — Postgres only: no better-sqlite3 anywhere
import pg from 'pg';
import { definePipeline, postgresRepo, timestamps, expectCount } from '@throughway/workers';

export default definePipeline({
  setup(context, { kind }) {
    if (kind !== 'batcher') return context;
    const pool = new pg.Pool({ ...context.pg, max: 1, application_name: 'throughway-pack-check' });
    return { ...context, pool, repo: postgresRepo(pool) };
  },
  handleMessage: (_processor, message) => message,
  async handleBatch(_batcher, messages, _batchInfo, { repo, table }) {
    const rows = messages.map((m) => ({ id: m.data, ...timestamps() }));
    expectCount(await repo.insertAll(table, rows), rows);
    return messages;
  },
  teardown: (context) => context.pool?.end(),
});
`;

const pgMainJs = `// main.js — Postgres only
import pg from 'pg';
import { Pipeline, fromIterable } from '@throughway/core';

const config = JSON.parse(process.env.PACK_CHECK_PG);
const table = \`pack_check_\${process.pid}_\${Math.random().toString(36).slice(2, 8)}\`;
const client = new pg.Client(config);
await client.connect();
await client.query(\`CREATE TABLE \${table} (id integer PRIMARY KEY, inserted_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)\`);
try {
  let acked = 0;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const acknowledger = { ack(_ref, successful) { acked += successful.length; if (acked === 200) done(); } };
  const pipeline = await Pipeline.start({
    name: 'pack-check-pg',
    handlers: new URL('./handlers.js', import.meta.url),
    producer: { module: fromIterable(Array.from({ length: 200 }, (_, i) => i + 1), { acknowledger: { module: acknowledger, ref: 'ids' } }) },
    processors: { default: { concurrency: 1 } },
    batchers: { default: { batchSize: 100, batchTimeout: 100 } },
    context: { pg: config, table },
  });
  await finished;
  await pipeline.stop();
  const { rows } = await client.query(\`SELECT count(*)::int AS n, sum(id)::int AS s FROM \${table}\`);
  if (rows[0].n !== 200 || rows[0].s !== 20100) throw new Error(\`expected 200 rows summing to 20100, got \${JSON.stringify(rows[0])}\`);
  console.log(\`pg: \${rows[0].n} rows written, \${acked} acked\`);
} finally {
  await client.query(\`DROP TABLE IF EXISTS \${table}\`);
  await client.end();
}
`;

// An enum: Node's own type stripping (22.18+) rejects it too, so only tsx could load this module.
const enumHandlersTs = `import { definePipeline } from '@throughway/workers';
enum Kind { Pizza = 'pizza' }
export default definePipeline({ handleMessage: (_p, m) => ({ ...m, data: Kind.Pizza }) });
`;

const noTsxJs = `import { Pipeline, DummyProducer } from '@throughway/core';
try {
  const pipeline = await Pipeline.start({
    name: 'pack-check-no-tsx',
    handlers: new URL('./enum-handlers.ts', import.meta.url),
    producer: { module: new DummyProducer() },
    processors: { default: { concurrency: 1 } },
  });
  await pipeline.stop();
  console.log('loaded: no error');
} catch (error) {
  console.log(\`\${error.code}: \${error.message}\`);
}
`;

const missingDriverJs = `import { sqliteQueue } from '@throughway/sqlite-producer';
try {
  sqliteQueue({ database: 'never-created.db' });
  console.log('no error');
} catch (error) {
  console.log(\`\${error.code}: \${error.message}\`);
}
`;

export function scratchFiles() {
  return {
    sqlite: { 'handlers.js': sqliteHandlersJs, 'main.js': sqliteMainJs, 'handlers.ts': sqliteHandlersTs, 'main.ts': sqliteMainTs, 'tsconfig.json': tsconfig },
    pg: { 'handlers.js': pgHandlersJs, 'main.js': pgMainJs, 'enum-handlers.ts': enumHandlersTs, 'no-tsx.js': noTsxJs, 'missing-driver.js': missingDriverJs },
  };
}
