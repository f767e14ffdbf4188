/**
 * Public types of the bulk writers. One `Repo` shape for SQLite and Postgres so a handler module can
 * switch databases by changing only the line that builds the repo.
 */

/**
 * A value an entry may hold. How each is written:
 *
 * | value | SQLite | Postgres |
 * |---|---|---|
 * | string, finite number | as is | its text form, cast to the column's type |
 * | bigint | as is, within 64 bits | its text form; within 64 bits for integer columns |
 * | NaN, ±Infinity | refused; ±Infinity with `allowNonFinite` (SQLite has no NaN: it would store NULL) | refused; with `allowNonFinite`, written to `real`/`double precision`/`numeric` columns |
 * | boolean | `1` / `0` | `true` / `false` |
 * | `null` | NULL | NULL |
 * | `Date` | ISO 8601 UTC text (`toISOString()`) | ISO 8601 UTC text: exact for `timestamptz`; `timestamp without time zone` stores the UTC wall-clock time (like Ecto's naive UTC timestamps); `date` stores the UTC date; `time` columns need a string |
 * | `Buffer` / `Uint8Array` | BLOB | bytea only (into any other column: refused, it would become `\x...` text) |
 * | plain object / array | JSON text | JSON for `json`/`jsonb` (and any other non-array column); a Postgres array literal for array columns (`int[]`, `text[]`, ...) |
 *
 * Objects without a faithful JSON form are refused instead of written lossily: a `Map` or `Set`
 * (JSON.stringify makes `{}` of them), a BigInt inside an object, a circular object, a `toJSON`
 * that returns undefined. A string written into a Postgres `json`/`jsonb` column is sent as is, so
 * it is JSON text (as with the `pg` driver): `'42'` is stored as the number 42, and a JSON string
 * needs `JSON.stringify(s)`. `undefined` means "key absent" (see {@link Entry}). Only an entry's own
 * enumerable keys are columns (`Object.keys`): inherited properties are never written, and a column
 * named `constructor` or `__proto__` is read from the entry's own key only. Values are checked while
 * writing (inside the call's transaction): a refused value rejects the call with
 * `ERR_THROUGHWAY_INVALID_VALUE` naming the column (`details.column`) and nothing of it is kept.
 *
 * @example
 * { id: 1, paid: true, total: 12.5n, at: new Date(), payload: { items: [1, 2] }, tags: ['a', 'b'], raw: Buffer.from('x') }
 */
export type WritableValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | Date
  | Uint8Array
  | readonly unknown[]
  | { readonly [key: string]: unknown };

/**
 * One row to insert: column name → value. Keys are checked against the table's real columns.
 * `{ id: 'ord_1', customer_id: 'cus_1', amount: 4857, ...timestamps() }` is one.
 *
 * Entries of one call may have different key sets: a key that is absent (or whose value is
 * `undefined`) gets the column's DEFAULT, exactly as if the column were left out of a single-row
 * INSERT. Entries are written grouped by key set, one group after another, so give every entry the
 * same keys for the fastest path. An entry with no keys at all is rejected
 * (`ERR_THROUGHWAY_INVALID_VALUE`), as is anything that is not an object.
 *
 * @example
 * // Two groups: the second entry's missing `email` gets the column default.
 * await repo.insertAll('customers', [{ id: 'cus_1', email: 'a@x.test' }, { id: 'cus_2' }]);
 */
export type Entry = { readonly [column: string]: WritableValue };

/**
 * The constraint on entry types: every property a {@link WritableValue}. A mapped type rather than
 * `Entry`, so that interfaces (which have no index signature) are accepted too.
 *
 * @example
 * interface Order { id: string; amount: number; inserted_at: Date }
 * declare const orders: Order[];
 * await repo.insertAll('orders', orders); // type-checks; a function-valued property would not
 */
export type EntryOf<E> = { readonly [K in keyof E]: WritableValue };

/**
 * What to do when a row conflicts with an existing one (a unique or primary-key violation),
 * following Ecto's `Repo.insert_all/3`:
 *
 * - `'raise'` (default): the database's error rejects the call; nothing of the call is kept.
 * - `'nothing'`: conflicting rows are skipped (`ON CONFLICT DO NOTHING`) and not counted.
 * - `'replace_all_except_primary_key'`: conflicting rows are updated with the entry's values for every
 *   column the entries carry, except the primary-key columns; each updated row counts.
 * - `{ replace: columns }`: conflicting rows get only these columns updated from the entry.
 *
 * @example
 * await repo.insertAll('customers', entries, { onConflict: { replace: ['email', 'updated_at'] }, conflictTarget: ['id'] });
 */
