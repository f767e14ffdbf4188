/**
 * The demo killed with SIGKILL at random moments, then run to the end: its tables must equal
 * those of an uninterrupted run of the same seed, and so must its dead letters (the malformed
 * events, dead-lettered at once with their reason). A crash is not a failure of the events it
 * interrupted, so no good event may end in the dead-letter table however often it is killed
 * (below the queue's maxDeliveries).
 */
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PG_BASE, killNow, sleep, startNode, tempPlace, type Check, type CheckContext, type CheckResult, type Child } from '../util.js';

const CLI = fileURLToPath(new URL('../../../examples/mystex-pizza/dist/cli.js', import.meta.url));

type Sink = 'sqlite' | 'postgres';

interface Place {
  database: string;
  queue: string;
}

interface Snapshot {
  rows: Set<string>;
  dead: Map<number, string>;
}

async function snapshot(sink: Sink, place: Place, schema: string): Promise<Snapshot> {
  const rows = new Set<string>();
  if (sink === 'sqlite') {
    const db = new Database(place.database, { readonly: true });
    try {
      for (const r of db.prepare('SELECT id, name, email, placeholder FROM customers').raw().all() as unknown[][]) rows.add(`c ${JSON.stringify([r[0], r[1], r[2], Boolean(r[3])])}`);
      for (const r of db.prepare('SELECT id, customer_id, amount FROM orders').raw().all() as unknown[][]) rows.add(`o ${JSON.stringify(r)}`);
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    try {
      for (const r of (await client.query({ text: `SELECT id, name, email, placeholder FROM "${schema}".customers`, rowMode: 'array' })).rows) rows.add(`c ${JSON.stringify([r[0], r[1], r[2], Boolean(r[3])])}`);
      for (const r of (await client.query({ text: `SELECT id, customer_id, amount FROM "${schema}".orders`, rowMode: 'array' })).rows) rows.add(`o ${JSON.stringify(r)}`);
    } finally {
      await client.end();
    }
  }
  const q = new Database(place.queue, { readonly: true });
  try {
    const dead = new Map<number, string>();
    for (const r of q.prepare('SELECT id, last_error FROM pizzabarn_events_dead').all() as { id: number; last_error: string }[]) dead.set(r.id, r.last_error);
    return { rows, dead };
  } finally {
    q.close();
  }
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
  }
}

function demo(place: Place, events: number, seed: number, extra: string[] = []): Child {
  return startNode(CLI, ['--database', place.database, '--queue', place.queue, '--events', String(events), '--seed', String(seed), '--json', '--keep', '--log-level', 'warn', ...extra]);
}

/** The last line of a finished demo: its JSON summary. */
function summaryOf(child: Child): { check?: { ok: boolean } | null } | undefined {
  try {
    return JSON.parse(child.output().trim().split('\n').at(-1) ?? '');
  } catch {
    return undefined;
  }
}

export function killLoop(sink: Sink, sizes: { full: { events: number; kills: number }; short: { events: number; kills: number } }): Check {
  return {
    name: `kill-loop/${sink}`,
    async run(context: CheckContext): Promise<CheckResult> {
      const { events, kills } = context.short ? sizes.short : sizes.full;
      const tmp = tempPlace(`kill-${sink}`);
      const tag = `${process.pid}_${context.seed}_${Date.now().toString(36)}`;
      const schemas = sink === 'postgres' ? [`chaos_ref_${tag}`, `chaos_kill_${tag}`] : [];
      const place = (i: 0 | 1): Place => ({
        database: sink === 'sqlite' ? tmp.path(`${i ? 'killed' : 'reference'}.db`) : `${PG_BASE}&schema=${schemas[i]}`,
        queue: tmp.path(`${i ? 'killed' : 'reference'}-queue.db`),
      });
      const seed = context.seed;
      let peak = 0;
      try {
        const refStart = Date.now();
        const reference = demo(place(0), events, seed);
        const refExit = await reference.exited;
        const refMs = Date.now() - refStart;
        peak = Math.max(peak, reference.peakRssMb());
        if (refExit.code !== 0) return { name: this.name, ok: false, counts: {}, note: `the uninterrupted run failed (exit ${refExit.code}):\n${reference.output()}` };

        let done = 0;
        let finishedEarly = false;
        // 0.05 to 3 s after the process starts (before, during and after enqueueing and pipeline
        // start), but inside the run: on a fast, idle machine a whole run can take less than 3 s,
        // so the moments are bounded by 80% of the uninterrupted run's time.
        const latest = Math.max(100, Math.min(3000, Math.floor(refMs * 0.8)));
        for (let k = 0; k < kills; k++) {
          const child = demo(place(1), events, seed);
          const at = context.random.int(50, latest);
          const exitedFirst = await Promise.race([child.exited.then(() => true), sleep(at).then(() => false)]);
          peak = Math.max(peak, child.peakRssMb());
          if (exitedFirst) {
            finishedEarly = true;
            break;
          }
          await killNow(child);
          done++;
        }
        const last = demo(place(1), events, seed);
        const lastExit = await last.exited;
        peak = Math.max(peak, last.peakRssMb());
        const summary = summaryOf(last);
        const a = await snapshot(sink, place(0), schemas[0] ?? '');
        const b = await snapshot(sink, place(1), schemas[1] ?? '');
        let lost = 0;
        for (const r of a.rows) if (!b.rows.has(r)) lost++;
        let duplicates = 0;
        for (const r of b.rows) if (!a.rows.has(r)) duplicates++;
        let wronglyDead = 0;
        for (const [id, reason] of b.dead) if (a.dead.get(id) !== reason) wronglyDead++;
        for (const id of a.dead.keys()) if (!b.dead.has(id)) lost++;
        const checkOk = lastExit.code === 0 && summary?.check?.ok === true;
        // Every kill leaves less work for the next run, so a late run may finish before its kill:
        // that ends the loop (there is nothing left to interrupt), and is fine once a kill landed.
        const ok = checkOk && lost === 0 && wronglyDead === 0 && duplicates === 0 && done > 0;
        const note = `${events} events, seed ${seed}, ${a.rows.size} rows and ${a.dead.size} dead letters in the reference (${refMs} ms), kills 0.05-${latest / 1000} s after start` +
          (finishedEarly ? `; run ${done + 1} finished before its kill (the work left was done), after ${done} kills` : '') +
          (checkOk ? '' : `; the final run did not pass its check (exit ${lastExit.code}):\n${last.output().slice(-2000)}`);
        return { name: this.name, ok, counts: { kills: done, lost, wronglyDead, duplicates, peakRssMb: peak }, note };
      } finally {
        if (schemas.length > 0) await dropSchemas(schemas).catch(() => undefined);
        tmp.cleanup();
      }
    },
  };
}
