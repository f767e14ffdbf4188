import type pg from 'pg';
import { listenerClient, reconnectDelay } from './connection.js';
import type { Connection } from './options.js';
import { quoteIdentifier } from './options.js';

/**
 * A dedicated connection that runs `LISTEN <channel>` and calls `onNotify` for every
 * notification. When the connection drops (a terminated backend, a restarted server) it
 * reconnects with a capped, jittered backoff and, once back, calls `onNotify` too: rows may have
 * arrived while nobody listened. `stop` ends it for good; nothing of it keeps the process alive
 * afterwards.
 */
export class NotifyListener {
  readonly #connection: Connection;
  readonly #applicationName: string;
  readonly #channel: string;
  readonly #maxDelay: number;
  readonly #onNotify: () => void;
  readonly #onError: (error: unknown) => void;
  readonly #onReconnect: () => void;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #stopped = false;

  constructor(options: {
    connection: Connection;
    applicationName: string;
    channel: string;
    maxDelay: number;
    onNotify: () => void;
    onError: (error: unknown) => void;
    onReconnect: () => void;
  }) {
    this.#connection = options.connection;
    this.#applicationName = options.applicationName;
    this.#channel = options.channel;
    this.#maxDelay = options.maxDelay;
    this.#onNotify = options.onNotify;
    this.#onError = options.onError;
    this.#onReconnect = options.onReconnect;
  }

  /** Connects and listens; rejects if the first connection fails (the caller decides whether that is fatal). */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = listenerClient(this.#connection, this.#applicationName);
    // Registered before connect: a connection refused or dropped must never go unhandled.
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, undefined));
    client.on('notification', () => this.#onNotify());
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.#channel, 'channel')}`);
    } catch (error) {
      this.#lost(client, error);
      throw error;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    if (this.#failures > 0) {
      this.#failures = 0;
      this.#onReconnect();
      this.#onNotify();
    }
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client || this.#stopped) return;
    this.#client = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    // Reported once per outage, not once per reconnect attempt.
    if (this.#failures === 0) this.#onError(error ?? new Error(`the LISTEN connection for ${this.#channel} ended`));
    this.#failures++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopped) this.#connect().catch(() => undefined);
    }, reconnectDelay(this.#failures, this.#maxDelay));
  }

  /** Stops listening and closes the connection. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
    }
  }
}