export type OnConflict = 'raise' | 'nothing' | 'replace_all_except_primary_key' | { readonly replace: readonly string[] };

/**
 * Options of {@link Repo.insertAll}. Unknown option names are rejected (`ERR_THROUGHWAY_INVALID_OPTION`),
 * and every column named here is checked against the table (`ERR_THROUGHWAY_UNKNOWN_COLUMN`).
 *
 * @example
 * // The seed's customers upsert: later data replaces the placeholder rows the orders created.
 * await repo.insertAll('customers', entries, { onConflict: 'replace_all_except_primary_key', conflictTarget: ['id'] });
 * // Placeholders that must never overwrite a real row:
 * await repo.insertAll('customers', [{ id: 'cus_1' }], { onConflict: 'nothing' });
 * // Read back generated keys:
 * const { rows } = await repo.insertAll('events', entries, { returning: ['id'] });
 */
export interface InsertAllOptions {
  /** Conflict handling; `'raise'` by default. */
  onConflict?: OnConflict;
  /**
   * The columns of the unique index or constraint that decides a conflict (the database rejects a
   * list no unique index matches). Optional with `'nothing'` (then a conflict on any unique index
   * skips the row); for the `replace` modes it defaults to the table's primary key. Not allowed
   * with `'raise'`, as in Ecto.
   */
  conflictTarget?: readonly string[];
  /**
   * Columns to read back from the inserted (or upserted) rows, or `true` for every column. The rows
   * come back in `result.rows` in the order they were written: entry order when all entries have
   * the same keys; otherwise entries are written group by group (one group per key set), so the
   * order follows the groups. Rows skipped by `onConflict: 'nothing'` are not
   * returned. Values are as the driver reads them (pg parses `int8` as a string, for instance).
   */
  returning?: readonly string[] | boolean;
  /**
   * Write NaN and ±Infinity where the column holds them: Postgres `real`, `double precision` and
   * `numeric` columns (every non-finite number) and SQLite (±Infinity only: SQLite has no NaN).
   * Default false: a non-finite number rejects the call with `ERR_THROUGHWAY_INVALID_VALUE`.
   */
  allowNonFinite?: boolean;
}

/**
 * What {@link Repo.insertAll} resolves to.
 *
 * @example
 * const { count, rows } = await repo.insertAll('orders', entries, { returning: ['id'] });
 */
export interface InsertAllResult {
  /**
   * Rows actually inserted or updated. With `onConflict: 'nothing'` the skipped rows are not
   * counted, as in Ecto; pass the result to `expectCount` to fail a batch when it differs.
   */
  count: number;
  /** Present only when `returning` was given. */
  rows?: Record<string, unknown>[];
}

/**
 * A handle on one database connection (or pool) for bulk writes. Made by `sqliteRepo` or
 * `postgresRepo`; keep one per batch worker (build it in `setup`), since it caches table metadata
 * and prepared statements.
 *
 * Database errors (constraint violations, a missing unique index for `conflictTarget`, ...) are
 * passed through unchanged, so the batch fails with the database's own message and code. Errors the
 * writers raise themselves are `ThroughwayError`s with a stable `code`.
 *
 * @example
 * // The seed's order batch: placeholder customers, then the orders, atomically.
 * const ts = timestamps();
 * await repo.transaction(async (tx) => {
 *   await tx.insertAll('customers', orders.map((o) => ({ id: o.customer_id, ...ts })), { onConflict: 'nothing' });
 *   expectCount(await tx.insertAll('orders', orders.map((o) => ({ ...o, ...ts }))), orders);
 * });
 */
export interface Repo {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Inserts `entries` into `table` as one atomic unit (all rows or none), split into as many
   * statements as the database's parameter limit needs. Table and column names are checked against
   * the catalog before anything is written, and always quoted.
   *
   * `table` is a table name, exact and case-sensitive (it is quoted); `schema.table` selects a
   * schema (Postgres) or an attached database (SQLite).
   */
  insertAll<E extends EntryOf<E>>(table: string, entries: readonly E[], options?: InsertAllOptions): Promise<InsertAllResult>;
  /**
   * Runs `fn` in one transaction and commits when its promise resolves, or rolls back and rejects
   * when it throws. `fn` receives the repo to use inside the transaction. Nested calls use
   * savepoints.
   */
  transaction<T>(fn: (repo: Repo) => T | Promise<T>): Promise<T>;
  /** Forgets cached table metadata and statements (call it after altering a table at run time). */
  clearCache(): void;
}
