// The demo end to end on Postgres (see demo-suite.ts): each test in a schema of its own.
import path from 'node:path';
import pg from 'pg';
import { demoSuite, type Place } from './demo-suite.js';
import { PG_BASE, dropSchema, pgUrl, tempDir, uniqueSchema } from './helpers.js';

const { dir, cleanup } = tempDir('mystex-demo-pg-');
const schemas: string[] = [];

demoSuite(
  {
    name: 'Postgres',
    place(tag) {
      const schema = uniqueSchema(tag);
      schemas.push(schema);
      return { database: pgUrl(schema), queue: path.join(dir, `${tag}-queue.db`) };
    },
    async snapshot(place: Place) {
      const schema = new URLSearchParams(place.database.split('?')[1]).get('schema')!;
      const client = new pg.Client({ connectionString: PG_BASE });
      await client.connect();
      try {
        const customers = (await client.query({ text: `SELECT id, name, email, placeholder FROM "${schema}".customers`, rowMode: 'array' })).rows.map((r) => JSON.stringify(r));
        const orders = (await client.query({ text: `SELECT id, customer_id, amount FROM "${schema}".orders`, rowMode: 'array' })).rows.map((r) => JSON.stringify(r));
        return { customers: customers.sort(), orders: orders.sort() };
      } finally {
        await client.end();
      }
    },
    async cleanup() {
      for (const schema of schemas) await dropSchema(schema);
      cleanup();
    },
  },
  { small: 6_000, interrupted: 15_000, rateLimit: '1500/100ms' },
);
