/**
 * The optional hook a source package implements to show its own state in metrics: `gauges()`
 * returns counts by state (e.g. a queue's ready, leased and dead-lettered rows). It is duck-typed,
 * so a producer package implements it without depending on `@throughway/metrics`.
 *
 * @example
 * const source: GaugeSource = { gauges: () => ({ ready: queue.length, leased: inFlight.size }) }
 */
export interface GaugeSource {
  gauges(): Record<string, number> | Promise<Record<string, number>>;
}

/** Sources whose `gauges()` failed are logged once each, not at every scrape. */
const warned = new WeakSet<GaugeSource>();

/** Reads every source's gauges; one that throws is skipped (and reported once on stderr). */
export async function readSources(sources: Record<string, GaugeSource>): Promise<{ source: string; state: string; value: number }[]> {
  const rows: { source: string; state: string; value: number }[] = [];
  for (const [source, s] of Object.entries(sources)) {
    let values: Record<string, number>;
    try {
      values = await s.gauges();
    } catch (error) {
      if (!warned.has(s)) {
        warned.add(s);
        process.emitWarning(`@throughway/metrics: gauges() of source "${source}" failed (${(error as Error)?.message ?? String(error)}); its gauges are left out until it works`);
      }
      continue;
    }
    for (const [state, value] of Object.entries(values ?? {})) {
      if (typeof value === 'number' && Number.isFinite(value)) rows.push({ source, state, value });
    }
  }
  return rows;
}
