/**
 * A probe for one configuration at a time, for measuring a change in alternating runs (not part of
 * `pnpm bench`; run `npx tsc -b` first, it imports the built bench harness). It starts a pipeline
 * over the bench's GatedProducer, then times ROUNDS rounds of N messages each and prints, per round,
 * msg/s and the CPU per message of the main thread (and its system share) and of every thread of
 * the process that used any (from /proc/self/task/<tid>/schedstat, so Linux only); the last line is
 * the median of the rounds after the first three (the JIT's warm-up).
 *
 *   N=300000 ROUNDS=7 KIND=int MD=100 BATCH=2 node bench/ramp.mjs   (issue 10's configuration 4)
 *
 * KIND: int | string | map (the Broadway comparison's data, no-op handler), bytes (those strings as
 * Uint8Arrays of their own, as a broker's bodies arrive), readme (the README
 * pattern's handler and payloads, one batcher of 100), cpu (the CPU-heavy handler, ITER sha256
 * rounds a message, 37 ≈ 50 µs). MD: processors' maxDemand (0: the runtime's own). BATCH: batch
 * slots of a batcher of 100 (0: none). RT: threads | inline. CONC: processor concurrency (2).
 * YOUNG_MB: the processors' `resourceLimits.maxYoungGenerationSizeMb` (unset: V8's own sizing).
 * TOPO=1 prints topology() and stats() at the end.
 */
import fs from 'node:fs';
import { Pipeline, createMessage } from '@throughway/core';
import { CountingAck, GatedProducer } from './dist/harness/measure.js';
import { makePayloads, makePayload } from './dist/fixtures/payloads.js';
const N = +(process.env.N ?? 200000), ROUNDS = +(process.env.ROUNDS ?? 8), MD = +(process.env.MD ?? 100), BATCH = +(process.env.BATCH ?? 2);
const KIND = process.env.KIND ?? 'int', RT = process.env.RT ?? 'threads';
const TYPES = ['order', 'payment', 'refund', 'shipment', 'review'];
let data, handlers;
let context;
if (KIND === 'cpu') {
  data = makePayloads(1024);
  handlers = new URL('./dist/fixtures/cpu-handler.js', import.meta.url);
  context = { iterations: +(process.env.ITER ?? 37) };
} else if (KIND === 'readme') {
  data = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ type: TYPES[i % 5], ...JSON.parse(makePayload(i + 1)) }));
  handlers = new URL('./dist/fixtures/readme-handler.js', import.meta.url);
} else {
  const s = makePayloads(1024);
  data = KIND === 'int' ? s.map((_, i) => i) : KIND === 'map' ? s.map((x) => JSON.parse(x)) : KIND === 'bytes' ? s.map((x) => new Uint8Array(Buffer.from(x))) : s;
  handlers = new URL('./dist/fixtures/noop-handler.js', import.meta.url);
}
const ack = new CountingAck();
const producer = new GatedProducer(data, createMessage, ack);
const proc = { runtime: RT, concurrency: +(process.env.CONC ?? 2) };
if (process.env.YOUNG_MB) proc.resourceLimits = { maxYoungGenerationSizeMb: +process.env.YOUNG_MB };
if (MD > 0) proc.maxDemand = MD;
const opts = { name: 'ramp', handlers, producer: { module: producer }, processors: { default: proc }, context };
if (KIND === 'cpu') {} else if (KIND === 'readme') opts.batchers = { default: { concurrency: 1, batchSize: 100, batchTimeout: 1000 } };
else if (BATCH > 0) opts.batchers = { default: { concurrency: BATCH, batchSize: 100, batchTimeout: 1000 } };
const p = await Pipeline.start(opts);
function threads() {
  const out = {};
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const st = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const ns = +fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0];
      out[t] = { name, ut: +f[11], st: +f[12], ns };
    } catch {}
  }
  return out;
}
const tick = 100; // /proc stat ticks per second (for the main thread's system share)
const rates = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = threads(); const c0 = process.cpuUsage(); const target = ack.total + N; const t0 = performance.now();
  producer.release(N); await ack.waitFor(target);
  const s = (performance.now() - t0) / 1000; const b = threads(); const cu = process.cpuUsage(c0);
  const per = [];
  for (const [t, v] of Object.entries(b)) { const o = a[t]; if (!o) continue; const d = (v.ns - o.ns) / 1e3 / N; if (d > 0.02) per.push(`${v.name.slice(0, 10)}:${d.toFixed(2)}`); }
  const mainT = b[String(process.pid)], mainA = a[String(process.pid)];
  const main = (mainT.ns - mainA.ns) / 1e3 / N;
  const sys = (mainT.st - mainA.st) / tick * 1e6 / N;
  rates.push(N / s);
  console.log(`round ${r}: ${(N / s / 1e6).toFixed(3)}M main ${main.toFixed(3)} sys ${sys.toFixed(2)} all ${(cu.user + cu.system) / N} | ${per.join(' ')}`);
}
const tail = rates.slice(3).sort((x, y) => x - y);
console.log(`median ${(tail[tail.length >> 1] / 1e6).toFixed(3)}M failed ${ack.failed}`);
if (process.env.TOPO) console.log(JSON.stringify(p.topology()), JSON.stringify(p.stats()));
await p.stop();
