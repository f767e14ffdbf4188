// Usage: node gen-payloads.mjs <out.exs>: writes %{strings: [...], maps: [...]}, 1024 each, from Throughway's
// bench fixture (makePayloads, bench/dist/fixtures/payloads.js, built by `npx tsc -b`).
// strings: the 200-byte JSON texts byte for byte; maps: what JSON.parse makes of them, as a JSON
// decoder would give it in Elixir (string keys, lists, integer if the JSON number is integral, else float).
import { writeFileSync } from 'node:fs';
import { makePayloads } from '../../dist/fixtures/payloads.js';

const str = (s) => {
  if (!/^[\x20-\x7e]*$/.test(s) || s.includes('#{')) throw new Error('unexpected char: ' + s);
  return JSON.stringify(s); // JSON escaping of printable ASCII (\" and \\) is valid Elixir
};
const num = (n) => {
  if (Number.isInteger(n)) return String(n);
  const t = String(n);
  if (!/^-?\d+\.\d+$/.test(t)) throw new Error('unexpected float form: ' + t);
  return t;
};
const term = (v) => {
  if (typeof v === 'string') return str(v);
  if (typeof v === 'number') return num(v);
  if (Array.isArray(v)) return '[' + v.map(term).join(', ') + ']';
  if (v && typeof v === 'object') return '%{' + Object.entries(v).map(([k, x]) => `${str(k)} => ${term(x)}`).join(', ') + '}';
  throw new Error('unexpected value: ' + v);
};

const strings = makePayloads(1024);
if (strings.some((s) => s.length !== 200)) console.warn('note: some strings are not 200 bytes');
const out = '%{\n  strings: [\n' + strings.map((s) => '    ' + str(s)).join(',\n') + '\n  ],\n  maps: [\n' +
  strings.map((s) => '    ' + term(JSON.parse(s))).join(',\n') + '\n  ]\n}\n';
writeFileSync(process.argv[2] ?? 'payloads.exs', out);
console.log(`wrote payloads.exs: ${strings.length} strings, ${strings.length} maps`);
