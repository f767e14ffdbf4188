import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/**
 * Pull requests for one durable consumer, answered on one inbox for the producer's life.
 *
 * The client's `consume()` re-pulls whenever messages *arrive*, whether or not anyone has taken
 * them, so a pipeline that stops asking would still buffer without bound; `fetch()` opens a
 * subscription per request. This asks for exactly what the owner wants (`pull(n)`), keeps one
 * count of messages asked for and not yet delivered (`pending`), and lowers it by what the
 * server reports as left over when a request ends (408/409 with `Nats-Pending-Messages`).
 *
 * A request can also end without a word: the connection dropped, or the server lost it. Every
 * request asks for idle heartbeats, so silence on the inbox for two heartbeats while messages
 * are pending means the requests are gone: `pending` is reset and `onStall` asks again. The same
 * happens after a reconnect (`reset()`), since the server forgets the requests of a dead
 * connection. A request that was not forgotten after all delivers more than was asked; the owner
 * buffers the surplus, so the error is bounded by one request.
 */
export class Puller {
  readonly inbox: string;
  #nc: NatsConnection;
  #subject: string;
  #sub: Subscription;
  #expiresNs: number;
  #heartbeatMs: number;
  #pending = 0;
  #lastTraffic = Date.now();
  #monitor: NodeJS.Timeout;
  #stopped = false;
  #drained: Promise<void> | undefined;
  #onStall: () => void;
  #onStatus: (code: number, description: string) => void;

  constructor(options: {
    nc: NatsConnection;
    stream: string;
    consumer: string;
    expiresMs: number;
    onMessage: (msg: Msg) => void;
    /** Requests were presumed lost: ask again for what is wanted. */
    onStall: () => void;
    /** A status other than a heartbeat or a request's end (a deleted consumer, a refused request). */
    onStatus: (code: number, description: string) => void;
  }) {
    this.#nc = options.nc;
    this.#subject = `$JS.API.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.#expiresNs = options.expiresMs * 1e6;
    // The client's own clamp: heartbeats between 0.5 s and 30 s, at most half the expiry.
    this.#heartbeatMs = Math.min(5000, Math.max(500, Math.floor(options.expiresMs / 2)));
    this.#onStall = options.onStall;
    this.#onStatus = options.onStatus;
    this.inbox = createInbox();
    const onMessage = options.onMessage;
    this.#sub = this.#nc.subscribe(this.inbox, {
      callback: (error, msg) => {
        if (error) return this.#onStatus(0, error.message);
        this.#lastTraffic = Date.now();
        if (msg.subject === this.inbox) return this.#status(msg);
        if (this.#pending > 0) this.#pending--;
        onMessage(msg);
      },
    });
    this.#monitor = setInterval(() => this.#check(), this.#heartbeatMs);
    this.#monitor.unref();
  }

  /** Messages asked for and not yet delivered. */
  get pending(): number {
    return this.#pending;
  }

  /** Asks the server for `batch` more messages. */
  pull(batch: number): void {
    if (this.#stopped || batch <= 0 || this.#nc.isClosed()) return;
    if (this.#pending === 0) this.#lastTraffic = Date.now();
    this.#pending += batch;
    this.#nc.publish(this.#subject, JSON.stringify({ batch, expires: this.#expiresNs, idle_heartbeat: this.#heartbeatMs * 1e6 }), { reply: this.inbox });
  }

  /** Forgets every request (after a reconnect the server no longer holds them). */
  reset(): void {
    this.#pending = 0;
  }

  /**
   * Stops asking and cancels what is pending: the server drops a waiting request once nobody
   * listens on its inbox. The subscription is drained, not dropped: messages the server sent
   * before it read the UNSUB still reach `onMessage` (the owner gives them back) instead of
   * being lost until `ack_wait` runs out. Resolves when nothing more can arrive (at most
   * `timeoutMs` while the connection is down).
   */
  stop(timeoutMs = 5000): Promise<void> {
    if (this.#stopped) return this.#drained ?? Promise.resolve();
    this.#stopped = true;
    clearInterval(this.#monitor);
    this.#pending = 0;
    if (this.#nc.isClosed()) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const drained = this.#sub.drain().catch(() => undefined);
    this.#drained = Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]).finally(() => clearTimeout(timer));
    return this.#drained;
  }

  #status(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    if (code === 100) return; // idle heartbeat: the requests are alive
    const left = Number(msg.headers?.get('Nats-Pending-Messages') || 0);
    if (left > 0) this.#pending = Math.max(0, this.#pending - left);
    if (code === 408 || code === 404) return; // a request ended (expired); `left` was its remainder
    const description = msg.headers?.description ?? '';
    // 409 with a remainder ended one request for a reason worth no alarm (leadership change,
    // max bytes). Without one a request was refused (a deleted consumer, too many waiting) and
    // which one is unknown: forget them all (a surplus is buffered) and let the owner decide
    // when to ask again.
    if (left > 0) return;
    this.#pending = 0;
    this.#onStatus(code, description);
  }

  #check(): void {
    if (this.#stopped || this.#pending === 0 || this.#nc.isClosed()) return;
    if (Date.now() - this.#lastTraffic < 2 * this.#heartbeatMs + 500) return;
    this.#pending = 0;
    this.#onStall();
  }
}
