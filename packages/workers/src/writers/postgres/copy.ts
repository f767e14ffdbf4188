/**
 * `COPY ... FROM STDIN` over pg's own connection, without pg-copy-streams. pg accepts any object
 * with a `submit(connection)` method as a query and forwards the protocol events of its turn to it;
 * this one sends the COPY statement, answers CopyInResponse with all data chunks and CopyDone, and
 * settles on ReadyForQuery (success) or ErrorResponse (the database's error, unchanged).
 *
 * All data is written at once, not streamed with back-pressure: it is one batch, already in memory.
 * If the server fails mid-copy it ignores the rest of the CopyData it receives (postgres.c accepts
 * and ignores CopyData after a failed COPY), then answers ReadyForQuery, so the connection stays usable.
 */
import type pg from 'pg';

/** The parts of pg's internal Connection this uses; stable across pg 8 (pg-copy-streams uses them too). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

class CopyFromStdin {
  /** pg may install a callback (query_timeout); it expects it to be called once. */
  callback?: (error: Error | null, result?: unknown) => void;
  readonly #text: string;
  readonly #chunks: Buffer[];
  readonly #resolve: (rows: number) => void;
  readonly #reject: (error: Error) => void;
  #rows = 0;
  #settled = false;

  constructor(text: string, chunks: Buffer[], resolve: (rows: number) => void, reject: (error: Error) => void) {
    this.#text = text;
    this.#chunks = chunks;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: CopyConnection): void {
    connection.query(this.#text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (const chunk of this.#chunks) connection.sendCopyFromChunk(chunk);
    connection.endCopyFrom();
  }

  handleCommandComplete(message: { text?: string }): void {
    const match = /^COPY (\d+)/.exec(message.text ?? '');
    if (match) this.#rows = Number(match[1]);
  }

  handleReadyForQuery(): void {
    this.#settle(null);
  }

  handleError(error: Error): void {
    this.#settle(error);
  }

  // Messages a COPY FROM never produces; pg calls them only on a protocol surprise.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  #settle(error: Error | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.callback?.(error, error ? undefined : { rowCount: this.#rows });
    if (error) this.#reject(error);
    else this.#resolve(this.#rows);
  }
}

/**
 * Runs `copySql` (a `COPY ... FROM STDIN` statement) with `chunks` as its data; resolves the number
 * of rows copied.
 */
export function copyFromStdin(client: pg.ClientBase, copySql: string, chunks: Buffer[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    client.query(new CopyFromStdin(copySql, chunks, resolve, reject) as unknown as pg.Submittable);
  });
}
